"""The decisions people make on groups, on a copy of part of the corpus, across regroupings:
keep all (not duplicates), keep several, bulk accept, and what a left-over copy hands over."""

import shutil

import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.defs.jobs import CATALOG_ASSETS
from lumina_pipeline.export import export_catalog
from lumina_pipeline.storage.browse import removable_files
from lumina_pipeline.storage.decisions import (
    GroupChanged,
    accept_suggestions,
    add_manual_tag,
    decide,
    keep_files,
    set_rating,
)
from lumina_pipeline.storage.groups import DUPLICATES

CATALOG = "decisions"
FOLDERS = ("exif.org samples", "Edits", "Shared", "Exports", "Chats", "Toscana 2008", "Backup (alter Laptop)")


@pytest.fixture
def library(pipeline, corpus, tmp_path):
    copy = tmp_path / "photos"
    for folder in FOLDERS:
        shutil.copytree(corpus.photos / folder, copy / folder)
    pipeline.add_catalog(CATALOG, str(copy))
    pipeline.catalog_everything(CATALOG)
    return copy


def groups(pipeline) -> dict[str, dict]:
    """Each group by its primary's path: id, reviewed, members {path: (id, kept)}."""
    with pipeline.engine.connect() as connection:
        rows = connection.execute(text("""
            SELECT g.id, g.reviewed, convert_from(p.path, 'UTF8') AS primary_path, i.id AS image_id,
                   convert_from(i.path, 'UTF8') AS path, i.kept
            FROM duplicate_groups g JOIN images p ON p.id = g.primary_image_id
            JOIN duplicate_members m ON m.group_id = g.id JOIN images i ON i.id = m.image_id""")).all()
    found: dict[str, dict] = {}
    for row in rows:
        group = found.setdefault(row.primary_path, {"id": row.id, "reviewed": row.reviewed, "members": {}})
        group["members"][row.path] = (row.image_id, row.kept)
    return found


def removable(pipeline) -> set[str]:
    with pipeline.engine.connect() as connection:
        return {row.path.decode() for row in removable_files(connection, pipeline.catalog_id(CATALOG))}


def regroup(pipeline) -> None:
    assert pipeline.materialize(CATALOG_ASSETS, CATALOG).success


def test_keep_all_dismisses_a_group_until_its_members_change(pipeline, library):
    kodak = groups(pipeline)["exif.org samples/kodak-dc210.jpg"]
    with pipeline.engine.begin() as connection:
        assert decide(connection, DUPLICATES, kodak["id"], None, reviewed=True, keep_all=True)
    regroup(pipeline)
    after = groups(pipeline)["exif.org samples/kodak-dc210.jpg"]
    assert after["id"] == kodak["id"] and after["reviewed"]
    assert all(kept for _, kept in after["members"].values())
    assert not removable(pipeline) & set(after["members"])

    shutil.copy2(library / "Shared/kodak-dc210.jpg", library / "Shared/kodak-dc210 (2).jpg")  # a new copy arrives
    pipeline.inventory(CATALOG)
    pipeline.analyze(CATALOG, "00000")
    regroup(pipeline)
    changed = groups(pipeline)["exif.org samples/kodak-dc210.jpg"]
    assert not changed["reviewed"]  # proposed again, with what was kept still kept
    assert [path for path, (_, kept) in changed["members"].items() if not kept] == ["Shared/kodak-dc210 (2).jpg"]


def test_keep_several_never_lists_a_keeper_as_removable(pipeline, library):
    fuji = groups(pipeline)["exif.org samples/fujifilm-dx10.jpg"]
    crop = fuji["members"]["Edits/fujifilm-dx10 beschnitten.jpg"][0]
    with pipeline.engine.begin() as connection:
        assert decide(connection, DUPLICATES, fuji["id"], None, reviewed=True, keep=[crop])
        assert not decide(connection, DUPLICATES, fuji["id"], None, reviewed=True, keep=[10**12])  # not a member
    regroup(pipeline)
    listed = removable(pipeline)
    assert "Edits/fujifilm-dx10 beschnitten.jpg" not in listed and "exif.org samples/fujifilm-dx10.jpg" not in listed
    assert {"Shared/DSCF0001.jpg", "Exports/web/fujifilm-dx10-640.jpg"} <= listed


