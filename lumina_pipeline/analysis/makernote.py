"""Apple's content identifier in a photo's MakerNote: the id an iPhone gives both halves of a
Live Photo (the still's MakerNote tag 0x0011, the video's `com.apple.quicktime.content.identifier`).

Written by hand because Pillow parses no Apple MakerNote (only Fujifilm's and Nintendo's)
and one tag is not worth a dependency: the note is a small TIFF-style IFD, read here with
every count and offset checked against its bytes."""

import struct

from PIL import ExifTags, Image

APPLE_HEADER = b"Apple iOS\x00"
IFD_START = 14  # header, a 2-byte version, then the byte order ('MM' or 'II'); offsets count from the note's start
CONTENT_IDENTIFIER_TAG = 0x0011
ASCII = 2
MAX_ENTRIES = 512  # iPhones write about 50
MAX_TEXT = 256


def apple_content_identifier(exif: Image.Exif) -> str | None:
    """The content identifier of an Apple MakerNote in `exif`; None when there is none or the
    note is malformed (never an error)."""
    try:
        note = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.MakerNote)
    except Exception:  # a damaged Exif pointer costs this field only
        return None
    if not isinstance(note, bytes) or not note.startswith(APPLE_HEADER) or len(note) < IFD_START + 2:
        return None
    order = {b"MM": ">", b"II": "<"}.get(note[12:14])
    if order is None:
        return None
    (count,) = struct.unpack_from(f"{order}H", note, IFD_START)
    for index in range(min(count, MAX_ENTRIES)):
        start = IFD_START + 2 + 12 * index
        if start + 12 > len(note):
            return None
        tag, kind, length, value = struct.unpack_from(f"{order}HHI4s", note, start)
        if tag != CONTENT_IDENTIFIER_TAG:
            continue
        if kind != ASCII or not 0 < length <= MAX_TEXT:
            return None
        (offset,) = struct.unpack(f"{order}I", value)
        if length > 4 and offset + length > len(note):
            return None
        text = value[:length] if length <= 4 else note[offset : offset + length]
        return text.split(b"\x00", 1)[0].decode("ascii", "replace").strip() or None
    return None
