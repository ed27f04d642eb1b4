"""Quarantine on a reviewed copy of the corpus, through the Python API, the CLI and the Dagster
job: what moves, what never does, what a rescan makes of it, undo and purge."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.utils import make_new_run_id
from sqlalchemy import text

from lumina_pipeline.actions.runs import KEPT, QUARANTINE
from lumina_pipeline.analysis.plans import plan_quarantine
from lumina_pipeline.definitions import defs
from lumina_pipeline.defs.actions import QuarantineFolder, quarantine_job
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.defs.sensors import grouping_after_failed_file_actions_sensor, grouping_after_file_actions_sensor
from lumina_pipeline.storage.browse import removable_files
from lumina_pipeline.storage.catalogs import CatalogError
from lumina_pipeline.storage.frames import read_frame
from lumina_pipeline.storage.groups import load_catalog_rows
from lumina_pipeline.storage.journal import REMOVABLE_SCHEMA
from lumina_pipeline_tests.actions.conftest import (
    KEPT_SIDECAR,
    SIDECAR,
    edit_behind_the_catalog,
    rewrite_behind_the_catalog,
    snapshot,
)
from lumina_pipeline_tests.conftest import lumina_env

CATALOG = "quarantine"
LIVE_PHOTO = [b"Phone/2022/IMG_0002.HEIC", b"Phone/2022/IMG_0002.MOV", KEPT_SIDECAR]  # kept; its backup is removable
BACKUP = [b"Backup (alter Laptop)/iPhone/IMG_0002.HEIC", b"Backup (alter Laptop)/iPhone/IMG_0002.MOV", SIDECAR]


def test_quarantine_moves_the_removable_files_whole_stacks_and_all_and_undo_puts_everything_back(library):
    before, statuses = snapshot(library.photos), status_by_path(library)
    removable = library.removable()
    assert set(BACKUP) <= removable and not set(LIVE_PHOTO) & removable

    report = library.quarantine_removable()
    assert report.done == len(removable) and report.skipped == [] and report.resumed == 0
    assert library.quarantined() == {path: before[path] for path in removable}  # relative paths, bytes, mtimes
    assert snapshot(library.photos) == {path: state for path, state in before.items() if path not in removable}
    assert {status_by_path(library)[path] for path in removable} == {"quarantined"}
    with library.pipeline.engine.connect() as connection:
        catalog_id = library.pipeline.catalog_id(CATALOG)
        moved = set(connection.execute(text("SELECT id FROM images WHERE catalog_id = :c AND status = 'quarantined'"),
                                       {"c": catalog_id}).scalars())
        grouped = set(load_catalog_rows(connection, catalog_id)["id"])
    assert len(moved) == len(removable) and grouped and not grouped & moved  # the next regrouping leaves them out

    rescan = library.pipeline.inventory(CATALOG)  # quarantined files are the journal's, not "deleted"
    assert (rescan["new"], rescan["changed"], rescan["deleted"]) == (0, 0, 0)
    undone = library.undo()
    assert (undone.run_id, undone.done, undone.skipped) == (report.run_id, len(removable), [])
    assert snapshot(library.photos) == before and not (library.quarantine / CATALOG).exists()
    assert status_by_path(library) == statuses
    rescan = library.pipeline.inventory(CATALOG)
    assert (rescan["new"], rescan["changed"], rescan["deleted"]) == (0, 0, 0)


def test_a_file_changed_since_it_was_cataloged_stays_where_it_is_with_the_reason(library, corpus):
    grown, rewritten, *_ = sorted(library.removable())
    edit_behind_the_catalog(library.photos, grown, rewritten)
    path = library.photos / os.fsdecode(rewritten)
    edited = snapshot(library.photos)

    report = library.quarantine_removable()
    skipped = dict(report.skipped)
    assert skipped[os.fsdecode(os.fsencode(library.photos) + b"/" + grown)].startswith("size changed")
    assert skipped[str(path)] == "content differs from the catalog (checksum)"
    assert len(skipped) == 2 and {grown, rewritten} <= set(snapshot(library.photos))
    assert {edited[p] for p in (grown, rewritten)} == {snapshot(library.photos)[p] for p in (grown, rewritten)}
    # the grown file is left before the run, by its size; the rewritten one as it was to move, by its content
    assert journal_states(library, report.run_id) == {"done": report.done, "skipped": 1}

    library.undo()
    for changed in (grown, rewritten):
        shutil.copy2(os.fsencode(corpus.photos) + b"/" + changed, os.fsencode(library.photos) + b"/" + changed)


def test_a_copy_whose_keeper_is_gone_since_the_last_scan_stays_where_it_is_with_the_reason(library, tmp_path):
    with library.pipeline.engine.connect() as connection:
        removable = removable_files(connection, library.pipeline.catalog_id(CATALOG))
    keeper = next(row.keep_path for row in removable if row.reason == "duplicate")
    copies = {row.path for row in removable if row.keep_path == keeper}
    keeper_path = os.fsencode(library.photos) + b"/" + keeper
    os.rename(keeper_path, tmp_path / "deleted by hand")  # no rescan since
    before = snapshot(library.photos)

    for dry_run in (True, False):
        with library.actions() as actions:
            report = actions.quarantine_removable(dry_run=dry_run)
        skipped = dict(report.skipped)
        assert report.done == len(removable) - len(copies) and len(skipped) == len(copies)
        for copy in copies:
            why = skipped[os.fsdecode(os.fsencode(library.photos) + b"/" + copy)]
            assert why == f"its keeper {os.fsdecode(keeper_path)} changed since the last scan (missing)"
    assert {copy: snapshot(library.photos)[copy] for copy in copies} == {copy: before[copy] for copy in copies}

    library.undo()
    os.rename(tmp_path / "deleted by hand", keeper_path)


def test_a_copy_whose_keeper_rotted_at_its_size_and_date_stays_where_it_is_and_is_never_purged(library):
    checksums = {row["id"]: row["checksum"] for row in library.pipeline.rows(CATALOG, "id, checksum")}
    with library.pipeline.engine.connect() as connection:
        removable = removable_files(connection, library.pipeline.catalog_id(CATALOG))
    copy = next(row for row in removable if checksums[row.keep_id] == checksums[row.id] and row.reason == "duplicate")
    keeper_path = library.photos / os.fsdecode(copy.keep_path)
    copy_path = os.fsdecode(os.fsencode(library.photos) + b"/" + copy.path)
    original, info = keeper_path.read_bytes(), keeper_path.stat()
    rotted = bytearray(original)
    rotted[len(rotted) // 2] ^= 0xFF
    keeper_path.write_bytes(bytes(rotted))
    os.utime(keeper_path, ns=(info.st_atime_ns, info.st_mtime_ns))  # bit rot leaves both size and date

    with library.actions() as actions:
        report = actions.quarantine_removable(dry_run=False)
    assert dict(report.skipped)[copy_path] == f"its copy {keeper_path} holds other content: this may be the only one"
    library.undo()

    keeper_path.write_bytes(original)
    os.utime(keeper_path, ns=(info.st_atime_ns, info.st_mtime_ns))


def test_a_stack_whose_video_has_no_copy_left_is_never_removable(library, tmp_path):
    """The kept Live Photo's video deleted by hand: its backup's video is the last copy, so the
    backup stays whole, though its still is a reviewed copy of the kept one."""
    kept_video = library.photos / os.fsdecode(LIVE_PHOTO[1])
    os.rename(kept_video, tmp_path / "deleted by hand")
    library.pipeline.inventory(CATALOG)
    assert not set(BACKUP) & library.removable()
    report = library.quarantine_removable()
    assert not set(BACKUP) & set(library.quarantined())
    still, video, sidecar = (os.fsdecode(os.fsencode(library.photos) + b"/" + path) for path in BACKUP)
    whole = f"its stack stays whole: {video} has no copy that stays"
    assert report.skipped == [(still, whole), (video, "the kept shot has no copy of it"), (sidecar, whole)]

    library.undo()
    os.rename(tmp_path / "deleted by hand", kept_video)
    library.pipeline.catalog_everything(CATALOG)
    assert set(BACKUP) <= library.removable()


def test_a_sidecar_whose_copy_holds_other_bytes_stays_with_its_whole_stack(library):
    """A sidecar is cataloged by name and size only: its copy beside the kept Live Photo, edited
    to other bytes of the same size and mtime, keeps the backup's sidecar, still and video in place."""
    copy = library.photos / os.fsdecode(KEPT_SIDECAR)
    mtime = os.stat(copy).st_mtime_ns
    copy.write_text("<x:xmpmetA/>")
    os.utime(copy, ns=(mtime, mtime))
    assert set(BACKUP) <= library.removable()

    report = library.quarantine_removable()
    skipped = dict(report.skipped)
    sidecar, *stack = (os.fsdecode(os.fsencode(library.photos) + b"/" + path) for path in (SIDECAR, *BACKUP[:2]))
    assert skipped[sidecar] == f"its copy {copy} holds other content: this may be the only one"
    assert all(skipped[path] == f"its stack stays whole: {sidecar} stays" for path in stack)
    assert len(skipped) == 3 and not set(BACKUP) & set(library.quarantined())

    library.undo()
    copy.write_text("<x:xmpmeta/>")
    os.utime(copy, ns=(mtime, mtime))


