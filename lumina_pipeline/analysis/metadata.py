"""What a photo's EXIF says: capture time, camera, lens, orientation and GPS position."""

import re
from datetime import datetime
from typing import Any

from PIL import ExifTags, Image

IFD = ExifTags.IFD
TAG = ExifTags.Base
GPS = ExifTags.GPS
GEOHASH_ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz"
_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")


def read_exif_metadata(exif: Image.Exif) -> dict:
    """Flat fields from EXIF; a tag that is missing or malformed gives None, never an error.

    Capture time is DateTimeOriginal (camera local time, with SubSecTimeOriginal and
    OffsetTimeOriginal when present); IFD0 DateTime stands in when it is missing, and
    `captured_at_source` says which tag the value came from."""
    ifd0 = dict(exif)
    exif_ifd = _sub_ifd(exif, IFD.Exif)
    gps = _sub_ifd(exif, IFD.GPSInfo)
    original = _exif_datetime(exif_ifd.get(TAG.DateTimeOriginal))
    fallback = _exif_datetime(ifd0.get(TAG.DateTime))
    subsec = _text(exif_ifd.get(TAG.SubsecTimeOriginal)) if original else None
    offset = _text(exif_ifd.get(TAG.OffsetTimeOriginal)) if original else None
    latitude = _gps_degrees(gps.get(GPS.GPSLatitude), gps.get(GPS.GPSLatitudeRef), "S")
    longitude = _gps_degrees(gps.get(GPS.GPSLongitude), gps.get(GPS.GPSLongitudeRef), "W")
    no_fix = gps.get(GPS.GPSStatus) == "V" or latitude == longitude == 0  # "void": a receiver that had none
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180 or no_fix:
        latitude = longitude = None
    subsec = subsec if subsec and subsec.isdecimal() else None
    return {
        "captured_at": f"{original}.{subsec}" if original and subsec else original or fallback,
        "captured_at_source": "DateTimeOriginal" if original else ("DateTime" if fallback else None),
        "capture_subsec": subsec,
        "capture_offset": offset if offset and _OFFSET.match(offset) else None,
        "camera_make": _text(ifd0.get(TAG.Make)),
        "camera_model": _text(ifd0.get(TAG.Model)),
        "camera_serial": _text(exif_ifd.get(TAG.BodySerialNumber)),
        "lens": _text(exif_ifd.get(TAG.LensModel)),
        "latitude": latitude,
        "longitude": longitude,
    }


def encode_geohash(latitude: float, longitude: float, precision: int = 8) -> str:
    """Geohash of a position (Niemeyer's base-32 interleaving of longitude and latitude bits).

    Written here because the algorithm is a dozen lines and the PyPI geohash packages are
    unmaintained; the 4- and 6-character cells are prefixes of the 8-character one."""
    intervals = [[-180.0, 180.0], [-90.0, 90.0]]  # even bits refine longitude, odd bits latitude
    value = 0
    for bit in range(5 * precision):
        interval, coordinate = intervals[bit % 2], (longitude, latitude)[bit % 2]
        mid = (interval[0] + interval[1]) / 2
        value = value * 2 + (coordinate >= mid)
        interval[0 if coordinate >= mid else 1] = mid
    return "".join(GEOHASH_ALPHABET[(value >> 5 * (precision - 1 - i)) & 31] for i in range(precision))


def _sub_ifd(exif: Image.Exif, ifd: int) -> dict:
    try:
        return dict(exif.get_ifd(ifd))
    except Exception:  # a damaged pointer in IFD0 must not cost the rest of the EXIF
        return {}


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.split("\x00", 1)[0].strip() or None  # EXIF ASCII ends at the first NUL


def _exif_datetime(value: object) -> str | None:
    """'YYYY:MM:DD HH:MM:SS' to ISO 8601 local time; blanks and impossible dates give None."""
    text = _text(value)
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S").isoformat() if text else None
    except ValueError:
        return None


def _gps_degrees(parts: Any, reference: object, negative: str) -> float | None:
    """`parts`: whatever the GPS tag holds, three rationals when it is well formed."""
    try:
        degrees, minutes, seconds = (float(part) for part in parts)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = degrees + minutes / 60 + seconds / 3600
    if value != value:  # NaN from a 0/0 rational
        return None
    return round(-value if _text(reference) == negative else value, 6)
