"""Rescans: new, changed and deleted files touch only what they must, and regroupings only run
when something they read changed."""

import os
import shutil

import dagster as dg
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.defs.jobs import CATALOG_ASSETS
from lumina_pipeline.runner import unchanged_inventory
from lumina_pipeline.storage.catalogs import get_catalog
from lumina_pipeline_tests.defs.conftest import _metadata

CATALOG = "rescan"


def photos_of(corpus, count: int) -> list:
    return [corpus.photos / r["path"] for r in corpus.files(expected_status="ok") if r["format"] == "JPEG"][:count]


def test_adding_three_photos_reads_only_them_in_the_batch_they_joined(pipeline, corpus, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    for index, photo in enumerate(photos_of(corpus, 8)):
        shutil.copy(photo, library / f"{index:02d}.jpg")
    pipeline.add_catalog(CATALOG, str(library), batch_size=4)
    first = pipeline.inventory(CATALOG)
    assert first["batches_to_process"] == ["00000", "00001"]
    for batch in first["batches_to_process"]:
        pipeline.analyze(CATALOG, batch)
    (library / "05.jpg").unlink()  # batch 00001 keeps its four slots: batches are append-only
    for index, photo in enumerate(photos_of(corpus, 11)[8:]):
        shutil.copy(photo, library / f"new-{index}.jpg")

    rescan = pipeline.inventory(CATALOG)

    assert (rescan["new"], rescan["deleted"], rescan["changed"]) == (3, 1, 0)
    assert rescan["batches_to_process"] == ["00002"]
    assert pipeline.analyze(CATALOG, "00002")["files_read"] == 3
    assert pipeline.analyze(CATALOG, "00001")["files_read"] == 0
    statuses = {bytes(row["path"]): row["status"] for row in pipeline.rows(CATALOG, "path, status")}
    assert statuses[b"05.jpg"] == "deleted"
    assert sum(status == "ok" for status in statuses.values()) == 10


def analyzed_copies(pipeline, corpus, library, catalog: str, count: int, batch_size: int) -> list:
    """`count` corpus photos copied into `library` as 0.jpg, 1.jpg..., cataloged and analyzed."""
    library.mkdir()
    photos = photos_of(corpus, count)
    for index, photo in enumerate(photos):
        shutil.copy(photo, library / f"{index}.jpg")
    pipeline.add_catalog(catalog, str(library), batch_size=batch_size)
    for batch in pipeline.inventory(catalog)["batches_to_process"]:
        pipeline.analyze(catalog, batch)
    return photos


def test_a_changed_photo_is_read_again_and_nothing_else(pipeline, corpus, tmp_path):
    library = tmp_path / "library"
    photos = analyzed_copies(pipeline, corpus, library, "changed", 3, batch_size=2)
    shutil.copy(photos[2], library / "0.jpg")  # new content under an old name

    rescan = pipeline.inventory("changed")

    assert (rescan["new"], rescan["changed"], rescan["batches_to_process"]) == (0, 1, ["00000"])
    assert pipeline.analyze("changed", "00000")["files_read"] == 1
    checksums = {bytes(row["path"]): row["checksum"] for row in pipeline.rows("changed", "path, checksum")}
    assert checksums[b"0.jpg"] == checksums[b"2.jpg"]


def test_a_rescan_of_an_unchanged_folder_changes_nothing(pipeline, corpus, tmp_path):
    pipeline.add_catalog("still", str(corpus.photos))
    pipeline.inventory("still")
    again = pipeline.inventory("still")
    assert (again["new"], again["changed"], again["deleted"], again["batches_to_process"]) == (0, 0, 0, [])
    assert again["unchanged"] == len(corpus.manifest["files"])


def regroup(pipeline, catalog: str, only: tuple[str, ...] = (), **config) -> dict[str, dict]:
    """Materialize stacks, bursts and duplicate groups (or `only` those named; `config`: per
    asset); each one's metadata."""
    names = only or tuple(asset.key.to_user_string() for asset in CATALOG_ASSETS)
    result = dg.materialize(
        CATALOG_ASSETS, partition_key=catalog, instance=pipeline.instance, resources=pipeline.resources,
        run_config={"ops": {asset: {"config": values} for asset, values in config.items()}}, selection=list(names),
    )
    return {name: _metadata(result, name) for name in names}


def test_with_nothing_changed_no_grouping_works_and_one_new_photo_is_read_once_and_grouped(pipeline, corpus, tmp_path):
    library = tmp_path / "library"
    photos = analyzed_copies(pipeline, corpus, library, "regroup", 6, batch_size=4)
    first = regroup(pipeline, "regroup")
    assert not any("skipped" in figures for figures in first.values())
    with pipeline.engine.begin() as connection:  # a person's decision is not a change to regroup
        connection.execute(text("UPDATE duplicate_groups SET reviewed = true WHERE catalog_id = :c"),
                           {"c": pipeline.catalog_id("regroup")})

    again = regroup(pipeline, "regroup")

    for asset, figures in again.items():  # with the figures of the last grouping
        assert figures.pop("skipped") == "nothing changed"
        assert figures.items() - {("elapsed_seconds", figures["elapsed_seconds"])} <= first[asset].items()
    shutil.copy(photos[0], library / "copy.jpg")  # one new photo: a copy of the first
    rescan = pipeline.inventory("regroup")
    assert (rescan["new"], rescan["batches_to_process"]) == (1, ["00001"])
    assert pipeline.analyze("regroup", "00001")["files_read"] == 1

    grouped = regroup(pipeline, "regroup")

    assert not any("skipped" in figures for figures in grouped.values())
    assert grouped["duplicate_groups"]["exact_groups"] == first["duplicate_groups"]["exact_groups"] + 1
    with pipeline.engine.connect() as connection:
        members = connection.execute(text("""
            SELECT i.path FROM duplicate_members m JOIN images i ON i.id = m.image_id
            JOIN duplicate_groups g ON g.id = m.group_id WHERE g.catalog_id = :c AND g.similarity_type = 'exact'
            """), {"c": pipeline.catalog_id("regroup")}).scalars().all()
    assert {b"0.jpg", b"copy.jpg"} <= {bytes(path) for path in members}
    assert all("skipped" in figures for figures in regroup(pipeline, "regroup").values())


def test_each_grouping_redoes_what_changed_for_it(pipeline, corpus, tmp_path):
    pipeline.add_catalog("settings", str(corpus.photos))
    pipeline.catalog_everything("settings")
    bursts = {"min_shots": 2}

    other_rule = regroup(pipeline, "settings", bursts=bursts)  # settings are part of what is read

    assert "skipped" in other_rule["stacks"] and "skipped" not in other_rule["bursts"]
    with pipeline.engine.begin() as connection:  # a batch writes a photo anew after stacks, before the others
        connection.execute(text("""
            UPDATE images SET quality_score = 100 - quality_score
            WHERE id = (SELECT min(id) FROM images WHERE catalog_id = :c AND quality_score IS NOT NULL)"""),
            {"c": pipeline.catalog_id("settings")})
    later = regroup(pipeline, "settings", ("bursts", "duplicate_groups"), bursts=bursts)
    assert not any("skipped" in figures for figures in later.values())
    last = regroup(pipeline, "settings", bursts=bursts)
    assert "skipped" not in last["stacks"] and "skipped" in last["bursts"]  # stacks had read the old row


def test_lumina_run_has_nothing_to_do_only_while_folders_batches_and_groupings_are_as_last_made(
    pipeline, corpus, tmp_path
):
    library = tmp_path / "library"
    photos = analyzed_copies(pipeline, corpus, library, "quiet", 4, batch_size=4)

    def up_to_date() -> int | None:
        with Session(pipeline.engine) as session:
            unchanged = unchanged_inventory(session.connection(), get_catalog(session, "quiet"))
        return None if unchanged is None else len(unchanged.files)

    assert up_to_date() is None  # read but not grouped: a run killed before its regrouping
    regroup(pipeline, "quiet")
    assert up_to_date() == 4
    regroup(pipeline, "quiet", bursts={"min_shots": 2})  # grouped by other settings than `lumina run`'s
    assert up_to_date() is None
    regroup(pipeline, "quiet")
    assert up_to_date() == 4
    shutil.copy(photos[0], library / "new.jpg")
    assert up_to_date() is None  # a new file
    pipeline.inventory("quiet")
    assert up_to_date() is None  # its batch to read
    pipeline.analyze("quiet", "00001")
    assert up_to_date() is None  # to group
    regroup(pipeline, "quiet")
    assert up_to_date() == 5
    os.utime(library / "new.jpg", ns=(0, 0))
    assert up_to_date() is None  # a changed file
    pipeline.catalog_everything("quiet")
    assert up_to_date() == 5
    (library / "new.jpg").unlink()
    assert up_to_date() is None  # a deleted file
    pipeline.inventory("quiet")
    assert up_to_date() is None  # its rows no longer read by the groupings
    regroup(pipeline, "quiet")
    assert up_to_date() == 4