def test_a_sidecar_counts_as_copied_only_by_one_of_the_kept_shot(library, tmp_path):
    """The kept Live Photo's sidecar gone; another photo's sidecar of the same size is no copy of its edits."""
    kept_sidecar, stranger = library.photos / os.fsdecode(KEPT_SIDECAR), library.photos / "Toscana 2008/DSCN0010.xmp"
    shutil.copy2(kept_sidecar, stranger)
    os.rename(kept_sidecar, tmp_path / "moved away")
    library.pipeline.catalog_everything(CATALOG)
    assert not set(BACKUP) & library.removable()
    with library.actions() as actions:  # the dry run names the backup shot as staying, and why
        skipped = dict(actions.quarantine_removable(dry_run=True).skipped)
    still, video, sidecar = (os.fsdecode(os.fsencode(library.photos) + b"/" + path) for path in BACKUP)
    assert skipped[sidecar] == "the kept shot has no copy of it"
    assert skipped[still] == skipped[video] == f"its stack stays whole: {sidecar} has no copy that stays"

    os.rename(tmp_path / "moved away", kept_sidecar)
    stranger.unlink()
    library.pipeline.catalog_everything(CATALOG)
    assert set(BACKUP) <= library.removable()


def test_a_stack_with_a_file_edited_at_its_size_and_mtime_stays_whole_and_so_does_a_photo_with_a_new_sidecar(
        library, corpus):
    """Only reading tells the backup Live Photo's video edited at its size and mtime: its still
    and sidecar stay with it rather than move without it. A sidecar written beside a copy since
    the last scan keeps the copy in place, rather than leave the edits beside nothing."""
    before = snapshot(library.photos)
    still, video, sidecar = (os.fsdecode(os.fsencode(library.photos) + b"/" + path) for path in BACKUP)
    rewrite_behind_the_catalog(Path(video))
    copy = library.photos / "Backup (alter Laptop)/Toscana/DSCN0038.jpg"
    new_sidecar = copy.with_suffix(".xmp")
    new_sidecar.write_text("<x:xmpmeta><xmp:Label>Red</xmp:Label></x:xmpmeta>")
    link = copy.with_name("DSCN0038 (1).xmp")  # a link, which no scan catalogs, holds nothing
    link.symlink_to("nowhere")

    report = library.quarantine_removable()
    skipped = dict(report.skipped)
    assert skipped[video] == "content differs from the catalog (checksum)"
    assert skipped[still] == skipped[sidecar] == f"its stack stays whole: {video} stays"
    assert skipped[str(copy)] == f"{new_sidecar} is new since the last scan (`lumina run` catalogs it)"
    assert len(skipped) == 4 and report.done > 0
    assert not {*BACKUP, os.fsencode(copy.relative_to(library.photos))} & set(library.quarantined())

    library.undo()
    new_sidecar.unlink()
    link.unlink()
    shutil.copy2(os.fsencode(corpus.photos) + b"/" + BACKUP[1], video)
    assert snapshot(library.photos) == before


