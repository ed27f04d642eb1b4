"""Organize a reviewed copy of the corpus into dated trees, through the Python API, the CLI,
the asset and the Dagster job: what goes where, what is never copied, re-runs, changed files,
move and undo."""

import os
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.actions.organize import list_folders, organize, plan_catalog
from lumina_pipeline.analysis.organize import DEFAULT_TEMPLATE
from lumina_pipeline.analysis.plans import PLAN_SCHEMA
from lumina_pipeline.defs.actions import QuarantineFolder
from lumina_pipeline.defs.assets.organize import organize_plan
from lumina_pipeline.defs.organize import organize_job
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage import journal
from lumina_pipeline.storage.catalogs import TREE_LOCK_SPACE, CatalogError, add_source_directory, get_catalog, held_lock
from lumina_pipeline.storage.decisions import add_manual_tag, decide, set_rating
from lumina_pipeline.storage.groups import DUPLICATES
from lumina_pipeline.storage.organize import set_organizing
from lumina_pipeline_tests.actions.conftest import (
    KEPT_SIDECAR,
    edit_behind_the_catalog,
    rewrite_behind_the_catalog,
    snapshot,
)
from lumina_pipeline_tests.actions.test_quarantine import lumina

CATALOG = "organize"
COPIES = {b"Backup (alter Laptop)/Toscana/DSCN0038.jpg", b"Backup (alter Laptop)/Toscana/DSCN0038 (1).jpg"}
TWIN = b"Toscana 2008/Tag 2/DSCN0027.jpg"  # another DSCN0027.jpg of the same day, a byte longer
SIDECAR = b"Kamera/DSC_4410.xmp"  # of the RAW+JPEG stack DSC_4410
LONE_SIDECAR = b"Toscana 2008/DSCN0010.xmp"  # of a photo alone, written today: it goes where its photo goes
STACKS = [[b"RAW/NZ9_0001.dng", b"RAW/NZ9_0001.JPG"], [b"Kamera/DSC_4410.DNG", b"Kamera/DSC_4410.JPG", SIDECAR],
          [b"Phone/2022/IMG_0002.HEIC", b"Phone/2022/IMG_0002.MOV", KEPT_SIDECAR],
          [b"Toscana 2008/DSCN0010.jpg", LONE_SIDECAR]]


def test_each_kept_file_is_copied_to_its_dated_folder_once_and_the_sources_stay_untouched(library):
    prepare(library)
    before, rows = snapshot(library.photos), library.placed()
    organized = organize_into(library, "tidy")
    moves = relative_moves(library, organized.planned.plan, "tidy")
    assert organized.report.skipped == [] and organized.report.done == len(moves) > 40
    assert snapshot(library.photos) == before
    assert library.placed() == rows and source_folders(library) == [str(library.photos)]  # copies: rows stay
    tree = snapshot(library.photos.parent / "tidy")
    assert set(tree) == set(moves.values())
    assert all(tree[target] == before[source] for source, target in moves.items())  # bytes and mtime

    assert not set(moves) & (library.removable() | COPIES) and b"Toscana 2008/DSCN0038.jpg" in moves
    assert organized.planned.left_out["exact copies"] == len(COPIES)
    for shot in STACKS:  # one folder, names kept
        assert len({os.path.dirname(moves[path]) for path in shot}) == 1
        assert [os.path.basename(moves[path]) for path in shot] == [os.path.basename(path) for path in shot]
    assert (moves[b"Toscana 2008/DSCN0027.jpg"], moves[TWIN]) == (
        b"2008/2008-10-22/DSCN0027.jpg", b"2008/2008-10-22/DSCN0027 (2).jpg")
    stacked = {path for shot in STACKS for path in shot}
    captured = {bytes(row["path"]): row["captured"] for row in
                library.pipeline.rows(CATALOG, "path, dates->>'captured_at' AS captured")}
    for source in set(moves) - stacked:
        day = captured[source] and captured[source][:10]
        assert moves[source].startswith(f"{day[:4]}/{day}/".encode() if day else b"undated/")
    undated = organized.planned.plan.filter(year="undated").height
    assert undated == sum(captured[source] is None for source in set(moves) - stacked) > 0