def test_bulk_accept_counts_what_it_then_does(pipeline, library):
    catalog_id = pipeline.catalog_id(CATALOG)
    with pipeline.engine.begin() as connection:
        preview = accept_suggestions(connection, catalog_id, exact=True, min_confidence=None, apply=False)
    with pipeline.engine.connect() as connection:
        exact_ids = set(connection.execute(text(
            "SELECT id FROM duplicate_groups WHERE similarity_type = 'exact' AND NOT reviewed")).scalars())
    assert preview.groups == len(exact_ids) > 0
    assert not removable(pipeline)
    with pytest.raises(GroupChanged), pipeline.engine.begin() as connection:  # a regrouping chose another keeper
        connection.execute(text("""
            UPDATE duplicate_groups g SET primary_image_id = (SELECT max(image_id) FROM duplicate_members
                                                              WHERE group_id = g.id AND image_id <> g.primary_image_id)
            WHERE id = :g"""), {"g": min(exact_ids)})
        accept_suggestions(connection, catalog_id, exact=True, min_confidence=None, apply=True, seen=preview.seen)
    assert not removable(pipeline) and not [g for g in groups(pipeline).values() if g["reviewed"]]
    with pipeline.engine.begin() as connection:
        done = accept_suggestions(connection, catalog_id, exact=True, min_confidence=None, apply=True,
                                  seen=preview.seen)
    assert done == preview
    reviewed = {g["id"] for g in groups(pipeline).values() if g["reviewed"]}
    assert reviewed == exact_ids
    assert len(removable(pipeline)) == preview.files  # in this library no left-over copy is kept elsewhere
    with pipeline.engine.connect() as connection:  # accepted keepers are chosen: no regrouping swaps them
        chosen = set(connection.execute(text("SELECT id FROM duplicate_groups WHERE primary_chosen")).scalars())
    assert chosen == exact_ids


def test_bulk_accept_counts_no_copy_that_stays_with_a_kept_stack_partner(pipeline, library, corpus):
    shutil.copytree(corpus.photos / "Phone", library / "Phone")  # the Live Photo beside its backup copy
    pipeline.inventory(CATALOG)
    pipeline.analyze(CATALOG, "00000")
    regroup(pipeline)
    found = groups(pipeline)
    [(still, stills)] = [(path, group) for path, group in found.items() if path.endswith("IMG_0002.HEIC")]
    [clips] = [group for path, group in found.items() if path.endswith("IMG_0002.MOV")]
    [copy] = [path for path in stills["members"] if path != still]
    with pipeline.engine.begin() as connection:  # the clip of the still's copy kept: that copy stays with it
        assert decide(connection, DUPLICATES, clips["id"], clips["members"][copy[:-4] + "MOV"][0], reviewed=True)
    before = removable(pipeline)
    catalog_id = pipeline.catalog_id(CATALOG)
    with pipeline.engine.begin() as connection:
        preview = accept_suggestions(connection, catalog_id, exact=True, min_confidence=None, apply=False)
    assert removable(pipeline) == before
    with pipeline.engine.begin() as connection:
        assert accept_suggestions(connection, catalog_id, exact=True, min_confidence=None, apply=True) == preview
    assert copy not in removable(pipeline) and len(removable(pipeline) - before) == preview.files