def test_a_stack_whose_sidecar_was_edited_since_it_was_cataloged_stays_whole(library):
    """The backup Live Photo's sidecar edited (an app saved a rating into it): the sidecar stays, and so do
    its still and video, rather than leave the edits beside nothing."""
    sidecar = library.photos / os.fsdecode(SIDECAR)
    sidecar.write_text("<x:xmpmeta><xmp:Rating>5</xmp:Rating></x:xmpmeta>")
    report = library.quarantine_removable()
    skipped = dict(report.skipped)
    still, video = (os.fsdecode(os.fsencode(library.photos) + b"/" + path) for path in BACKUP[:2])
    assert skipped[str(sidecar)].startswith("size changed")
    assert skipped[still] == skipped[video] == f"its stack stays whole: {sidecar} stays"
    assert not set(BACKUP) & set(library.quarantined()) and report.done > 0

    library.undo()
    sidecar.write_text("<x:xmpmeta/>")
    library.pipeline.catalog_everything(CATALOG)


def test_undo_never_overwrites_a_file_that_appeared_in_the_meantime(library):
    before = snapshot(library.photos)
    report = library.quarantine_removable()
    intruder = library.photos / os.fsdecode(BACKUP[0])
    intruder.write_bytes(b"a new photo, saved under the old name")

    refused = library.undo()
    assert refused.done == report.done - 1
    [(where, why)] = refused.skipped  # the file left in quarantine, and what keeps it there
    assert where.startswith(str(library.quarantine)) and where.endswith(str(BACKUP[0], "utf-8"))
    assert why.startswith("not undone:") and f"{intruder} is in the way" in why
    assert intruder.read_bytes() == b"a new photo, saved under the old name"
    assert set(library.quarantined()) == {BACKUP[0]}
    assert journal_states(library, report.run_id) == {"undone": report.done - 1, "done": 1}

    intruder.unlink()
    assert library.undo().done == 1  # the newest run with something left to undo
    assert snapshot(library.photos) == before


