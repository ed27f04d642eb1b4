"""Everything one read of a file gives: checksum, metadata, hashes, quality and thumbnail
(of a photo, or of a video's poster frame)."""

import hashlib
import io
import os
import queue
import stat
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from functools import partial
from io import BufferedReader
from pathlib import Path
from typing import BinaryIO, TypeVar

import polars as pl
from PIL import Image

from lumina_pipeline.analysis.embedding import model_input
from lumina_pipeline.analysis.files import mtime_ns
from lumina_pipeline.analysis.hashing import compute_ahash, compute_dhash, compute_phash, compute_whash, hash_version
from lumina_pipeline.analysis.imaging import MAX_PIXELS, ImageTooLarge, decode_photo, describe_error, encode_thumbnail
from lumina_pipeline.analysis.makernote import apple_content_identifier
from lumina_pipeline.analysis.metadata import encode_geohash, read_exif_metadata
from lumina_pipeline.analysis.quality import quality_score

Read = TypeVar("Read")  # what `_read`'s reader makes of a file
# Long enough to checksum a 10 GB video from a slow disk; a hung share costs this per file.
FILE_TIMEOUT_SECONDS = 300.0
FIXTURES = Path(__file__).parent / "fixtures"
# A JPEG's scans (SOS markers, which entropy-coded data never holds): cameras and editors write
# at most a few dozen; libjpeg decodes every one, each a pass over all the coefficients, so a
# crafted file of thousands keeps a core busy for minutes, past any timeout.
SCAN_MARKER, MAX_JPEG_SCANS = b"\xff\xda", 500
IN_MEMORY_BYTES = 64 << 20  # a photo up to this size is read at once (see _read_image)
CHANGED_SINCE_INVENTORY = "changed since the inventory listed it; it will be read again"
CHANGED_WHILE_READ = "changed while being read; it will be read again"
EMPTY = "empty file (0 bytes)"
SPECIAL_FILES = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
                 stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def _versions() -> tuple[str, str]:
    """The hash version and the analysis version. Library releases change results only now and
    then, so the packaged fixtures' hashes and quality scores stand for the libraries' versions:
    only a release that changes them re-reads a library. Bump the analysis version's first part
    when what a file's analysis stores changes: it decides which files a batch reads again (and
    is the assets' Dagster code version)."""
    fixtures = [decode_photo(path.read_bytes()).image for path in sorted(FIXTURES.iterdir())]
    hashes = hash_version(fixtures)
    qualities = " ".join(str(quality_score(image.convert("L"))) for image in fixtures)
    return hashes, f"photos-v4; {hashes}; quality {qualities}"


HASH_VERSION, ANALYSIS_VERSION = _versions()

ANALYSIS_SCHEMA = {
    "status": pl.String, "error": pl.String, "checksum": pl.String, "format": pl.String,
    "width": pl.Int32, "height": pl.Int32, "display_width": pl.Int32, "display_height": pl.Int32,
    "orientation": pl.Int16,
    "captured_at": pl.String, "captured_at_source": pl.String, "capture_subsec": pl.String, "capture_offset": pl.String,
    "camera_make": pl.String, "camera_model": pl.String, "camera_serial": pl.String, "lens": pl.String,
    "duration_seconds": pl.Float64,  # videos
    "video_codec": pl.String,  # videos: FFmpeg's decoder name ('h264', 'hevc')
    "content_identifier": pl.String,  # Apple's: one for a Live Photo's still and its video
    "latitude": pl.Float64, "longitude": pl.Float64, "geohash": pl.String,
    "dhash": pl.String, "ahash": pl.String, "whash": pl.String, "phash": pl.String,
    "quality_score": pl.Int16, "exif_error": pl.String, "thumbnail": pl.Binary,
    "model_input": pl.Binary,  # 224 x 224 RGB for the image model, raw bytes (see embedding.py)
}


def analyze_files(
    paths: Sequence[bytes],
    kinds: Iterable[str],
    recorded: Sequence[tuple[int, int]] | None = None,
    *,
    model_inputs: bool = False,
    max_pixels: int = MAX_PIXELS,
    timeout_seconds: float = FILE_TIMEOUT_SECONDS,
) -> pl.DataFrame:
    """One row per file, in order, with the columns of ANALYSIS_SCHEMA (`recorded`: see
    analyze_file). A file that cannot be read or decoded becomes a row with a status and a
    reason: nothing raised by one file reaches the others, and a file that takes longer than
    `timeout_seconds` (a hung network share) is abandoned as an error. Exact copies (the same
    checksum) are each read, but decoded once: a library's backups hold many."""
    analyze = partial(analyze_file, model_inputs=model_inputs, max_pixels=max_pixels)
    decoded: defaultdict[str, dict] = defaultdict(dict)  # kind -> checksum -> what its decode gave
    reader = _Reader()
    try:
        rows = [
            reader.within(timeout_seconds, partial(analyze, path, kind, seen, decoded=decoded[kind]))
            for path, kind, seen in zip(paths, kinds, recorded or [None] * len(paths), strict=True)
        ]
    finally:
        reader.close()
    return pl.DataFrame(rows, schema=ANALYSIS_SCHEMA, orient="row") if rows else pl.DataFrame(schema=ANALYSIS_SCHEMA)