def test_a_left_over_copys_tags_and_best_rating_go_to_the_keeper(pipeline, library):
    ricoh = groups(pipeline)["exif.org samples/ricoh-rdc5300.jpg"]
    keeper = ricoh["members"]["exif.org samples/ricoh-rdc5300.jpg"][0]
    copy = ricoh["members"]["Chats/WhatsApp Images/IMG-20000531-WA0001.jpg"][0]
    with pipeline.engine.begin() as connection:
        set_rating(connection, keeper, 2)
        set_rating(connection, copy, 5)
        add_manual_tag(connection, copy, "Oma")
        assert decide(connection, DUPLICATES, ricoh["id"], keeper, reviewed=True)
    with pipeline.engine.connect() as connection:
        rating = connection.execute(text("SELECT rating FROM images WHERE id = :i"), {"i": keeper}).scalar_one()
        tags = connection.execute(text("""SELECT t.name, it.source FROM image_tags it JOIN tags t ON t.id = it.tag_id
                                          WHERE it.image_id = :i AND it.source = 'manual'"""), {"i": keeper}).all()
    assert rating == 5 and [tuple(tag) for tag in tags] == [("Oma", "manual")]


def test_a_file_moved_by_hand_keeps_what_was_said_of_it(pipeline, library):
    """The inventory knows names: a moved file is a new row, the old one deleted; its checksum
    tells it is the same file, and the person's marks follow it."""
    kodak = groups(pipeline)["exif.org samples/kodak-dc210.jpg"]
    [crop] = [path for path in kodak["members"] if "crop" in path]
    with pipeline.engine.begin() as connection:
        assert decide(connection, DUPLICATES, kodak["id"], None, reviewed=True,
                      keep=[kodak["members"][crop][0]])  # keep several: the crop too
        set_rating(connection, kodak["members"][crop][0], 4)
        add_manual_tag(connection, kodak["members"][crop][0], "Oma")
    (library / "Reisen").mkdir()
    (library / crop).rename(library / "Reisen" / "crop.jpg")
    pipeline.catalog_everything(CATALOG)
    with pipeline.engine.connect() as connection:
        moved = connection.execute(text("""
            SELECT i.kept, i.rating, array_agg(t.name) FILTER (WHERE it.source = 'manual') AS tags FROM images i
            LEFT JOIN image_tags it ON it.image_id = i.id LEFT JOIN tags t ON t.id = it.tag_id
            WHERE i.path = :p GROUP BY i.id"""), {"p": b"Reisen/crop.jpg"}).one()
    assert (moved.kept, moved.rating, moved.tags) == (True, 4, ["Oma"])
    assert "Reisen/crop.jpg" not in removable(pipeline)


def test_copies_moved_together_each_keep_what_was_said_of_them(pipeline, library):
    """Two identical copies in a folder renamed: each new row takes its own old row's marks, by its name."""
    group = groups(pipeline)["Toscana 2008/DSCN0038.jpg"]
    copies = sorted(path for path in group["members"] if path.startswith("Backup (alter Laptop)/Toscana/"))
    with pipeline.engine.begin() as connection:
        assert decide(connection, DUPLICATES, group["id"], None, reviewed=True, keep_all=True)
        for copy, stars in zip(copies, (2, 5), strict=True):
            set_rating(connection, group["members"][copy][0], stars)
    (library / "Backup (alter Laptop)/Toscana").rename(library / "Backup (alter Laptop)/Toskana")
    pipeline.catalog_everything(CATALOG)
    moved = {row["path"]: (row["kept"], row["rating"]) for row in pipeline.rows(
        CATALOG, "convert_from(path, 'UTF8') AS path, kept, rating, status") if row["status"] == "ok"}
    assert [moved[copy.replace("Toscana/", "Toskana/")] for copy in copies] == [(True, 2), (True, 5)]
    assert not removable(pipeline)