def test_undo_of_a_file_deleted_from_quarantine_says_so_though_another_took_its_place(library, corpus):
    report = library.quarantine_removable()
    [run] = list((library.quarantine / CATALOG).iterdir())
    gone = min(path for path in run.rglob("*") if path.is_file())
    relative = gone.relative_to(run / gone.relative_to(run).parts[0])  # <run>/<root index>/<path>
    original, size = library.photos / relative, gone.stat().st_size
    gone.unlink()  # deleted from the quarantine by hand
    original.write_bytes(b"another photo, saved under the old name")

    undone = library.undo()
    assert undone.done == report.done - 1
    assert undone.skipped == [(str(gone), f"not undone: missing, and {original} holds another file "
                                          f"(size changed (39 bytes, cataloged {size}))")]
    assert status_by_path(library)[os.fsencode(relative)] == "quarantined"  # not the other file's row

    shutil.copy2(corpus.photos / relative, original)  # as it was: the next undo settles the run
    assert library.undo().done == 1


def test_a_file_put_back_by_hand_is_the_catalogs_again_and_undo_leaves_it_be(library):
    before, statuses = snapshot(library.photos), status_by_path(library)
    report = library.quarantine_removable()
    [run] = list((library.quarantine / CATALOG).iterdir())
    copy = "Backup (alter Laptop)/Toscana/DSCN0038 (1).jpg"  # a file of no stack
    os.rename(run / "0" / copy, library.photos / copy)  # dragged back, its date kept
    assert library.pipeline.inventory(CATALOG)["put_back_from_quarantine"] == 1
    assert status_by_path(library)[os.fsencode(copy)] == statuses[os.fsencode(copy)]
    assert os.fsencode(copy) not in library.removable()  # taken back: kept, never quarantined again
    assert journal_states(library, report.run_id) == {"done": report.done - 1, "undone": 1}

    undone = library.undo()
    assert (undone.done, undone.skipped) == (report.done - 1, [])
    assert snapshot(library.photos) == before and status_by_path(library) == statuses
    keep_paths(library, [copy], False)  # as the next tests expect it


