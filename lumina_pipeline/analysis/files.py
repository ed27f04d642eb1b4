"""Stat-level walk of a catalog's source folders: names, sizes and mtimes, never contents."""

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import polars as pl

KINDS = {  # by extension (lower case)
    extension: kind
    for kind, extensions in [
        ("image", b"jpg jpeg jpe png gif bmp tif tiff webp heic heif avif jxl"),
        ("raw", b"dng cr2 cr3 nef nrw arw orf rw2 raf pef srw"),
        ("video", b"mov mp4 m4v avi mts m2ts 3gp mkv wmv mpg mpeg"),
        ("sidecar", b"xmp aae thm json"),
    ]
    for extension in extensions.split()
}
SYSTEM_NAMES = frozenset({b".DS_Store", b"Thumbs.db", b"desktop.ini", b".picasa.ini"})
# Folders never walked. Those that systems and NAS keep beside the photos, holding none of the
# person's own: Synology's and QNAP's thumbnails, recycle bins and snapshots, the trash of macOS,
# Linux (.Trash-<uid>) and Windows drives, search indexes. Cataloged, their thumbnails would be
# near-duplicates of the photos, their snapshots exact ones, and deleted files would come back.
NEVER_WALKED = frozenset({
    b"@eaDir", b"#recycle", b"#snapshot", b".@__thumb", b"@Recycle", b"@Recently-Snapshot", b".Trashes", b".Trash",
    b"$RECYCLE.BIN", b"System Volume Information", b".Spotlight-V100", b".fseventsd", b".DocumentRevisions-V100",
})
# And the libraries that Apple's photo apps manage (Photos, iPhoto, Aperture): besides the
# originals they hold renderings and thumbnails of each, and a file moved out of one breaks it.
APP_LIBRARIES = (b".photoslibrary", b".photolibrary", b".aplibrary")
APP_LIBRARY_LEFT_OUT = "a library that an Apple photo app manages, never cataloged (export its photos to catalog them)"
PARTIAL = b".lumina-partial"  # ends the name of a copy being written (actions/files.py): never cataloged
# Lies in each folder of Lumina's own (its home, thumbnails, quarantine: home.py): no walk enters
# one, should a catalog's folder hold it, or Lumina would catalog its thumbnails and quarantined
# copies as photos, and its database's churn as changes
OWN_FOLDER = b".lumina-own-folder"
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # characters a name may hold that a terminal acts on
WALK_SCHEMA = {"source_root": pl.String, "path": pl.Binary, "size_bytes": pl.Int64, "mtime_ns": pl.Int64}
LINKED_SCHEMA = {"source_root": pl.String, "path": pl.Binary, "file": pl.Int64}


@dataclass(frozen=True)
class Walk:
    """What a walk found: one row per file, the folders it could not list, and the source
    folders that hold nothing of a person's, not even a folder: an unmounted drive's mount
    point (_left_by_systems_only)."""

    files: pl.DataFrame
    unreadable: list[tuple[str, bytes]]  # (source_root, relative folder) pairs
    empty_roots: list[str]
    app_libraries: list[tuple[str, bytes]] = field(default_factory=list)  # (source_root, folder) of APP_LIBRARIES met
    # The names of the files that have several here (hard links): source_root, path, and `file`,
    # one number per file. diff_inventory lists each such file once.
    linked: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LINKED_SCHEMA))


def mtime_ns(info: os.stat_result) -> int:
    """A file's mtime in nanoseconds within the 64 bits the catalog holds it in: a date after
    2262 (or before 1677), a garbage timestamp from a card or a share, is the last one before."""
    return min(max(info.st_mtime_ns, -(2**63)), 2**63 - 1)


def classify(path: bytes) -> str:
    """Kind of a file from its name alone (the last part of `path`): image, raw, video, sidecar, system or other.

    `raw` is a camera RAW file: an image whose readable part, if any, is an embedded preview.
    AppleDouble files (`._name`) hold macOS resource forks, not photos, whatever their extension."""
    name = path.rpartition(b"/")[2]
    if name in SYSTEM_NAMES or name.startswith(b"._"):
        return "system"
    return KINDS.get(name.rpartition(b".")[2].lower(), "other")