def test_a_chosen_keeper_moved_with_its_copy_stays_the_keeper(pipeline, library):
    """Both moved, both new rows: the keeper is the one of the chosen file's name, whichever the walk lists first."""
    group = groups(pipeline)["Toscana 2008/DSCN0038.jpg"]
    chosen = "Backup (alter Laptop)/Toscana/DSCN0038.jpg"
    with pipeline.engine.begin() as connection:
        assert decide(connection, DUPLICATES, group["id"], group["members"][chosen][0], reviewed=True)
    (library / "Backup (alter Laptop)/Toscana").rename(library / "Backup (alter Laptop)/Toskana")
    pipeline.catalog_everything(CATALOG)
    moved = groups(pipeline)["Backup (alter Laptop)/Toskana/DSCN0038.jpg"]
    assert (moved["id"], moved["reviewed"]) == (group["id"], True)
    assert removable(pipeline) == {"Toscana 2008/DSCN0038.jpg", "Backup (alter Laptop)/Toskana/DSCN0038 (1).jpg"}


def ids_by_path(pipeline, catalog: str) -> dict[str, int]:
    return {row["path"]: row["id"] for row in pipeline.rows(catalog, "id, convert_from(path, 'UTF8') AS path")}


def marks_by_path(pipeline, catalog: str) -> dict[str, tuple]:
    """(kept, rating, manual tags) of each file that is there."""
    with pipeline.engine.connect() as connection:
        rows = connection.execute(text("""
            SELECT convert_from(i.path, 'UTF8') AS path, i.kept, i.rating,
                   array_remove(array_agg(t.name ORDER BY t.name) FILTER (WHERE it.source = 'manual'), NULL) AS tags
            FROM images i LEFT JOIN image_tags it ON it.image_id = i.id LEFT JOIN tags t ON t.id = it.tag_id
            WHERE i.catalog_id = :c AND i.status = 'ok' GROUP BY i.id"""), {"c": pipeline.catalog_id(catalog)}).all()
    return {row.path: (row.kept, row.rating, row.tags or []) for row in rows}


def test_names_swapped_by_hand_swap_what_was_said_of_the_photos(pipeline, library):
    """The two files keep their rows (the inventory knows names) but trade contents: the
    person's marks go with the photos, not the names."""
    first, second = "exif.org samples/olympus-d320l.jpg", "exif.org samples/fujifilm-dx10.jpg"
    ids = ids_by_path(pipeline, CATALOG)
    with pipeline.engine.begin() as connection:
        keep_files(connection, [ids[first]])
        set_rating(connection, ids[first], 5)
        add_manual_tag(connection, ids[first], "Oma")
        set_rating(connection, ids[second], 1)
    (library / first).rename(library / "swapping.jpg")
    (library / second).rename(library / first)
    (library / "swapping.jpg").rename(library / second)

    pipeline.catalog_everything(CATALOG)

    marks = marks_by_path(pipeline, CATALOG)
    assert (marks[second], marks[first]) == ((True, 5, ["Oma"]), (False, 1, []))


@pytest.mark.parametrize("batch_size", [100, 1], ids=["one batch", "a batch each"])
def test_photos_rewritten_in_place_keep_what_was_said_of_them_and_another_photo_in_its_place_takes_nothing(
    pipeline, corpus, tmp_path, batch_size
):
    """As a photo manager writing keywords into its files, or saves at another quality; a photo
    copied over another one of the same name is not that photo."""
    names = ["fujifilm-dx10.jpg", "olympus-d320l.jpg", "kodak-dc210.jpg"]
    folder = tmp_path / "edited"
    folder.mkdir()
    for name in names:
        shutil.copy(corpus.photos / "exif.org samples" / name, folder / name)
    pipeline.add_catalog("edited", str(folder), batch_size=batch_size)
    pipeline.catalog_everything("edited")
    ids = ids_by_path(pipeline, "edited")
    with pipeline.engine.begin() as connection:
        for name in names:
            set_rating(connection, ids[name], 4)
            add_manual_tag(connection, ids[name], "Oma")
    for name in names[:2]:
        with Image.open(folder / name) as photo:
            photo.save(folder / name, quality=60, exif=photo.getexif())
    shutil.copy(corpus.photos / "Toscana 2008" / "DSCN0010.jpg", folder / names[2])

    pipeline.catalog_everything("edited")

    assert marks_by_path(pipeline, "edited") == {names[0]: (False, 4, ["Oma"]), names[1]: (False, 4, ["Oma"]),
                                                 names[2]: (False, None, [])}


