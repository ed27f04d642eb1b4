"""Photo files for browsers: found only inside a catalog's folders, and served in a format a
browser shows (JPEG, PNG, GIF and WebP as stored; everything else Pillow reads, such as
HEIC, TIFF, camera RAW previews or AVIF, converted to JPEG)."""

import io
import mimetypes
import os
from collections.abc import Sequence

from PIL import Image, ImageOps

from lumina_pipeline.analysis import imaging  # noqa: F401  (registers the HEIF opener with Pillow)
from lumina_pipeline.analysis.files import resolves_inside

BROWSER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
JPEG_QUALITY = 90


def file_inside(roots: Sequence[str], source_root: str, path: bytes) -> bytes | None:
    """The real path of a stored (source_root, path) when it is a file inside one of the
    catalog's folders once every symlink is resolved; None for anything else (a row whose
    path climbs out with `..`, a symlink swapped in after the inventory, a vanished file)."""
    real_roots = [os.fsencode(os.path.realpath(root)) for root in roots]
    full = os.path.join(os.fsencode(source_root), path)
    if not resolves_inside(os.fsencode(source_root), real_roots) or not resolves_inside(full, real_roots):
        return None
    real = os.path.realpath(full)
    return real if os.path.isfile(real) else None


def video_type(path: bytes) -> str:
    """The media type to send a video with: browsers play H.264 QuickTime files (a Live
    Photo's clip) only when told they are MP4, which their container nearly is."""
    if path.lower().endswith((b".mov", b".mp4", b".m4v")):
        return "video/mp4"
    return mimetypes.guess_type(os.fsdecode(path))[0] or "application/octet-stream"


def browser_image(data: bytes) -> tuple[bytes, str]:
    """The bytes to send and their media type. Raises what Pillow raises for data it cannot
    read."""
    with Image.open(io.BytesIO(data)) as image:
        if image.format in BROWSER_FORMATS:
            return data, BROWSER_FORMATS[image.format]
        upright = ImageOps.exif_transpose(image)  # a JPEG carries its orientation; the browser applies it
        buffer = io.BytesIO()
        upright.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY)
        return buffer.getvalue(), "image/jpeg"