def test_a_second_run_adds_nothing_and_a_new_photo_is_all_the_next_plan_holds(library):
    again = organize_into(library, "tidy")
    assert (again.report.done, len(again.planned.in_place)) == (0, len(snapshot(library.photos.parent / "tidy")))

    new_photo(library, b"Neu/IMG_9000.jpg", "2023:05:06 07:08:09")
    with library.actions() as actions:
        plan = plan_catalog(actions.connection, actions.catalog, move=False)
    assert relative_moves(library, plan.plan, "tidy") == {b"Neu/IMG_9000.jpg": b"2023/2023-05-06/IMG_9000.jpg"}
    assert organize_into(library, "tidy").report.done == 1


def test_a_file_changed_since_it_was_cataloged_is_left_where_it_is_with_the_reason(library, corpus):
    grown, rewritten = b"Alte Kameras/Nikon_D70.jpg", b"Garten/P8230001.JPG"
    edit_behind_the_catalog(library.photos, grown, rewritten)
    (library.photos.parent / "tidy-edited" / "Wedding 2024 (to fill)").mkdir(parents=True)  # the person's
    set_tree(library, "tidy-edited")
    with library.actions() as actions:  # a dry run tells what sizes and dates tell; only reading tells the rest
        preview = organize(actions, dry_run=True).report
    assert [(os.path.relpath(os.fsencode(path), os.fsencode(library.photos)), why[:12]) for path, why in preview.skipped
            ] == [(grown, "size changed")]

    organized = organize_into(library, "tidy-edited")
    skipped = {os.path.relpath(os.fsencode(source), os.fsencode(library.photos)): why
               for source, why in organized.report.skipped}
    assert skipped[grown].startswith("size changed") and skipped[rewritten].startswith("copy not verified: content")
    # the plan holds what it takes: not the grown file, left by its size; the rewritten one, found as it is copied
    assert len(skipped) == 2 and organized.report.done == len(organized.planned.plan) - 1
    tree = snapshot(library.photos.parent / "tidy-edited")
    assert len(tree) == organized.report.done and not any(p.endswith((b"Nikon_D70.jpg", b"P8230001.JPG")) for p in tree)

    assert library.undo().done == organized.report.done  # a copy's undo removes the copy, and its folders
    assert [folder.name for folder in (library.photos.parent / "tidy-edited").iterdir()] == ["Wedding 2024 (to fill)"]
    for changed in (grown, rewritten):
        shutil.copy2(os.fsencode(corpus.photos) + b"/" + changed, os.fsencode(library.photos) + b"/" + changed)


def test_a_photo_whose_sidecar_changed_since_it_was_cataloged_stays_with_it(library):
    """Moved, the photo would leave its edited sidecar behind: the whole shot waits for the next scan."""
    photo, sidecar = (os.fsdecode(os.fsencode(library.photos) + b"/" + path) for path in STACKS[-1])
    Path(sidecar).write_text("<x:xmpmeta><xmp:Rating>5</xmp:Rating></x:xmpmeta>")
    set_tree(library, "tidy-sidecar", move=True)
    for dry_run in (True, False):
        with library.actions() as actions:
            skipped = dict(organize(actions, dry_run=dry_run).report.skipped)
        assert skipped[sidecar].startswith("size changed")
        assert skipped[photo] == f"its stack stays whole: {sidecar} stays" and len(skipped) == 2
    assert os.path.exists(photo) and os.path.exists(sidecar)
    organized = snapshot(library.photos.parent / "tidy-sidecar")
    assert not any(path.endswith((b"DSCN0010.jpg", b"DSCN0010.xmp")) for path in organized)

    assert library.undo().done > 40
    Path(sidecar).write_text("<x:xmpmeta/>")
    library.pipeline.catalog_everything(CATALOG)


