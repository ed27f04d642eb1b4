"""Everything one read of a file gives: checksum, metadata, hashes, quality and thumbnail."""

import hashlib
import os
from collections.abc import Sequence

import polars as pl

from lumina_pipeline.analysis.embedding import model_input
from lumina_pipeline.analysis.hashing import compute_ahash, compute_dhash, compute_whash, hash_version
from lumina_pipeline.analysis.imaging import decode_photo, encode_thumbnail
from lumina_pipeline.analysis.metadata import encode_geohash, read_exif_metadata
from lumina_pipeline.analysis.quality import quality_score

# Bump the first part when what a file's analysis stores changes; with the libraries' versions
# it decides which files a batch reads again (and is the assets' Dagster code version).
ANALYSIS_VERSION = f"photos-v1; {hash_version()}"

ANALYSIS_SCHEMA = {
    "status": pl.String,
    "error": pl.String,
    "checksum": pl.String,
    "format": pl.String,
    "width": pl.Int32,
    "height": pl.Int32,
    "display_width": pl.Int32,
    "display_height": pl.Int32,
    "orientation": pl.Int16,
    "captured_at": pl.String,
    "captured_at_source": pl.String,
    "capture_subsec": pl.String,
    "capture_offset": pl.String,
    "camera_make": pl.String,
    "camera_model": pl.String,
    "camera_serial": pl.String,
    "lens": pl.String,
    "latitude": pl.Float64,
    "longitude": pl.Float64,
    "geohash": pl.String,
    "dhash": pl.String,
    "ahash": pl.String,
    "whash": pl.String,
    "quality_score": pl.Int16,
    "exif_error": pl.String,
    "thumbnail": pl.Binary,
    "model_input": pl.Binary,  # 224 x 224 RGB for the image model, raw bytes (see embedding.py)
}


def analyze_files(paths: Sequence[bytes], kinds: Sequence[str], *, model_inputs: bool = False) -> pl.DataFrame:
    """One row per file, in order, with the columns of ANALYSIS_SCHEMA.

    A file that cannot be read or decoded becomes a row with a status and a reason;
    nothing raised by one file reaches the others.
    """
    rows = [analyze_file(path, kind, model_inputs=model_inputs) for path, kind in zip(paths, kinds)]
    return pl.DataFrame(rows, schema=ANALYSIS_SCHEMA, orient="row") if rows else pl.DataFrame(schema=ANALYSIS_SCHEMA)


def analyze_file(path: bytes, kind: str, *, model_inputs: bool = False) -> tuple:
    """Read `path` once; decode it once if it is an image (`kind` image or raw). With
    `model_inputs`, the same decode also gives the image model's input."""
    result = dict.fromkeys(ANALYSIS_SCHEMA)
    try:
        if kind == "video":  # streamed: videos can be larger than memory
            with open(path, "rb") as file:
                result["checksum"] = hashlib.file_digest(file, "sha256").hexdigest()
            return _finish(result, "skipped", "video: checksum only, frames are not analyzed")
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        return _finish(result, "error", f"cannot read file: {os.strerror(error.errno or 0) or error}")
    result["checksum"] = hashlib.sha256(data).hexdigest()
    if not data:
        return _finish(result, "error", "empty file (0 bytes)")
    try:
        result.update(_describe_image(data, model_inputs))
    except Exception as error:  # any decoder failure is this file's problem, never the batch's
        reason = f"cannot decode image: {type(error).__name__}: {error}"
        if kind == "raw":
            return _finish(result, "skipped", f"RAW file without a preview Pillow can read ({reason})")
        return _finish(result, "error", reason)
    return _finish(result, "ok", None)


def _describe_image(data: bytes, model_inputs: bool) -> dict:
    photo = decode_photo(data)
    exif = read_exif_metadata(photo.exif)
    grey = photo.image.convert("L")  # what each imagehash definition starts from
    has_position = exif["latitude"] is not None
    return {
        **exif,
        "format": photo.format,
        "width": photo.width,
        "height": photo.height,
        "display_width": photo.display_size[0],
        "display_height": photo.display_size[1],
        "orientation": photo.orientation,
        "geohash": encode_geohash(exif["latitude"], exif["longitude"]) if has_position else None,
        "dhash": compute_dhash(grey),
        "ahash": compute_ahash(grey),
        "whash": compute_whash(grey),
        "quality_score": quality_score(grey),
        "exif_error": photo.exif_error,
        "thumbnail": encode_thumbnail(photo.image),
        "model_input": model_input(photo.image).tobytes() if model_inputs else None,
    }


def _finish(result: dict, status: str, error: str | None) -> tuple:
    result["status"], result["error"] = status, error
    return tuple(result.values())
