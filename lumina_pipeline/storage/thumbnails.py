"""JPEG thumbnails on disk, one per distinct content: `<root>/<catalog>/<sha[:2]>/<sha>.jpg`,
the layout no other module knows (rows keep the path relative to the root)."""

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from lumina_pipeline.analysis.files import resolves_inside


def save_thumbnails(root: Path, catalog: str, shas: Iterable[str | None],
                    jpegs: Iterable[bytes | None]) -> list[str | None]:
    """Write each thumbnail (atomically, so a killed run leaves no half file); return the
    paths relative to `root`, None where there is no thumbnail."""
    return [_save(root, catalog, sha, jpeg) if jpeg and sha else None for sha, jpeg in zip(shas, jpegs, strict=True)]


def _save(root: Path, catalog: str, checksum: str, jpeg: bytes) -> str:
    relative = Path(catalog) / checksum[:2] / f"{checksum}.jpg"
    target = root / relative
    if not target.exists():  # named by content: an existing file already holds these bytes
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(jpeg)
        partial.replace(target)
    return relative.as_posix()


def thumbnail_file(root: Path, relative: str) -> bytes | None:
    """The real path of a thumbnail; None when the file is gone (its batch writes it again),
    or when the stored path leads out of `root` once every symlink is resolved."""
    real = os.path.realpath(os.path.join(os.fsencode(root), os.fsencode(relative)))
    inside = resolves_inside(real, [os.fsencode(os.path.realpath(root))])
    return real if inside and os.path.isfile(real) else None


def read_thumbnail(root: Path, relative: str) -> bytes | None:
    found = thumbnail_file(root, relative)
    return None if found is None else Path(os.fsdecode(found)).read_bytes()


def remove_thumbnails(root: Path, catalog: str) -> None:
    shutil.rmtree(root / catalog, ignore_errors=True)