@pytest.mark.parametrize("batch_size", [100, 1], ids=["one batch", "a batch each"])
def test_frames_of_a_burst_renamed_one_place_along_or_swapped_keep_each_frames_marks(
    pipeline, corpus, tmp_path, batch_size
):
    """Frames of one burst are as alike as a photo rewritten in place: their marks follow the bytes."""
    frames = [corpus.photos / "Zoo 2019" / f"DSCN120{n}.JPG" for n in (1, 2, 3)]
    for folder, names in (("series", ["1.jpg", "2.jpg", "3.jpg"]), ("swap", ["a.jpg", "b.jpg"])):
        (tmp_path / folder).mkdir()
        for frame, name in zip(frames, names, strict=False):
            shutil.copy(frame, tmp_path / folder / name)
        pipeline.add_catalog(folder, str(tmp_path / folder), batch_size=batch_size)
        pipeline.catalog_everything(folder)
    series, swap = ids_by_path(pipeline, "series"), ids_by_path(pipeline, "swap")
    with pipeline.engine.begin() as connection:
        for stars, name in enumerate(["1.jpg", "2.jpg", "3.jpg"], 1):
            set_rating(connection, series[name], stars)
        add_manual_tag(connection, series["3.jpg"], "Oma")
        set_rating(connection, swap["a.jpg"], 5)
        set_rating(connection, swap["b.jpg"], 1)
    for number in (3, 2, 1):
        (tmp_path / "series" / f"{number}.jpg").rename(tmp_path / "series" / f"{number + 1}.jpg")
    (tmp_path / "swap" / "a.jpg").rename(tmp_path / "swap" / "c.jpg")
    (tmp_path / "swap" / "b.jpg").rename(tmp_path / "swap" / "a.jpg")
    (tmp_path / "swap" / "c.jpg").rename(tmp_path / "swap" / "b.jpg")

    pipeline.catalog_everything("series")
    pipeline.catalog_everything("swap")

    assert marks_by_path(pipeline, "series") == {"2.jpg": (False, 1, []), "3.jpg": (False, 2, []),
                                                 "4.jpg": (False, 3, ["Oma"])}
    assert marks_by_path(pipeline, "swap") == {"a.jpg": (False, 1, []), "b.jpg": (False, 5, [])}


@pytest.mark.parametrize("last_batch_first", [False, True], ids=["batches in order", "last batch first"])
def test_a_series_renamed_one_place_along_across_batches_keeps_each_photos_marks(
    pipeline, corpus, tmp_path, last_batch_first
):
    """1.jpg 2.jpg 3.jpg renamed to 2.jpg 3.jpg 4.jpg, one file per batch: a content leaves a
    batch's file before or after it arrives in another's, in either order of the batches."""
    photos = [corpus.photos / "exif.org samples" / name for name in ("olympus-d320l.jpg", "fujifilm-dx10.jpg",
                                                                       "ricoh-rdc5300.jpg")]
    series = tmp_path / "series"
    series.mkdir()
    for number, photo in enumerate(photos, 1):
        shutil.copy(photo, series / f"{number}.jpg")
    pipeline.add_catalog("series", str(series), batch_size=1)
    pipeline.catalog_everything("series")
    ids = ids_by_path(pipeline, "series")
    with pipeline.engine.begin() as connection:
        for number in (1, 2, 3):
            set_rating(connection, ids[f"{number}.jpg"], number)
        add_manual_tag(connection, ids["3.jpg"], "Oma")
    for number in (3, 2, 1):
        (series / f"{number}.jpg").rename(series / f"{number + 1}.jpg")

    batches = pipeline.inventory("series")["batches_to_process"]
    assert len(batches) == 3  # 2.jpg and 3.jpg changed, 4.jpg new
    for batch in reversed(batches) if last_batch_first else batches:
        pipeline.analyze("series", batch)

    assert marks_by_path(pipeline, "series") == {
        "2.jpg": (False, 1, []), "3.jpg": (False, 2, []), "4.jpg": (False, 3, ["Oma"])}
    with pipeline.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM parked_marks")).scalar() == 0


