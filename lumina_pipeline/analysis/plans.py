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
    """Move each file of `files` (plan_rows' columns) to `folder`/<index of its source root in
    `roots`>/<its path>: relative paths kept, and files of several roots kept apart. Returns the
    plan and the files left out (source, reason): those without a checksum, whose content
    cannot be checked."""
    readable = files.filter(pl.col("checksum").is_not_null())
    index = {root: b"%d" % position for position, root in enumerate(roots)}
    targets = [b"/".join((folder, index[root], path)) for root, path in readable.select("source_root", "path").rows()]
    unchecked = files.filter(pl.col("checksum").is_null())
    left_out = unchecked.select(source=_sources(unchecked), reason=pl.lit(NO_CHECKSUM, pl.String))
    return plan_rows(readable, targets, "move", QUARANTINED), left_out


def plan_rows(files: pl.DataFrame, targets: list[bytes], operation: str, status_after: str | None) -> pl.DataFrame:
    """PLAN_SCHEMA's rows taking each file of `files` (id, source_root, path, size_bytes,
    mtime_ns, checksum, status) to its target; a null `status_after` leaves its row as it is."""
    return files.select(
        image_id="id",
        source=_sources(files),
        target=pl.Series(targets, dtype=pl.Binary),
        operation=pl.lit(operation),
        size_bytes="size_bytes", mtime_ns="mtime_ns", checksum="checksum", status_before="status",
        status_after=pl.lit(status_after, pl.String),
    )


def _sources(files: pl.DataFrame) -> pl.Series:
    return pl.Series(absolute_paths(files["source_root"], files["path"]), dtype=pl.Binary)