def walk_sources(roots: Sequence[str]) -> Walk:
    """List every file below `roots` with os.scandir, keeping names as raw bytes.

    Symlinks are never followed nor listed. One to a folder outside the roots (`/`, another
    disk) would pull foreign files into a catalog; one to a folder inside them would list its
    files a second time, or under the link's path in place of their own. One to a file inside
    the roots would be cataloged as an exact copy of its own target, which could then be chosen
    as the keeper and its target quarantined (and purged). Folders are visited once by (device,
    inode): two roots of a catalog may overlap. A file with several names here (hard links) is
    listed under each, and said to be one in `linked`."""
    real_roots = [os.fsencode(os.path.realpath(root)) for root in roots]
    columns: dict[str, list] = {name: [] for name in WALK_SCHEMA}
    unreadable: list[tuple[str, bytes]] = []
    empty_roots: list[str] = []
    app_libraries: list[tuple[str, bytes]] = []
    seen: set[tuple[int, int]] = set()
    names: dict[tuple[int, int], list[int]] = {}  # rows of each file that has several names
    for root, real_root in zip(roots, real_roots, strict=True):
        stack = [(real_root, b"")]
        while stack:
            folder, relative = stack.pop()
            try:
                info = os.stat(folder)
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
                entries = list(os.scandir(folder))
            except OSError:
                unreadable.append((root, relative))
                continue
            if _is_own(entries):
                continue
            if not relative and _left_by_systems_only(entries):
                empty_roots.append(root)
            for entry in entries:
                path = relative + b"/" + entry.name if relative else entry.name
                try:
                    if entry.is_symlink():
                        continue
                    if entry.is_dir():
                        if is_app_library(entry.name):
                            app_libraries.append((root, path))
                        elif not never_walked(entry.name):
                            stack.append((entry.path, path))
                        continue
                    if not entry.is_file() or entry.name.endswith(PARTIAL):
                        continue  # sockets, fifos, devices; copies a killed run left half-written
                    stat = entry.stat()
                except PermissionError:  # a folder that may be listed but not entered: as one not listed
                    unreadable.append((root, relative))
                    break
                except OSError:  # vanished between listing and stat
                    continue
                if stat.st_nlink > 1:
                    names.setdefault((stat.st_dev, stat.st_ino), []).append(len(columns["path"]))
                columns["source_root"].append(root)
                columns["path"].append(path)
                columns["size_bytes"].append(stat.st_size)
                columns["mtime_ns"].append(mtime_ns(stat))
    several = (rows for rows in names.values() if len(rows) > 1)
    linked = [(columns["source_root"][row], columns["path"][row], file) for file, rows in enumerate(several)
              for row in rows]
    files = pl.DataFrame(columns, schema=WALK_SCHEMA)
    return Walk(files, unreadable, empty_roots, app_libraries, pl.DataFrame(linked, LINKED_SCHEMA, orient="row"))


def count_files(roots: Sequence[str]) -> int:
    """About how many files lie below `roots`: names only (the directory entries' types, no
    stat), symlinks not followed; fast enough to size a catalog before its first walk."""
    count, folders = 0, [os.fsencode(root) for root in roots]
    while folders:
        try:
            entries = list(os.scandir(folders.pop()))
        except OSError:
            continue
        if not _is_own(entries):
            folders.extend(entry.path for entry in entries
                           if entry.is_dir(follow_symlinks=False) and not never_walked(entry.name))
            count += sum(entry.is_file(follow_symlinks=False) for entry in entries)
    return count


def never_walked(name: bytes) -> bool:
    return name in NEVER_WALKED or name.startswith(b".Trash-") or is_app_library(name)


def is_app_library(name: bytes) -> bool:
    return name.lower().endswith(APP_LIBRARIES)


def _left_by_systems_only(entries: list[os.DirEntry[bytes]]) -> bool:
    """Whether a folder holds nothing but what systems and NAS leave (`.DS_Store`, `@eaDir`, a
    trash), as a Mac or a Synology may leave them at a drive's mount point while it is away."""
    return all(never_walked(entry.name) if entry.is_dir(follow_symlinks=False) else classify(entry.name) == "system"
               for entry in entries)


def _is_own(entries: list[os.DirEntry[bytes]]) -> bool:
    return any(entry.name == OWN_FOLDER for entry in entries)


def absolute_paths(roots: Iterable[str], paths: Iterable[bytes]) -> list[bytes]:
    """Join stored (source_root, relative path) pairs back into paths to open."""
    return [os.path.join(os.fsencode(root), path) for root, path in zip(roots, paths, strict=True)]


def display_path(path: bytes) -> tuple[str, str | None]:
    """A path as text, and its bytes in hex when the text cannot show them as they are: it
    shows each byte that is not valid UTF-8, and each control character (a newline, an escape
    sequence that would clear a terminal), as \\xNN."""
    shown = CONTROL.sub(lambda control: f"\\x{ord(control[0]):02x}", path.decode("utf-8", "backslashreplace"))
    return shown, None if shown.encode() == path else path.hex()


def shown(path: bytes) -> str:
    """A path as a person reads it: display_path's text."""
    return display_path(path)[0]


def path_from_display(shown: str) -> bytes:
    """The bytes of a path as display_path shows it: each \\xNN back to its byte (a name that
    holds those four characters as text is ambiguous: look it up as given first)."""
    return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda hexed: bytes.fromhex(hexed[1].decode()), os.fsencode(shown))


def resolves_inside(path: bytes, real_roots: Sequence[bytes]) -> bool:
    """Whether `path`, every symlink resolved, is one of `real_roots` or lies below one."""
    target = os.path.realpath(path)
    return any(target == root or target.startswith(root + b"/") for root in real_roots)