def test_a_file_copied_elsewhere_then_deleted_hands_what_was_said_of_it_to_its_copy(pipeline, library):
    """A move across drives that a scan saw half done: the copy was read before the original
    went. A deletion while files wait to be read waits for them: one may be the file, moved."""
    moved = "exif.org samples/olympus-d320l.jpg"
    image = ids_by_path(pipeline, CATALOG)[moved]
    with pipeline.engine.begin() as connection:
        set_rating(connection, image, 4)
        add_manual_tag(connection, image, "Oma")
    (library / "Neu").mkdir()
    shutil.copy2(library / moved, library / "Neu" / "olympus-d320l.jpg")
    pipeline.catalog_everything(CATALOG)
    assert marks_by_path(pipeline, CATALOG)["Neu/olympus-d320l.jpg"] == (False, None, [])
    (library / moved).unlink()
    shutil.copy(library / "Edits" / next(p.name for p in (library / "Edits").iterdir()), library / "waiting.jpg")

    inventory = pipeline.inventory(CATALOG)  # waiting.jpg waits to be read
    assert marks_by_path(pipeline, CATALOG)["Neu/olympus-d320l.jpg"] == (False, None, [])
    pipeline.catalog_everything(CATALOG, inventory)

    assert marks_by_path(pipeline, CATALOG)["Neu/olympus-d320l.jpg"] == (False, 4, ["Oma"])


def test_the_export_gives_each_files_stars_and_tags(pipeline, library):
    rated = "exif.org samples/olympus-d320l.jpg"
    image = ids_by_path(pipeline, CATALOG)[rated]
    with pipeline.engine.begin() as connection:
        set_rating(connection, image, 4)
        add_manual_tag(connection, image, "Oma")
        add_manual_tag(connection, image, "Hochzeit")
    with Session(pipeline.engine) as session:
        files = {record["path"]: record for record in export_catalog(session, CATALOG)["files"]}
    assert (files[rated]["rating"], files[rated]["tags"]) == (4, ["Hochzeit", "Oma"])
    others = {(record["rating"], tuple(record["tags"])) for path, record in files.items() if path != rated}
    assert others == {(None, ())}


def test_a_removable_copy_names_the_keeper_holding_its_bytes_where_one_does(pipeline, corpus, tmp_path):
    """Quarantine checks the keeper it names before moving a copy: the one with the same bytes,
    though the copy is also in a near-duplicate group of another shot, kept there."""
    for folder in ("Papa", "Backup/Papa"):  # two shots of a scene, and a backup of both
        shutil.copytree(corpus.photos / "Zoo 2019" / "Papa", tmp_path / "twice" / folder)
    pipeline.add_catalog("twice", str(tmp_path / "twice"))
    pipeline.catalog_everything("twice")
    catalog_id = pipeline.catalog_id("twice")
    with pipeline.engine.begin() as connection:
        accept_suggestions(connection, catalog_id, exact=False, min_confidence=0, apply=True)
    with pipeline.engine.connect() as connection:
        rows = removable_files(connection, catalog_id)
        checksums = dict(connection.execute(text("SELECT id, checksum FROM images WHERE catalog_id = :c"),
                                            {"c": catalog_id}).all())
        in_groups = connection.execute(text("""
            SELECT m.image_id, count(*) FROM duplicate_members m JOIN duplicate_groups g ON g.id = m.group_id
            WHERE g.catalog_id = :c GROUP BY m.image_id"""), {"c": catalog_id}).all()
    assert len(rows) == 2 and max(count for _, count in in_groups) == 2  # the backup copies, one in two groups
    assert [checksums[row.keep_id] == checksums[row.id] for row in rows] == [True, True]
