"""Photo files for browsers: found only inside a catalog's folders, and served in a format a
browser shows (JPEG, PNG, GIF and WebP as stored; everything else Pillow reads, such as
HEIC, TIFF, camera RAW previews or AVIF, converted to JPEG)."""

import io
import mimetypes
import os
import stat
from collections.abc import Sequence

from PIL import Image, ImageOps
from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

from lumina_pipeline.analysis import imaging  # noqa: F401  (registers the HEIF opener with Pillow)

BROWSER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
JPEG_QUALITY = 90


def open_inside(roots: Sequence[str], source_root: str, path: bytes) -> int | None:
    """An open descriptor of a stored (source_root, path) when what it opened is a regular file
    inside one of the catalog's folders, as stored (resolved when the catalog was added); None
    for anything else (a row whose path climbs out with `..`, a symlink or folder swapped in
    after the inventory, a vanished file). Where the file lies is read from the open descriptor
    (Linux's /proc), so no symlink swapped in between a check and a read is ever followed."""
    try:  # non-blocking: a FIFO put in a photo's place must not hang the request
        descriptor = os.open(os.path.join(os.fsencode(source_root), path), os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    real = os.readlink(b"/proc/self/fd/%d" % descriptor)
    if stat.S_ISREG(os.fstat(descriptor).st_mode) and any(real.startswith(os.fsencode(root) + b"/") for root in roots):
        return descriptor
    os.close(descriptor)
    return None


class OpenFileResponse(FileResponse):
    """A file already open (`open_inside`) streamed as FileResponse does, ranges included,
    through its /proc name; the descriptor is closed when the response ends, however it ends."""

    def __init__(self, descriptor: int, **options):
        super().__init__(f"/proc/self/fd/{descriptor}", **options)
        self.descriptor = descriptor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            os.close(self.descriptor)


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