def analyze_file(
    path: bytes,
    kind: str,
    recorded: tuple[int, int] | None = None,
    *,
    model_inputs: bool = False,
    max_pixels: int = MAX_PIXELS,
    decoded: dict | None = None,
) -> tuple:
    """Read `path` once and decode it once: an image (`kind` image or raw), or a video's
    container and one poster frame; with `model_inputs`, the image model's input too. A file
    that no longer has the (size_bytes, mtime_ns) the inventory `recorded`, or that changes
    while it is read, stays `pending`: what was read would not match its row. Images and video
    frames needing more than `max_pixels` in memory are errors (decode_photo, decode_video).

    `decoded` maps checksums to what files of this kind decoded to: a file found there is not
    decoded again, and what this one decodes to is added."""
    result = dict.fromkeys(ANALYSIS_SCHEMA)
    if decoded is None:
        decoded = {}
    reader = _read_video if kind == "video" else partial(_read_image, raw=kind == "raw")
    read = partial(reader, model_inputs=model_inputs, max_pixels=max_pixels, decoded=decoded)
    try:
        result["checksum"], described = _read(path, recorded, read)
    except _Unread as unread:  # not read, or changed while read: nothing known of its contents
        return _finish(result, unread.status, unread.reason)
    decoded[result["checksum"]] = described
    if isinstance(described, _Unread):
        return _finish(result, described.status, described.reason)
    result.update(described)
    return _finish(result, "ok", None)


class _Unread(Exception):
    """A file left unread, with the status and reason its row gets instead."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def _read(path: bytes, recorded: tuple[int, int] | None, read: Callable[[BufferedReader], Read]) -> Read:
    """`read` applied to the file at `path`, which must be a regular file that has the
    (size_bytes, mtime_ns) `recorded` (when given) and keeps them while it is read.

    Opened non-blocking: a FIFO or a device swapped in after the inventory would block a
    plain open until someone writes to it. Raises _Unread instead of reading anything else."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise _Unread("error", _cannot_read(error)) from None
    before = os.fstat(descriptor)
    if not stat.S_ISREG(before.st_mode):  # checked before open(), which refuses a folder's descriptor
        os.close(descriptor)
        special = SPECIAL_FILES.get(stat.S_IFMT(before.st_mode), "a special file")
        raise _Unread("error", f"not a regular file but {special}: not read")
    with open(descriptor, "rb") as file:
        if recorded is not None and (before.st_size, mtime_ns(before)) != tuple(recorded):
            raise _Unread("pending", CHANGED_SINCE_INVENTORY)
        os.set_blocking(descriptor, True)  # a regular file is read as by a plain open
        try:
            contents = read(file)
        except OSError as error:
            raise _Unread("error", _cannot_read(error)) from None
        after = os.fstat(descriptor)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise _Unread("pending", CHANGED_WHILE_READ)
    return contents


def _cannot_read(error: OSError) -> str:
    return f"cannot read file: {os.strerror(error.errno or 0) or error}"


