"""Diff a fresh walk against the stored inventory and give new files their batches."""

from dataclasses import dataclass
from typing import cast

import polars as pl

from lumina_pipeline.analysis.files import Walk, classify

BATCH_KEY_DIGITS = 5
SMALLEST_BATCH = 500  # files per batch up to MOST_BATCHES * SMALLEST_BATCH files (1,000,000)
MOST_BATCHES = 2_000  # per catalog: larger libraries get larger batches
GRID_WARNING = 50_000  # catalog x batch partitions past which Dagster's UI and sensors slow down
KEY = ["source_root", "path"]

# What the inventory already knows about a file from its kind, before anything reads it: status, reason.
INITIAL = {
    "image": ("pending", None),
    "raw": ("pending", None),
    "video": ("pending", None),
    "sidecar": ("skipped", "sidecar file, not a photo"),
    "other": ("skipped", "not a photo or video"),
    "system": ("ignored", "operating-system file"),
}


@dataclass(frozen=True)
class InventoryChanges:
    """What a rescan changes: rows to insert, rows to update, rows to mark deleted."""

    new: pl.DataFrame  # walk columns + batch, status, error
    changed: pl.DataFrame  # id, batch, size_bytes, mtime_ns, status, error
    deleted: pl.DataFrame  # id
    returned: pl.DataFrame  # id: files in quarantine by the catalog, at their place again as cataloged (by hand?)
    unchanged: int
    unlisted: list[tuple[str, bytes]]  # (source root, folder) not listed, whose files are kept as they were
    files: pl.DataFrame  # the walk's, each listed once: walk columns
    hard_links: int  # names left out, each of a file listed under another (one_name_per_file)

    def is_empty(self) -> bool:
        return not (len(self.new) or len(self.changed) or len(self.deleted) or len(self.returned))

    def batches_to_process(self) -> list[str]:
        """Batches holding a new or changed file that still has to be read."""
        touched = pl.concat([self.new.select("batch", "status"), self.changed.select("batch", "status")])
        return sorted(touched.filter(pl.col("status") == "pending")["batch"].unique().to_list())


def diff_inventory(stored: pl.DataFrame, walk: Walk, *, batch_size: int) -> InventoryChanges:
    """Compare by (source_root, path) then (size, mtime): new, changed, deleted, unchanged.

    `stored` has the columns id, source_root, path, size_bytes, mtime_ns, batch, kind, status.
    A file that reappears after being marked deleted counts as changed and keeps its batch.
    Files under a folder the walk could not list are neither compared nor marked deleted:
    an unmounted share must not look like an emptied one. Nor are those of a source folder
    that holds nothing of a person's (an empty mount point, Walk.empty_roots) while the catalog
    holds files there."""
    files = one_name_per_file(walk, stored)
    stored_files = stored.select(*KEY, "id", "batch", "kind", "status", "size_bytes", "mtime_ns")
    present = files.join(stored_files, on=KEY, how="left", suffix="_stored")
    known = pl.col("id").is_not_null()
    differs = (
        (pl.col("size_bytes") != pl.col("size_bytes_stored"))
        | (pl.col("mtime_ns") != pl.col("mtime_ns_stored"))
        | (pl.col("status") == "deleted")
    )
    new = present.filter(~known).sort(KEY).select(files.columns)
    # only new files need a kind: classifying every file of every rescan costs a third of the walk
    new = new.with_columns(kind=pl.Series([classify(path) for path in new["path"]], dtype=pl.String))
    changed = present.filter(known & differs)
    live = stored.filter(~pl.col("status").is_in(["deleted", "quarantined"]))  # the journal knows where those are
    emptied = set(walk.empty_roots) & set(live["source_root"].unique())
    unlisted = walk.unreadable + [(root, b"") for root in sorted(emptied)]
    gone = live.join(files.select(KEY), on=KEY, how="anti").filter(~_under_any(unlisted))
    return InventoryChanges(
        new=_with_initial_status(new.with_columns(batch=_new_batches(stored, len(new), batch_size))),
        changed=_with_initial_status(changed).select("id", "batch", "size_bytes", "mtime_ns", "status", "error"),
        deleted=gone.select("id"),
        returned=present.filter(known & ~differs & (pl.col("status") == "quarantined")).select("id"),
        unchanged=len(present) - len(new) - len(changed),
        unlisted=unlisted,
        files=files,
        hard_links=len(walk.files) - len(files),
    )


def one_name_per_file(walk: Walk, stored: pl.DataFrame) -> pl.DataFrame:
    """The walk's files, each file of several names (hard links) under one: the name the catalog
    lists it by, else its first in (source_root, path) order, so that a name added later never
    takes its row. Its other names hold no copy: neither is a duplicate to remove, and moving
    one away frees nothing."""
    if walk.linked.is_empty():
        return walk.files
    listed = stored.filter(~pl.col("status").is_in(["deleted", "quarantined"])).select(*KEY, listed=pl.lit(True))
    ranked = walk.linked.join(listed, on=KEY, how="left").sort("file", pl.col("listed").is_null(), *KEY)
    others = ranked.filter(pl.int_range(pl.len()).over("file") > 0)
    return walk.files.join(others.select(KEY), on=KEY, how="anti", maintain_order="left")


def _new_batches(stored: pl.DataFrame, count: int, batch_size: int) -> pl.Series:
    """Fill the open (last, not yet full) batch first, then open new ones. Append-only."""
    last = cast(str | None, stored["batch"].max())  # a String column; polars types max() as any scalar
    ordinal, filled = (int(last), int((stored["batch"] == last).sum())) if last is not None else (0, 0)
    positions = pl.int_range(filled, filled + count, eager=True)
    return ((positions // batch_size) + ordinal).cast(pl.String).str.zfill(BATCH_KEY_DIGITS)


def _with_initial_status(frame: pl.DataFrame) -> pl.DataFrame:
    kind = pl.col("kind")
    return frame.with_columns(
        status=kind.replace_strict({name: status for name, (status, _) in INITIAL.items()}, return_dtype=pl.String),
        error=kind.replace_strict({name: reason for name, (_, reason) in INITIAL.items()}, return_dtype=pl.String),
    )


def _under_any(folders: list[tuple[str, bytes]]) -> pl.Expr:
    under = pl.lit(False)
    for root, folder in folders:
        inside = pl.lit(True) if not folder else pl.col("path").bin.starts_with(folder + b"/")
        under = under | ((pl.col("source_root") == root) & inside)
    return under


def batch_size_for(file_count: int) -> int:
    """Files per batch for a library of `file_count` files: 500, or more so that the catalog
    stays within MOST_BATCHES batches (a partition dimension Dagster handles well)."""
    return max(SMALLEST_BATCH, -(-file_count // MOST_BATCHES))


def grid_warning(catalogs: int, batches: int) -> str | None:
    """What to tell a person whose catalog x batch partitions pass GRID_WARNING, if they do."""
    if catalogs * batches <= GRID_WARNING:
        return None
    return (f"{catalogs} catalogs x {batches} batches = {catalogs * batches:,} partitions, more than "
            f"{GRID_WARNING:,}: Dagster's UI and sensors slow down; a larger --batch-size keeps it smaller")
