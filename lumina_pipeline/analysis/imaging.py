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
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class DecodedPhoto:
    image: Image.Image  # upright (orientation applied), short side >= 256 px where the file has it
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
    """Decode the bytes of one photo at reduced scale (JPEG DCT scaling via `Image.draft`).

    Raises what Pillow raises for files it cannot decode: unknown formats, truncated data,
    and images over its decompression-bomb limit.
    """
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    try:
        exif, exif_error = image.getexif(), None
    except Exception as error:  # malformed APP1 blocks raise from several places in Pillow
        exif, exif_error = Image.Exif(), f"{type(error).__name__}: {error}"
    orientation = exif.get(ORIENTATION_TAG)
    if image.format == "HEIF":  # pillow-heif rotates and resets the tag to 1; keep the original
        orientation = image.info.get("original_orientation") or orientation
    scale = min_side / min(width, height)
    if scale < 1:
        image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
    image.load()
    upright = image if image.format == "HEIF" else ImageOps.exif_transpose(image)
    return DecodedPhoto(
        image=upright,
        format=image.format or "",
        width=width,
        height=height,
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else None,
        exif=exif,
        exif_error=exif_error,
    )


def make_thumbnail(image: Image.Image, short_side: int = THUMBNAIL_SHORT_SIDE) -> Image.Image:
    """An RGB copy whose short side is `short_side` px (or the image's own, if smaller)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    scale = short_side / min(rgb.size)
    if scale >= 1:
        return rgb.copy() if rgb is image else rgb
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb.resize(size, Image.BICUBIC)


def encode_jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()

