"""Purge on a reviewed copy of the corpus of its own (purge deletes for good): a file put in a
quarantined one's place by hand keeps its row, and a quarantined stack's video whose copy
beside the kept Live Photo was deleted since may be its last copy."""

import os

from PIL import Image
from sqlalchemy import text

from lumina_pipeline_tests.actions.conftest import KEPT_SIDECAR, SIDECAR, snapshot

CATALOG = "purge_copies"
KEPT_VIDEO = b"Phone/2022/IMG_0002.MOV"
BACKUP = [b"Backup (alter Laptop)/iPhone/IMG_0002.HEIC", b"Backup (alter Laptop)/iPhone/IMG_0002.MOV", SIDECAR]


def test_a_purge_leaves_the_row_of_a_file_put_in_a_quarantined_ones_place_by_hand(library):
    report = library.quarantine_removable()
    replaced = min(set(library.quarantined()) - set(BACKUP))
    Image.effect_noise((64, 48), 40).convert("RGB").save(library.photos / os.fsdecode(replaced), "JPEG")
    library.pipeline.catalog_everything(CATALOG)  # the rescan gives the quarantined file's row to the new one
    status = status_of(library, replaced)
    with library.pipeline.engine.begin() as connection:
        connection.execute(text("UPDATE file_actions SET created_at = now() - interval '10 days' "
                                "WHERE run_id = :r AND target LIKE '%' || :p"), {"r": report.run_id, "p": replaced})

    with library.actions() as actions:
        assert actions.purge(older_than_days=5).done == 1
    assert replaced not in library.quarantined() and status_of(library, replaced) == status == "ok"
    library.undo()
    os.unlink(library.photos / os.fsdecode(replaced))
    library.pipeline.catalog_everything(CATALOG)


def test_purge_keeps_a_quarantined_video_whose_copy_was_deleted_since(library, tmp_path):
    report = library.quarantine_removable()
    quarantined = library.quarantined()
    assert report.skipped == [] and set(BACKUP) <= set(quarantined)
    kept_video = library.photos / os.fsdecode(KEPT_VIDEO)
    os.rename(kept_video, tmp_path / "deleted by hand")  # no rescan since

    with library.actions() as actions:
        purged = actions.purge(older_than_days=0)
    [(where, why)] = purged.skipped
    assert where.endswith(os.fsdecode(BACKUP[1]))
    assert why == f"not purged: its keeper {kept_video} changed since (missing): this may be the last copy"
    assert purged.done == len(quarantined) - 1 and library.quarantined() == {BACKUP[1]: quarantined[BACKUP[1]]}
    assert KEPT_SIDECAR in snapshot(library.photos)  # the copy of the purged sidecar

    library.undo()
    assert snapshot(library.photos)[BACKUP[1]] == quarantined[BACKUP[1]]  # the last copy, back in its place


def status_of(library, path: bytes) -> str:
    return next(row["status"] for row in library.pipeline.rows(CATALOG, "path, status") if bytes(row["path"]) == path)