def test_a_stack_put_back_in_part_by_hand_is_never_purged(library):
    before = snapshot(library.photos)
    report = library.quarantine_removable()
    [run] = list((library.quarantine / CATALOG).iterdir())
    still = os.fsdecode(BACKUP[0])
    os.rename(run / "0" / still, library.photos / still)  # the still dragged back, its video and sidecar left
    assert library.pipeline.inventory(CATALOG)["put_back_from_quarantine"] == 1
    with library.pipeline.engine.begin() as connection:  # those two quarantined long ago
        connection.execute(text("""UPDATE file_actions SET created_at = now() - interval '10 days' WHERE run_id = :r
                                   AND image_id IN (SELECT id FROM images WHERE path = ANY(:p))"""),
                           {"r": report.run_id, "p": BACKUP[1:]})
    with library.actions() as actions:
        purged = actions.purge(older_than_days=5)
    why = f"not purged: its stack's {library.photos / still} is back in its folder"
    assert purged.done == 0 and [reason for _, reason in purged.skipped] == [why, why]

    library.undo()
    assert snapshot(library.photos) == before
    keep_paths(library, [still], False)


def test_a_kept_file_is_never_moved_whatever_the_plan_says(library):
    before = snapshot(library.photos)
    with library.actions() as actions:
        files = read_frame(actions.connection, """  -- a group's primary and a file a person now keeps
            SELECT i.id, i.source_root, i.path, i.size_bytes, i.mtime_ns, i.checksum, i.status FROM images i
            WHERE i.catalog_id = :c AND (i.path = :removable OR i.id IN (
                SELECT primary_image_id FROM duplicate_groups WHERE catalog_id = :c LIMIT 1))""",
            {"c": actions.catalog_id, "removable": min(library.removable())}, REMOVABLE_SCHEMA)
        plan, _ = plan_quarantine(files, actions.catalog.source_directories, os.fsencode(library.quarantine / "x"))
        keep(library, plan["image_id"].to_list(), True)
        report = actions.apply(QUARANTINE, "kept-test", plan)
    keep(library, plan["image_id"].to_list(), False)
    assert report.done == 0 and [reason for _, reason in report.skipped] == [KEPT, KEPT]
    assert snapshot(library.photos) == before


def test_one_quarantine_undo_or_purge_of_a_catalog_at_a_time(library):
    with library.actions(), pytest.raises(CatalogError, match="is running"), library.actions():
        pass
    with library.actions():  # given back
        pass


def test_the_dagster_job_is_a_dry_run_by_default_and_says_what_would_move(library, database_url):
    assert defs().resolve_job_def("quarantine_job")  # in the code location the UI loads
    before = snapshot(library.photos)
    removable = library.removable()

    def run(config: dict) -> tuple[dg.ExecuteInProcessResult, dg.RunRequest | None]:
        """The job's run, and what the sensor that follows file actions asks for after it."""
        result = quarantine_job.execute_in_process(
            instance=library.pipeline.instance, partition_key=CATALOG,
            run_config={"ops": {"quarantine_removable": {"config": config}}},
            resources={"database": CatalogDatabase(url=database_url),
                       "quarantine": QuarantineFolder(root=str(library.quarantine))})
        followed = grouping_after_file_actions_sensor(dg.build_run_status_sensor_context(
            sensor_name=grouping_after_file_actions_sensor.name, dagster_instance=library.pipeline.instance,
            dagster_run=result.dagster_run, dagster_event=result.get_run_success_event()))
        return result, followed

    result, regrouping = run({})
    assert result.success and snapshot(library.photos) == before and library.quarantined() == {}
    assert regrouping is None  # a dry run moved nothing to regroup
    _, regrouping = run({"dry_run": False})
    assert set(library.quarantined()) == removable and regrouping and regrouping.partition_key == CATALOG
    library.undo()
    failed = library.pipeline.instance.add_run(dg.DagsterRun(  # a run that moved some files, then failed
        job_name=quarantine_job.name, run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
        run_config={"ops": {"quarantine_removable": {"config": {"dry_run": False}}}},
        tags={"dagster/partition": CATALOG}))
    failure = library.pipeline.instance.report_run_failed(failed)
    regrouping = grouping_after_failed_file_actions_sensor(dg.build_run_status_sensor_context(
        sensor_name=grouping_after_failed_file_actions_sensor.name, dagster_instance=library.pipeline.instance,
        dagster_run=failed, dagster_event=failure))
    assert regrouping and regrouping.partition_key == CATALOG
    output = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT)
    metadata = {key: value.value for key, value in output.step_output_data.metadata.items()}
    sizes = {path: os.stat(library.photos / os.fsdecode(path)).st_size for path in removable}
    assert metadata["dry_run"] is True and metadata["run_id"] == ""
    assert (metadata["files"], metadata["bytes"], metadata["skipped"]) == (len(removable), sum(sizes.values()), 0)
    assert sorted(metadata["file_paths"]) == sorted(os.fsdecode(library.photos / os.fsdecode(p)) for p in removable)


