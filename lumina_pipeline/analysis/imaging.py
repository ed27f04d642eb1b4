"""Open a photo once and decode it at the smallest scale that still serves every use."""

import io
import math
from dataclasses import dataclass

import pillow_heif
from PIL import ExifTags, Image, ImageOps

# Registers HEIC/HEIF with Pillow (a process-wide plugin table); AVIF is Pillow's own.
pillow_heif.register_heif_opener()

THUMBNAIL_SHORT_SIDE = 256
ORIENTATION_TAG = ExifTags.Base.Orientation
REDUCIBLE_MODES = frozenset({"L", "RGB", "RGBA", "I", "F"})
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class DecodedPhoto:
    image: Image.Image  # upright (orientation applied), short side 256-511 px where the file has it
    format: str
    width: int  # as the file stores it; for HEIF as decoded, container rotation applied
    height: int
    orientation: int | None  # the raw EXIF value
    exif: Image.Exif
    exif_error: str | None  # a damaged EXIF block costs its fields, not the photo

    @property
    def display_size(self) -> tuple[int, int]:
        """Size as a viewer shows it. HEIF decoders already rotate, so only JPEG-style swaps."""
        rotated = self.format != "HEIF" and self.orientation in SWAPPING_ORIENTATIONS
        return (self.height, self.width) if rotated else (self.width, self.height)


def decode_photo(data: bytes, *, min_side: int = THUMBNAIL_SHORT_SIDE) -> DecodedPhoto:
    """Decode the bytes of one photo at reduced scale: short side in [min_side, 2 * min_side)
    when the photo is that large (JPEG DCT scaling via `Image.draft`, else a box reduce).

    That one image serves the hashes, the quality score and, as it is, the thumbnail.

    Raises what Pillow raises for files it cannot decode: unknown formats, truncated data,
    and images over its decompression-bomb limit.
    """
    image = Image.open(io.BytesIO(data))
    width, height, photo_format = *image.size, image.format
    try:
        exif, exif_error = image.getexif(), None
    except Exception as error:  # malformed APP1 blocks raise from several places in Pillow
        exif, exif_error = Image.Exif(), f"{type(error).__name__}: {error}"
    orientation = exif.get(ORIENTATION_TAG)
    if photo_format == "HEIF":  # pillow-heif rotates and resets the tag to 1; keep the original
        orientation = image.info.get("original_orientation") or orientation
    scale = min_side / min(width, height)
    if scale < 1:
        image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
    image.load()
    if photo_format != "HEIF" and orientation not in (None, 1):
        image = ImageOps.exif_transpose(image)
    if (factor := min(image.size) // min_side) >= 2:  # formats without DCT scaling: box-reduce
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


def encode_thumbnail(image: Image.Image, quality: int = 85) -> bytes:
    """The reduced decode as a JPEG thumbnail: its short side is already 256-511 px."""
    buffer = io.BytesIO()
    (image if image.mode in ("RGB", "L") else image.convert("RGB")).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()