def test_a_shot_with_a_file_edited_at_its_size_and_mtime_stays_whole_and_so_does_a_photo_with_a_new_sidecar(
        library, corpus):
    """Only reading tells the JPEG of the pair DSC_4410 edited at its size and mtime, and only
    its folder a sidecar written beside a photo since the last scan: both shots wait whole,
    rather than move without them."""
    raw, jpeg, sidecar = (os.fsdecode(os.fsencode(library.photos) + b"/" + path) for path in STACKS[1])
    rewrite_behind_the_catalog(Path(jpeg))
    photo = library.photos / "Garten/P8230001.JPG"
    new_sidecar = photo.with_suffix(".xmp")
    new_sidecar.write_text("<x:xmpmeta><xmp:Rating>4</xmp:Rating></x:xmpmeta>")
    set_tree(library, "tidy-whole", move=True)
    with library.actions() as actions:
        organized = organize(actions, dry_run=False)
    skipped = dict(organized.report.skipped)
    assert skipped[jpeg] == "content differs from the catalog (checksum)"
    assert skipped[raw] == skipped[sidecar] == f"its stack stays whole: {jpeg} stays"
    assert skipped[str(photo)] == f"{new_sidecar} is new since the last scan (`lumina run` catalogs it)"
    assert len(skipped) == 4 and organized.report.done > 40
    assert all(os.path.exists(path) for path in (raw, jpeg, sidecar, photo, new_sidecar))

    assert library.undo().done == organized.report.done
    new_sidecar.unlink()
    shutil.copy2(os.fsencode(corpus.photos) + b"/" + STACKS[1][1], jpeg)


def test_an_organize_run_is_refused_while_another_writes_into_the_same_tree(library):
    """Two catalogs' runs into one tree would write a place's temporary copy in turn."""
    set_tree(library, "tidy-shared")
    tree = library.photos.parent / "tidy-shared"
    with held_lock(library.pipeline.engine, TREE_LOCK_SPACE, os.path.realpath(tree)):  # another catalog's run
        with library.actions() as actions, pytest.raises(CatalogError, match=f"writing into {tree}"):
            organize(actions, dry_run=False)
        with library.actions() as actions:  # a dry run writes nothing
            assert organize(actions, dry_run=True).report.done > 40
    assert not tree.exists()


def test_undo_leaves_the_copy_of_a_changed_original_says_where_and_passes_over_its_run_next_time(library):
    organized = organize_into(library, "tidy-kept")
    source, target = organized.planned.plan.select("source", "target").row(0)
    original = Path(os.fsdecode(source)).read_bytes()
    with open(source, "ab") as file:
        file.write(b"edited")  # the copy is now the only one of the photo as it was
    undone = library.undo()
    assert undone.done == organized.report.done - 1 and os.path.exists(target)
    [(where, why)] = undone.skipped
    assert where == os.fsdecode(target) and why.startswith("not undone: the copy stays, as the original is no longer")
    with library.actions() as actions:  # an older run whose undo was not tried comes first
        connection, catalog_id = actions.connection, actions.catalog_id
        one = organized.planned.plan[1:2][list(PLAN_SCHEMA)]
        journal.write_plan(connection, catalog_id, "untried", "organize", one)
        connection.execute(text("UPDATE file_actions SET state = 'done', created_at = now() - interval '1 day' "
                                "WHERE run_id = 'untried'"))
        assert journal.runs_to_undo(connection, catalog_id)[0] != organized.report.run_id
        connection.execute(text("UPDATE file_actions SET reason = 'not purged: busy', created_at = now() "
                                "WHERE run_id = 'untried'"))  # a purge's trouble is no undo tried
        assert journal.runs_to_undo(connection, catalog_id)[0] == "untried"
        connection.rollback()
    Path(os.fsdecode(source)).write_bytes(original)
    os.utime(source, ns=(os.stat(target).st_mtime_ns,) * 2)
    assert library.undo(organized.report.run_id).done == 1 and snapshot(library.photos.parent / "tidy-kept") == {}