def test_the_cli_says_what_would_move_moves_it_and_puts_it_back(library, database_url, tmp_path):
    removable = library.removable()
    before = snapshot(library.photos)
    edited = library.photos / os.fsdecode(sorted(removable)[0])
    original, mtime = edited.read_bytes(), edited.stat().st_mtime_ns
    edited.write_bytes(original + b"edited")
    dry = lumina(library, database_url, tmp_path, "quarantine", CATALOG, "--dry-run").stdout.splitlines()
    assert dry[0].startswith(f"would move {len(removable) - 1} files (") and dry[0].endswith(":")
    assert dry[-2:] == ["1 file left as they were:", f"  {edited}: size changed ({len(original) + 6} bytes, "
                                                     f"cataloged {len(original)})"]
    listed = [line.strip() for line in dry[1:-2]]
    assert sorted(os.fsencode(os.path.relpath(path, library.photos)) for path in listed) == sorted(removable)[1:]
    edited.write_bytes(original)
    os.utime(edited, ns=(mtime, mtime))
    assert snapshot(library.photos) == before
    def groups() -> str:  # `lumina duplicates` but the groups' ids (a group formed again has a new one)
        return re.sub(r"group \w{8} ", "group ", lumina(library, database_url, tmp_path, "duplicates", CATALOG).stdout)

    grouped = groups()
    moved = lumina(library, database_url, tmp_path, "quarantine", CATALOG)
    assert moved.stdout.startswith(f"moved {len(removable)} files (") and f"undo {CATALOG}" in moved.stdout
    assert set(library.quarantined()) == removable and moved.stdout.endswith(f"regrouped {CATALOG}\n")
    regrouped = groups()
    assert not [path for path in removable if os.fsdecode(path) in regrouped]  # the files gone from the groups
    unpurged = lumina(library, database_url, tmp_path, "quarantine", "purge", CATALOG, "--older-than", "0", "--dry-run",
                      check=False)  # deleting is never what a dry run does
    assert unpurged.returncode == 2 and "(no dry run)" in unpurged.stderr and set(library.quarantined()) == removable
    kept = lumina(library, database_url, tmp_path, "catalog", "remove", CATALOG, check=False)
    assert kept.returncode == 2 and f"has {len(removable)} files in quarantine" in kept.stderr
    back = lumina(library, database_url, tmp_path, "undo", CATALOG)
    assert back.stdout.startswith(f"put back {len(removable)} files (")
    assert snapshot(library.photos) == before
    assert groups() == grouped  # and decided as before
    usage = lumina(library, database_url, tmp_path, "quarantine", "purge", CATALOG, check=False)
    assert usage.returncode == 2 and "--older-than DAYS" in usage.stderr


