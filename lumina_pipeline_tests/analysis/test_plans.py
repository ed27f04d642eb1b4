"""Quarantine plans: where each file goes, and which cannot be planned."""

import polars as pl

from lumina_pipeline.analysis.plans import NO_CHECKSUM, PLAN_SCHEMA, QUARANTINED, plan_quarantine


def test_files_keep_their_relative_paths_and_the_roots_stay_apart():
    files = pl.DataFrame({
        "id": [1, 2, 3],
        "source_root": ["/photos", "/phone", "/photos"],
        "path": [b"2019/IMG_1.JPG", b"IMG_1.JPG", b"IMG_2.JPG"],
        "size_bytes": [10, 20, 30],
        "mtime_ns": [1, 2, 3],
        "checksum": ["a" * 64, "b" * 64, None],
        "status": ["ok", "skipped", "pending"],
    })
    plan, left_out = plan_quarantine(files, ["/photos", "/phone"], b"/q/family/run")
    assert plan.schema == PLAN_SCHEMA
    assert plan.select("image_id", "source", "target", "status_before", "status_after").rows() == [
        (1, b"/photos/2019/IMG_1.JPG", b"/q/family/run/0/2019/IMG_1.JPG", "ok", QUARANTINED),
        (2, b"/phone/IMG_1.JPG", b"/q/family/run/1/IMG_1.JPG", "skipped", QUARANTINED),
    ]
    assert left_out.rows() == [(b"/photos/IMG_2.JPG", NO_CHECKSUM)]  # nothing to check it against