def test_a_file_of_the_photos_name_size_and_mtime_but_other_bytes_is_not_taken_for_it(library):
    set_tree(library, "tidy-other-camera")
    with library.actions() as actions:
        planned = plan_catalog(actions.connection, actions.catalog, move=False)
    stacked = {os.fsencode(library.photos) + b"/" + path for shot in STACKS for path in shot}
    source, target = next(row for row in planned.plan.select("source", "target").rows() if row[0] not in stacked)
    os.makedirs(os.path.dirname(target))
    Path(os.fsdecode(target)).write_bytes(bytes(os.path.getsize(source)))  # another camera's file of that name
    shutil.copystat(source, target)

    organized = organize_into(library, "tidy-other-camera")
    stem, extension = os.path.splitext(target)
    assert dict(organized.planned.plan.select("source", "target").rows())[source] == stem + b" (2)" + extension
    assert Path(os.fsdecode(target)).read_bytes() == bytes(os.path.getsize(source))  # left as it was
    assert Path(os.fsdecode(stem + b" (2)" + extension)).read_bytes() == Path(os.fsdecode(source)).read_bytes()
    assert library.undo().done == organized.report.done


def test_the_asset_shows_the_plan_and_the_job_is_a_dry_run_by_default(library, database_url):
    set_tree(library, "tidy-preview")
    before = snapshot(library.photos)
    with library.actions() as actions:
        files = len(plan_catalog(actions.connection, actions.catalog, move=False).plan)
    asset = library.pipeline.materialize([organize_plan], CATALOG)
    shown = {k: v.value for k, v in asset.asset_materializations_for_node("organize_plan")[0].metadata.items()}
    assert (shown["files"], shown["renamed"], shown["operation"]) == (files, 1, "copy")
    assert shown["undated"] == shown["by_year"]["undated"] > 0 and "DSCN0027 (2).jpg" in shown["preview"]

    def run(config: dict) -> dg.ExecuteInProcessResult:
        return organize_job.execute_in_process(
            instance=library.pipeline.instance, partition_key=CATALOG,
            run_config={"ops": {"organize_catalog": {"config": config}}},
            resources={"database": CatalogDatabase(url=database_url),
                       "quarantine": QuarantineFolder(root=str(library.quarantine))}, raise_on_error=False)

    def dry_run(config: dict) -> dict:
        output = next(e for e in run(config).all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT)
        return {key: value.value for key, value in output.step_output_data.metadata.items()}

    metadata = dry_run({})
    assert (metadata["dry_run"], metadata["files"], metadata["skipped"], metadata["renamed"]) == (True, files, 0, 1)
    assert (metadata["operation"], metadata["into"]) == ("copy", str(library.photos.parent / "tidy-preview"))
    assert len(metadata["file_paths"]) == min(files, 100)
    assert str(library.photos / "Toscana 2008" / "DSCN0038.jpg") in metadata["file_paths"]
    set_tree(library, "tidy-preview", move=True)  # the catalog moves by default; one run may copy
    assert [dry_run(config)["operation"] for config in ({}, {"move": False})] == ["move", "copy"]
    from_the_ui = library.photos.parent / "tidy-from-the-ui"  # the tree set in the job's config, as the CLI sets it
    assert dry_run({"into": str(from_the_ui), "template": "{year}"})["into"] == str(from_the_ui)
    with library.actions() as actions:
        assert (actions.catalog.organized_directory, actions.catalog.organize_template) == (str(from_the_ui), "{year}")
    failed = run({"into": "tidy"})
    [failure] = [event.step_failure_data.error for event in failed.get_step_failure_events()]
    assert not failed.success and failure and "`into` must be an absolute folder, not 'tidy'" in failure.message
    assert snapshot(library.photos) == before and not from_the_ui.exists()
    assert not (library.photos.parent / "tidy-preview").exists()


