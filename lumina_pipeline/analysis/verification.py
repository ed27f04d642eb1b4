"""Re-read files and compare them with their stored checksum: finds silent corruption."""

import hashlib
import os
from collections.abc import Iterable

import polars as pl

from lumina_pipeline.analysis.files import mtime_ns


def reverify(
    paths: Iterable[bytes], sizes: Iterable[int], mtimes: Iterable[int], checksums: Iterable[str]
) -> pl.Series:
    """One outcome per file: `same`; `edited` (size or mtime moved: a normal change, the
    next inventory picks it up); `corrupted` (content differs while size and mtime did
    not: bit rot or tampering); `unreadable` (gone or no permission)."""
    outcomes = [_outcome(*row) for row in zip(paths, sizes, mtimes, checksums, strict=True)]
    return pl.Series("outcome", outcomes, dtype=pl.String)


def _outcome(path: bytes, size: int, mtime: int, checksum: str) -> str:
    try:
        with open(path, "rb", opener=_non_blocking) as file:
            stat = os.fstat(file.fileno())
            if (stat.st_size, mtime_ns(stat)) != (size, mtime):
                return "edited"
            actual = hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return "unreadable"
    return "same" if actual == checksum else "corrupted"


def _non_blocking(path: str | bytes, flags: int) -> int:
    """Opened as analysis opens files (photos._read): a FIFO swapped in since would block a plain
    open until someone writes to it; opened, its size tells it apart."""
    return os.open(path, flags | os.O_NONBLOCK)
