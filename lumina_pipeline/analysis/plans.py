"""Plans: what a file action (quarantine, organize) will do, row by row, before it does it.

A plan row moves or copies one cataloged file to a planned place; actions/ carries plans out
under a journal. Planning is pure: paths in, paths out, nothing on disk is looked at."""

import polars as pl

from lumina_pipeline.analysis.files import absolute_paths

PLAN_SCHEMA = {
    "image_id": pl.Int64,
    "source": pl.Binary,  # absolute paths, raw bytes
    "target": pl.Binary,
    "operation": pl.String,  # move / copy
    "size_bytes": pl.Int64,  # the file as cataloged: checked before it is touched
    "mtime_ns": pl.Int64,
    "checksum": pl.String,
    "status_before": pl.String,  # the images row's status, which undo gives back
    "status_after": pl.String,  # its status once done (null: the row stays as it is)
}
QUARANTINED = "quarantined"  # images.status of a file in quarantine: not in its folder, not deleted
NO_CHECKSUM = "no checksum to check it against"


def plan_quarantine(files: pl.DataFrame, roots: list[str], folder: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Move each file of `files` (id, source_root, path, size_bytes, mtime_ns, checksum, status)
    to `folder`/<index of its source root in `roots`>/<its path>: relative paths kept, and files
    of several roots kept apart. Returns the plan and the files left out (source, reason): those
    without a checksum, whose content cannot be checked."""
    readable = files.filter(pl.col("checksum").is_not_null())
    index = {root: b"%d" % position for position, root in enumerate(roots)}
    pairs = readable.select("source_root", "path").rows()
    targets = [folder + b"/" + index[root] + b"/" + path for root, path in pairs]
    plan = readable.select(
        image_id="id",
        source=pl.Series(absolute_paths(readable["source_root"], readable["path"]), dtype=pl.Binary),
        target=pl.Series(targets, dtype=pl.Binary),
        operation=pl.lit("move"),
        size_bytes="size_bytes",
        mtime_ns="mtime_ns",
        checksum="checksum",
        status_before="status",
        status_after=pl.lit(QUARANTINED),
    )
    unchecked = files.filter(pl.col("checksum").is_null())
    left_out = pl.DataFrame({
        "source": pl.Series(absolute_paths(unchecked["source_root"], unchecked["path"]), dtype=pl.Binary),
        "reason": pl.Series([NO_CHECKSUM] * len(unchecked), dtype=pl.String),
    })
    return plan, left_out