def test_the_cli_moves_into_the_tree_and_undo_puts_every_file_back(library, database_url, tmp_path):
    tree = library.photos.parent / "tidy-moved"
    before = snapshot(library.photos)
    lumina(library, database_url, tmp_path, "catalog", "organize", CATALOG, "--into", str(tree))
    dry = lumina(library, database_url, tmp_path, "organize", CATALOG, "--dry-run")
    files = int(dry.stdout.split()[2])
    assert dry.stdout.startswith("would copy ") and "undated: " in dry.stdout and not tree.exists()
    moved = lumina(library, database_url, tmp_path, "organize", CATALOG, "--move")
    assert moved.stdout.startswith(f"moved {files} files (") and f"undo {CATALOG}" in moved.stdout
    left, organized = snapshot(library.photos), snapshot(tree)
    assert len(organized) == files and len(left) + files == len(before)
    assert sorted(organized.values()) == sorted(state for path, state in before.items() if path not in left)

    back = lumina(library, database_url, tmp_path, "undo", CATALOG)
    assert back.stdout.startswith(f"put back {files} files (")
    run_id = back.stdout.split(" of run ")[1].split()[0]
    again = lumina(library, database_url, tmp_path, "undo", CATALOG, run_id, check=False)
    assert again.returncode == 2  # as every refusal of `lumina`
    refused, listed = again.stderr.split("; runs that have: ")
    assert refused == f"lumina: run {run_id} of {CATALOG} has no file left to undo" and run_id not in listed
    assert snapshot(library.photos) == before and list(tree.iterdir()) == []  # nor the folders it made
    assert str(tree) not in source_folders(library)  # no file of the catalog is there now

    lumina(library, database_url, tmp_path, "catalog", "organize", CATALOG, "--into", str(tree), "--move")
    assert lumina(library, database_url, tmp_path, "organize", CATALOG, "--dry-run").stdout.startswith("would move")
    lumina(library, database_url, tmp_path, "organize", CATALOG, "--copy")  # copies this time
    removed = lumina(library, database_url, tmp_path, "undo", CATALOG)
    assert removed.stdout.startswith(f"removed the copies of {files} files (") and "never touched" in removed.stdout
    assert snapshot(library.photos) == before and list(tree.iterdir()) == []


def test_after_a_move_the_catalog_follows_its_photos_into_the_tree_and_back_on_undo(library):
    tree, photo = library.photos.parent / "tidy-followed", b"Toscana 2008/DSCN0038.jpg"
    with library.pipeline.engine.begin() as connection:  # a person's decisions on a photo that moves
        image_id = connection.execute(text("SELECT id FROM images WHERE path = :p"), {"p": photo}).scalar_one()
        set_rating(connection, image_id, 4)
        add_manual_tag(connection, image_id, "Toscana")
    before, rows = snapshot(library.photos), library.placed()
    set_tree(library, "tidy-followed", move=True)
    with library.actions() as actions:
        moved = organize(actions, dry_run=False)
    moves = relative_moves(library, moved.planned.plan, "tidy-followed")
    assert moved.report.done == len(moves) > 40 and photo in moves and set(moves) & {p for s in STACKS for p in s}

    assert library.pipeline.inventory(CATALOG)["deleted"] == 0
    library.pipeline.catalog_everything(CATALOG)
    ids = dict(moved.planned.plan.select("image_id", "source").rows())
    followed = {image_id: (str(tree), moves[os.path.relpath(source, os.fsencode(library.photos))])
                for image_id, source in ids.items()}
    assert library.placed() == {image_id: followed.get(image_id, row[:2]) + row[2:] for image_id, row in rows.items()}
    assert (rows[image_id][5], rows[image_id][-1]) == (4, ["Toscana"])  # the rating and tag that came along
    assert source_folders(library).count(str(tree)) == 1 and library.rows_point_at_their_files()

    set_tree(library, "tidy-followed", move=True)  # the tree, now a folder of the catalog, stays its tree
    with library.actions() as actions:
        again = plan_catalog(actions.connection, actions.catalog, move=True)
    assert (len(again.plan), len(again.in_place)) == (0, len(moves))
    shown = library.pipeline.materialize([organize_plan], CATALOG).asset_materializations_for_node("organize_plan")
    assert (shown[0].metadata["files"].value, shown[0].metadata["in_place"].value) == (0, len(moves))

    assert library.undo().done == len(moves)
    assert str(tree) not in source_folders(library)  # no file of the catalog is there now
    assert library.pipeline.inventory(CATALOG)["deleted"] == 0
    library.pipeline.catalog_everything(CATALOG)
    assert snapshot(library.photos) == before and library.placed() == rows