def test_purge_deletes_only_files_quarantined_longer_ago_than_asked_whose_keeper_is_in_place(library, tmp_path):
    """Last of the module: purged files are gone for good from its library."""
    before = snapshot(library.photos)
    report = library.quarantine_removable()
    in_quarantine = library.quarantined()
    aged_paths = set(sorted(in_quarantine)[::2])
    with library.pipeline.engine.begin() as connection:
        entries = connection.execute(text("""SELECT a.id, a.target, k.path, k.checksum = a.checksum FROM file_actions a
                                             JOIN images k ON k.id = a.keep_image_id WHERE a.run_id = :r"""),
                                     {"r": report.run_id}).all()
        aged = [(i, bytes(target), bytes(keeper), same) for i, target, keeper, same in entries
                if any(bytes(target).endswith(b"/0/" + path) for path in aged_paths)]
        connection.execute(text("UPDATE file_actions SET created_at = now() - interval '10 days' WHERE id = ANY(:a)"),
                           {"a": [i for i, *_ in aged]})
    keeper = aged[0][2]  # deleted by hand since: its copies may be the last ones
    keeper_path = library.photos / os.fsdecode(keeper)
    rotted = library.photos / os.fsdecode(next(k for _, _, k, same in aged if same and k != keeper))
    original, info = rotted.read_bytes(), rotted.stat()
    rotted.write_bytes(original[:100] + bytes([original[100] ^ 0xFF]) + original[101:])
    os.utime(rotted, ns=(info.st_atime_ns, info.st_mtime_ns))  # bit rot: the same size and date
    os.rename(keeper_path, tmp_path / "deleted by hand")
    stays = {os.fsdecode(target): (keeper_path, "missing") for _, target, k, _ in aged if k == keeper}
    stays |= {os.fsdecode(target): (rotted, "other content") for _, target, k, _ in aged
              if library.photos / os.fsdecode(k) == rotted}
    with library.actions() as actions:
        purged = actions.purge(older_than_days=5)
    os.rename(tmp_path / "deleted by hand", keeper_path)
    rotted.write_bytes(original)
    os.utime(rotted, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert dict(purged.skipped) == {target: f"not purged: its keeper {path} changed since ({why}): this "
                                            "may be the last copy" for target, (path, why) in stays.items()}
    old = {path for path in aged_paths if not any(target.endswith("/0/" + os.fsdecode(path)) for target in stays)}
    assert len(set(stays.values())) == 2
    assert purged.done == len(old) == len(aged_paths) - len(stays) > 0
    assert library.quarantined() == {path: state for path, state in in_quarantine.items() if path not in old}
    assert snapshot(library.photos) == {path: state for path, state in before.items() if path not in in_quarantine}
    assert {status_by_path(library)[path] for path in old} == {"deleted"}
    assert journal_states(library, report.run_id) == {"purged": len(old), "done": len(in_quarantine) - len(old)}
    library.undo()
    assert snapshot(library.photos) == {path: state for path, state in before.items() if path not in old}


def keep(library, image_ids: list[int], kept: bool) -> None:
    with library.pipeline.engine.begin() as connection:
        connection.execute(text("UPDATE images SET kept = :k WHERE id = ANY(:ids)"), {"k": kept, "ids": image_ids})


def keep_paths(library, paths: list[str], kept: bool) -> None:
    wanted = {os.fsencode(path) for path in paths}
    rows = library.pipeline.rows(CATALOG, "id, path")
    keep(library, [row["id"] for row in rows if bytes(row["path"]) in wanted], kept)


def status_by_path(library) -> dict[bytes, str]:
    return {bytes(row["path"]): row["status"] for row in library.pipeline.rows(CATALOG, "path, status")}


def journal_states(library, run_id) -> dict[str, int]:
    with library.pipeline.engine.connect() as connection:
        rows = connection.execute(text("SELECT state, count(*) FROM file_actions WHERE run_id = :r GROUP BY state"),
                                  {"r": run_id})
        return dict(rows.all())


def lumina(library, database_url, home, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = lumina_env(home, LUMINA_DATABASE_URL=database_url, LUMINA_QUARANTINE_DIR=str(library.quarantine))
    result = subprocess.run([sys.executable, "-m", "lumina_pipeline.cli", *args], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 or not check, result.stderr[-3000:]
    return result
