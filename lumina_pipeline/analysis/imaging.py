"""Open a photo once and decode it at the smallest scale that still serves every use."""

import io
import math
import re
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageOps

# Registers HEIC/HEIF with Pillow (a process-wide plugin table); AVIF is Pillow's own.
pillow_heif.register_heif_opener()

THUMBNAIL_SHORT_SIDE = 256
# Above the largest camera sensors (102 megapixels, medium format); a 144-megapixel PNG took
# 648 MB to decode. Baseline JPEGs decode reduced and may be larger (see decode_photo).
MAX_PIXELS = 120_000_000
# Pillow's own bound (a warning above it, a refusal above twice it), a process-wide setting like
# the plugin table: at its default, 89 megapixels, every medium-format photo was called "a
# decompression bomb DOS attack" in the run's log, with no file named.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
REDUCIBLE_MODES = frozenset({"L", "RGB", "RGBA", "F"})
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
# Formats whose decoder turns the image upright itself: pillow-heif (the container's rotation,
# then the tag reset to 1) and Pillow's TIFF plugin (the Orientation tag; it also reports the
# turned size).
SELF_TURNING_FORMATS = frozenset({"HEIF", "TIFF"})
# Greyscale with 16 bits per sample: 16-bit PNGs and TIFFs load as `I;16*`, 32-bit integer
# TIFFs (which hold 16-bit values in practice) as `I`.
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
# Python's default repr of an object: its address differs on every run.
OBJECT_REPR = re.compile(r"\s*<(?:[^<>]* at 0x[0-9a-fA-F]+|_io\.\w+ name=.*)>")  # an object, or an open file


class ImageTooLarge(ValueError):
    """The photo would need more pixels in memory than the `max_pixels` it was decoded with."""


def too_large(what: str, width: int, height: int, max_pixels: int) -> ImageTooLarge:
    return ImageTooLarge(f"{what} too large: {width} x {height} pixels ({width * height / 1e6:.1f} megapixels) "
                         f"is over the limit of {max_pixels / 1e6:g} megapixels (max_megapixels)")


@dataclass(frozen=True)
class DecodedPhoto:
    image: Image.Image  # upright (orientation applied), short side 256-511 px where the file has it
    format: str | None  # Pillow's name for it; every format Image.open opens sets one
    width: int  # as the file stores it; for HEIF as decoded, the container's rotation applied
    height: int
    orientation: int | None  # the raw EXIF value
    exif: Image.Exif
    exif_error: str | None  # a damaged EXIF block costs its fields, not the photo

    @property
    def display_size(self) -> tuple[int, int]:
        """Size as a viewer shows it. HEIF decoders already rotate, so only JPEG-style swaps."""
        rotated = self.format != "HEIF" and self.orientation in SWAPPING_ORIENTATIONS
        return (self.height, self.width) if rotated else (self.width, self.height)


def decode_photo(data: bytes | BinaryIO, *, max_pixels: int = MAX_PIXELS) -> DecodedPhoto:
    """Decode one photo (its bytes, or its open file) at reduced scale: short side of 256-511 px (the thumbnail's)
    when the photo is that large (JPEG DCT scaling via `Image.draft`, else a box reduce). That one image serves
    the hashes, the quality score and, as it is, the thumbnail. 16-bit greyscale becomes 8-bit by keeping the
    high byte of each value.

    `max_pixels` bounds the memory a decode takes, checked on the header before any pixel is
    decoded: a photo is refused (ImageTooLarge) when what the decoder holds is larger. That is
    the full size, except for baseline JPEGs, which stream through DCT scaling (at most 1/8 of
    each side), so their reduced size counts; progressive JPEGs buffer every coefficient of the
    full size (a 96-megapixel one took 300 MB at 1/8 scale), so their full size counts.

    Raises what Pillow raises for files it cannot decode: unknown formats, truncated data, and
    images over its decompression-bomb limit (twice MAX_PIXELS), checked first."""
    image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    width, height, photo_format = *image.size, image.format
    try:
        exif, exif_error = image.getexif(), None
    except Exception as error:  # malformed APP1 blocks raise from several places in Pillow
        exif, exif_error = Image.Exif(), describe_error(error)
    orientation = exif.get(ExifTags.Base.Orientation)
    if photo_format == "HEIF":  # pillow-heif rotates and resets the tag to 1; keep the original
        orientation = image.info.get("original_orientation") or orientation
    if photo_format == "TIFF" and orientation in SWAPPING_ORIENTATIONS:
        width, height = height, width  # as stored, not as Pillow turns it
    scale = THUMBNAIL_SHORT_SIDE / min(width, height)
    if scale < 1:
        image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
    held = (width, height) if image.info.get("progressive") else image.size  # draft reduced baseline JPEGs only
    if held[0] * held[1] > max_pixels:
        raise too_large("image", width, height, max_pixels)
    image.load()
    if photo_format not in SELF_TURNING_FORMATS and orientation not in (None, 1):
        image = ImageOps.exif_transpose(image)
    if image.mode in SIXTEEN_BIT_MODES:  # Pillow's own conversion clips every value above 255 to white
        image = Image.fromarray((np.asarray(image).clip(0, 65535) >> 8).astype(np.uint8))
    if (factor := min(image.size) // THUMBNAIL_SHORT_SIDE) >= 2:  # formats without DCT scaling: box-reduce
        image = (image if image.mode in REDUCIBLE_MODES else image.convert("RGB")).reduce(factor)
    return DecodedPhoto(
        image=image,
        format=photo_format,
        width=width,
        height=height,
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else None,
        exif=exif,
        exif_error=exif_error,
    )


def describe_error(error: BaseException) -> str:
    """An exception as stable, readable text: its type and message without object reprs
    (Pillow names the file object it could not identify: at a new address on every run, or by
    the file's path, which the row has already)."""
    return OBJECT_REPR.sub("", f"{type(error).__name__}: {error}")


def encode_thumbnail(image: Image.Image) -> bytes:
    """The reduced decode as a JPEG thumbnail: its short side is already 256-511 px."""
    buffer = io.BytesIO()
    (image if image.mode in ("RGB", "L") else image.convert("RGB")).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()