def source_folders(library) -> list[str]:
    with Session(library.pipeline.engine) as session:
        return get_catalog(session, CATALOG).source_directories


def prepare(library) -> None:
    """A twin that takes "(2)", a sidecar for a stack and one for a photo alone, and one exact
    group not reviewed (its copies are not removable, yet never organized twice)."""
    photos = os.fsencode(library.photos)
    original = photos + b"/Toscana 2008/DSCN0027.jpg"
    Path(os.fsdecode(photos + b"/" + TWIN)).write_bytes(Path(os.fsdecode(original)).read_bytes() + b"\0")
    shutil.copystat(original, photos + b"/" + TWIN)
    for sidecar in (SIDECAR, LONE_SIDECAR):
        Path(os.fsdecode(photos + b"/" + sidecar)).write_text("<x:xmpmeta/>")
    library.pipeline.catalog_everything(CATALOG)
    with library.pipeline.engine.begin() as connection:
        group = connection.execute(text("""SELECT m.group_id FROM duplicate_members m JOIN images i ON i.id = m.image_id
                                           WHERE i.path = :p"""), {"p": b"Toscana 2008/DSCN0038.jpg"}).scalar_one()
        decide(connection, DUPLICATES, group, None, reviewed=False)


def new_photo(library, path: bytes, taken: str) -> None:
    """A photo of noise taken at `taken` (EXIF), cataloged."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken  # DateTimeOriginal
    pixels = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    target = library.photos / os.fsdecode(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(target, exif=exif)
    library.pipeline.catalog_everything(CATALOG)


def set_tree(library, name: str, move: bool = False) -> None:
    with Session(library.pipeline.engine) as session, session.begin():
        set_organizing(session, CATALOG, str(library.photos.parent / name), DEFAULT_TEMPLATE, move)


def organize_into(library, name: str, **options):
    set_tree(library, name)
    with library.actions() as actions:
        return organize(actions, dry_run=False, **options)


def relative_moves(library, plan, tree: str) -> dict[bytes, bytes]:
    photos, organized = os.fsencode(library.photos), os.fsencode(library.photos.parent / tree)
    return {os.path.relpath(source, photos): os.path.relpath(target, organized)
            for source, target in plan.select("source", "target").rows()}


def test_a_move_onto_the_place_of_a_file_gone_from_the_tree_takes_over_its_row(library):
    tree, place = library.photos.parent / "tidy-followed", "2008/2008-10-22/DSCN0027.jpg"
    (tree / place).parent.mkdir(parents=True)
    (tree / place).write_bytes(b"a file of the tree, cataloged, then deleted by hand")
    with library.pipeline.engine.begin() as connection:  # as an earlier move made it
        add_source_directory(connection, get_catalog(Session(connection), CATALOG).id, str(tree))
    library.pipeline.inventory(CATALOG)
    (tree / place).unlink()
    assert library.pipeline.inventory(CATALOG)["deleted"] == 1

    set_tree(library, "tidy-followed", move=True)
    with library.actions() as actions:
        moved = organize(actions, dry_run=False)
    moves = relative_moves(library, moved.planned.plan, "tidy-followed")
    assert moved.report.skipped == [] and os.fsencode(place) in moves.values()  # the row there goes
    assert library.pipeline.inventory(CATALOG)["deleted"] == 0 and library.rows_point_at_their_files()
    assert not [row for row in library.placed().values() if row[3] == "deleted"]
    library.undo()


def test_a_file_of_the_tree_dated_after_2262_is_listed_with_the_last_date_the_catalog_holds(tmp_path):
    (tmp_path / "2021").mkdir()
    (tmp_path / "2021" / "scan.jpg").write_bytes(b"photo")
    os.utime(tmp_path / "2021" / "scan.jpg", ns=(0, 10_413_792_000 * 10**9))  # 2300, as copystat keeps it
    assert list_folders(os.fsencode(tmp_path), ["2021"]).rows() == [("2021", b"scan.jpg", 5, 2**63 - 1)]
