"""Purge on a reviewed copy of the corpus of its own (purge deletes for good): a quarantined
stack's video whose copy beside the kept Live Photo was deleted since may be its last copy."""

import os

from lumina_pipeline_tests.actions.conftest import KEPT_SIDECAR, SIDECAR, snapshot

CATALOG = "purge_copies"
KEPT_VIDEO = b"Phone/2022/IMG_0002.MOV"
BACKUP = [b"Backup (alter Laptop)/iPhone/IMG_0002.HEIC", b"Backup (alter Laptop)/iPhone/IMG_0002.MOV", SIDECAR]


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