class _Reader:
    """A thread that runs the batch's reads one at a time, each for at most a timeout. A read
    that overruns is abandoned with its thread, not stopped (Python cannot stop a thread blocked
    in a system call): it may stay blocked on a hung share, and the next read gets a new thread.

    Written here, as concurrent.futures' pools join their threads when the process exits, which
    a thread blocked on a hung share would never let happen. One thread for the whole batch: a
    thread started per file cost 5 % of a batch."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue | None = None

    def within(self, timeout_seconds: float, analyze: Callable[[], tuple]) -> tuple:
        if self._calls is None:
            self._calls = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(self._calls,), daemon=True).start()
        outcome: Future = Future()
        self._calls.put((outcome, analyze))
        try:
            return outcome.result(timeout_seconds)
        except TimeoutError:
            self.close()  # its thread ends if the read ever returns
            reason = f"not read and decoded within {timeout_seconds:g} s (file_timeout_seconds): abandoned"
            return _finish(dict.fromkeys(ANALYSIS_SCHEMA), "error", reason)

    def close(self) -> None:
        if self._calls is not None:
            self._calls.put(None)
            self._calls = None


def _serve(calls: queue.SimpleQueue) -> None:
    while (call := calls.get()) is not None:
        outcome, work = call
        try:
            outcome.set_result(work())
        except BaseException as error:  # raised again in the batch's thread, as if called there
            outcome.set_exception(error)


def _read_video(file: BufferedReader, model_inputs: bool, max_pixels: int, decoded: dict) -> tuple[str, dict | _Unread]:
    """The checksum of the open file (streamed: videos can be larger than memory), then what its
    container and poster frame give, from the same file object (or what a copy's gave, in
    `decoded`), within _read's checks. Why decoding failed is returned, not raised: the row
    keeps its checksum."""
    # here: PyAV loads FFmpeg's libraries, 0.4 s of every process that imports this module
    from lumina_pipeline.analysis import videos

    checksum = hashlib.file_digest(file, "sha256").hexdigest()
    if checksum in decoded:
        return checksum, decoded[checksum]
    if file.tell() == 0:
        return checksum, _Unread("error", EMPTY)
    file.seek(0)
    try:
        video = videos.decode_video(file, max_pixels=max_pixels)
    except videos.NoVideoStream as error:  # sound only: a file to keep, with nothing to look at
        return checksum, _Unread("skipped", str(error))
    except ImageTooLarge as error:
        return checksum, _Unread("error", str(error))
    except Exception as error:  # any demuxer or decoder failure is this file's problem, never the batch's
        return checksum, _Unread("error", f"cannot decode video: {videos.describe_video_error(error)}")
    location = video.metadata["latitude"], video.metadata["longitude"]
    return checksum, {**video.metadata, **_describe_pixels(video.poster, *location, model_inputs)}


def _read_image(
    file: BufferedReader, raw: bool, model_inputs: bool, max_pixels: int, decoded: dict
) -> tuple[str, dict | _Unread]:
    """The checksum of the open file, then what its one decode gives (or what a copy's gave, in
    `decoded`), within _read's checks. A photo up to IN_MEMORY_BYTES is read at once and decoded
    from memory; a larger file is hashed in pieces and decoded from the file, never held whole.
    Why decoding failed is returned, not raised: the row keeps its checksum."""
    head = file.read(IN_MEMORY_BYTES)
    digest, scans = hashlib.sha256(head), head.count(SCAN_MARKER)
    while chunk := file.read(1 << 20):  # hashlib.file_digest, counting a JPEG's scans on the way
        digest.update(chunk)
        scans += chunk.count(SCAN_MARKER)
    checksum = digest.hexdigest()
    if checksum in decoded:
        return checksum, decoded[checksum]
    if not head:
        return checksum, _Unread("error", EMPTY)
    if head.startswith(b"\xff\xd8") and scans > MAX_JPEG_SCANS:
        reason = f"a JPEG of {scans} scans, over the {MAX_JPEG_SCANS} any encoder writes: not decoded"
        return checksum, _Unread("error", reason)
    source = io.BytesIO(head) if file.tell() == len(head) else file
    del head  # a larger file decodes from the file, without its first 64 MB held meanwhile
    source.seek(0)
    try:
        return checksum, _describe_image(source, model_inputs, max_pixels)
    except ImageTooLarge as error:
        return checksum, _Unread("error", str(error))
    except Exception as error:  # any decoder failure is this file's problem, never the batch's
        reason = f"cannot decode image: {describe_error(error)}"
        if raw:
            return checksum, _Unread("skipped", f"RAW file without a preview Pillow can read ({reason})")
        return checksum, _Unread("error", reason)


def _describe_image(file: BinaryIO, model_inputs: bool, max_pixels: int) -> dict:
    photo = decode_photo(file, max_pixels=max_pixels)
    exif = read_exif_metadata(photo.exif)
    return {
        **exif,
        "format": photo.format,
        "width": photo.width,
        "height": photo.height,
        "display_width": photo.display_size[0],
        "display_height": photo.display_size[1],
        "orientation": photo.orientation,
        "content_identifier": apple_content_identifier(photo.exif),
        "exif_error": photo.exif_error,
        **_describe_pixels(photo.image, exif["latitude"], exif["longitude"], model_inputs),
    }


def _describe_pixels(image: Image.Image, latitude: float | None, longitude: float | None, model_inputs: bool) -> dict:
    """What a photo's decoded image, or a video's poster frame, gives: the geohash of where it
    was taken, the four hashes, the quality score, the thumbnail and the model's input."""
    grey = image.convert("L")  # what each imagehash definition starts from
    return {
        "geohash": encode_geohash(latitude, longitude) if latitude is not None and longitude is not None else None,
        "dhash": compute_dhash(grey),
        "ahash": compute_ahash(grey),
        "whash": compute_whash(grey),
        "phash": compute_phash(grey),
        "quality_score": quality_score(grey),
        "thumbnail": encode_thumbnail(image),
        "model_input": model_input(image).tobytes() if model_inputs else None,
    }


def _finish(result: dict, status: str, error: str | None) -> tuple:
    result["status"], result["error"] = status, error
    return tuple(result.values())
