"""A cheap digest of a catalog's folders (names, sizes, mtimes), walked in resumable units.

Sensors use it to notice that a catalog changed without reading any file and without
keeping per-file state in their cursor: only a 64-bit digest per catalog. Each top-level
folder of a root is one unit (the root's own files are another), so a catalog too big for
one sensor tick is walked over several, resuming at the next unit."""

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from lumina_pipeline.analysis.files import WALK_SCHEMA, mtime_ns, never_walked, walk_sources

DIGEST_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class Progress:
    """How far a fingerprint got: digest of units [0, next_unit), and whether that is all."""

    digest: int
    next_unit: int
    done: bool


def fingerprint_units(roots: Sequence[str]) -> list[tuple[str, str | None]]:
    """(root, top-level folder) pairs in a stable order; (root, None) stands for the root's
    own files. A root that cannot be listed is one unit that digests as empty."""
    units: list[tuple[str, str | None]] = []
    for root in roots:
        units.append((root, None))
        with contextlib.suppress(OSError):
            folders = sorted(entry.name for entry in os.scandir(root)
                             if entry.is_dir(follow_symlinks=False) and not never_walked(os.fsencode(entry.name)))
            units.extend((root, folder) for folder in folders)
    return units


def fingerprint(roots: Sequence[str], *, start: Progress | None, budget_seconds: float) -> Progress:
    """Walk units from `start` on until done or the time budget is spent (at least one unit).

    The digest is the wrapping sum of one hash per file (its unit, path, size and mtime), so
    units can be added in any number of steps and the order of files never matters."""
    units = fingerprint_units(roots)
    digest, index = (start.digest, start.next_unit) if start else (0, 0)
    deadline = time.monotonic() + budget_seconds
    first = index
    while index < len(units) and (index == first or time.monotonic() < deadline):  # always progress
        digest = (digest + _unit_digest(*units[index])) & DIGEST_MASK
        index += 1
    return Progress(digest, index, index >= len(units))


def inventory_digest(stored: pl.DataFrame) -> int:
    """The digest `fingerprint` gives for folders holding exactly `stored`'s files (walk
    columns, paths relative to their root), so a sensor without a cursor can tell whether
    the folders still are as the last inventory saw them. Each file is hashed as its unit's
    walk lists it: below a top-level folder, relative to that folder."""
    units = [_as_unit_row(root, path) for root, path in zip(stored["source_root"], stored["path"], strict=True)]
    files = stored.with_columns(
        source_root=pl.Series([root for root, _ in units], dtype=pl.String),
        path=pl.Series([path for _, path in units], dtype=pl.Binary),
    ).select(list(WALK_SCHEMA))
    return _digest(files)


def _as_unit_row(root: str, path: bytes) -> tuple[str, bytes]:
    folder, _, rest = path.partition(b"/")
    return (os.path.join(root, os.fsdecode(folder)), rest) if rest else (root, path)


def _unit_digest(root: str, folder: str | None) -> int:
    return _digest(_own_files(root) if folder is None else walk_sources([os.path.join(root, folder)]).files)


def _digest(files: pl.DataFrame) -> int:
    """The wrapping sum of one hash per row (numpy's uint64 sum wraps: it never overflows)."""
    return int(files.hash_rows(seed=0).to_numpy().sum(dtype=np.uint64)) if len(files) else 0


def _own_files(root: str) -> pl.DataFrame:
    rows = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            if entry.is_file(follow_symlinks=False):
                stat = entry.stat(follow_symlinks=False)
                rows.append((root, os.fsencode(entry.name), stat.st_size, mtime_ns(stat)))
    return pl.DataFrame(rows, schema=WALK_SCHEMA, orient="row")
