"""What a video's container says (duration, capture time, place, camera, codec, frame size)
and one poster frame, read with PyAV (FFmpeg inside its wheels: no system ffprobe)."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

import av
from av.container import InputContainer
from av.error import FFmpegError
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from lumina_pipeline.analysis.imaging import MAX_PIXELS, THUMBNAIL_SHORT_SIDE, describe_error, too_large

BLACK_MEAN = 16  # mean luma (0-255) below which a frame counts as black (a fade-in, a lens cap)
BLACK_FRAMES = 300  # frames decoded at most past a black start for a picture (10 s at 30 fps)
APPLE = "com.apple.quicktime."
LOCATION_KEYS = (f"{APPLE}location.ISO6709", "location", "location-eng")
MAKE_KEYS = (f"{APPLE}make", "make", "com.android.manufacturer")
MODEL_KEYS = (f"{APPLE}model", "model", "com.android.model")
FORMAT_NAMES = {"avi": "AVI", "matroska,webm": "MKV", "mpegts": "MPEG-TS", "asf": "WMV", "mpeg": "MPEG-PS"}
# ISO 6709 as phones write it: latitude, longitude, optional altitude, optional CRS, then '/'.
ISO6709 = re.compile(r"([+-]\d+(?:\.\d*)?)([+-]\d+(?:\.\d*)?)(?:[+-]\d+(?:\.\d*)?)?(?:CRS.*)?/?")


class NoVideoStream(ValueError):
    """The file holds no video stream (sound only, or subtitles): nothing to look at."""


class UnreadableVideo(ValueError):
    """A video FFmpeg opens but that gives no poster: cut short, no frame size, no keyframe."""


@dataclass(frozen=True)
class DecodedVideo:
    poster: Image.Image  # RGB, upright (rotation applied), short side 256-511 px where the video has it
    metadata: dict  # what decode_video fills, named as photos.ANALYSIS_SCHEMA names it


def decode_video(file: BinaryIO | str, *, max_pixels: int = MAX_PIXELS) -> DecodedVideo:
    """The container's metadata and one decoded poster frame of `file` (an open binary file or
    a path). The poster is its first picture (_poster): one frame's decode, mostly. A frame size
    over `max_pixels` is refused (ImageTooLarge) before any frame is decoded. Raises
    NoVideoStream for a file without a video stream, UnreadableVideo for one cut short or
    without a decodable frame, and what PyAV raises for anything else it cannot read
    (describe_video_error words them all)."""
    with av.open(file, "r", metadata_errors="replace") as container:
        if not container.streams.video:
            raise NoVideoStream("no video stream (sound only?): nothing to show")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise UnreadableVideo(f"no decoder for this video's codec ({stream.codec_tag or 'unknown'})")
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise UnreadableVideo("the video stream has no frame size")
        if width * height > max_pixels:
            raise too_large("video", width, height, max_pixels)
        _check_complete(container, stream)
        duration = _duration(container, stream)
        frame, poster = _poster(container, stream)
        tags = {**stream.metadata, **container.metadata}  # the container's own tags win
        captured_at, offset, source = _capture_time(tags)
        position = next((p for key in LOCATION_KEYS if (p := parse_iso6709(tags.get(key)))), None)
        quarter_turns = round(frame.rotation / 90) % 4
        return DecodedVideo(
            poster=poster,
            metadata={
                "format": _format_name(container),
                "width": width,
                "height": height,
                "display_width": height if quarter_turns % 2 else width,
                "display_height": width if quarter_turns % 2 else height,
                "duration_seconds": duration,
                "video_codec": stream.codec_context.name,
                "captured_at": captured_at,
                "captured_at_source": source,
                "capture_offset": offset,
                "camera_make": _first(tags, MAKE_KEYS),
                "camera_model": _first(tags, MODEL_KEYS),
                "content_identifier": _first(tags, (f"{APPLE}content.identifier",)),
                "latitude": position[0] if position else None,
                "longitude": position[1] if position else None,
            },
        )


def describe_video_error(error: BaseException) -> str:
    """PyAV's errors name the file (an absolute path); keep their type and FFmpeg's words."""
    if isinstance(error, UnreadableVideo):
        return str(error)
    if isinstance(error, FFmpegError):
        return f"{type(error).__name__}: {error.strerror}"
    return describe_error(error)


def parse_iso6709(text: str | None) -> tuple[float, float] | None:
    """(latitude, longitude) in degrees of an ISO 6709 point ('+48.8584+002.2945+035.000/');
    degrees, degrees-minutes and degrees-minutes-seconds forms; None when malformed."""
    match = ISO6709.fullmatch(text.strip()) if text else None
    if not match:
        return None
    latitude, longitude = _iso6709_degrees(match[1], 2), _iso6709_degrees(match[2], 3)
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        return None
    return round(latitude, 6), round(longitude, 6)


def _iso6709_degrees(part: str, degree_digits: int) -> float | None:
    """'+4851.504' (DDMM.MMM) and the like: the number of integer digits says the form."""
    sign = -1 if part[0] == "-" else 1
    whole, _, fraction = part[1:].partition(".")
    extra = len(whole) - degree_digits  # 2: minutes follow the degrees, 4: and seconds
    if extra not in (0, 2, 4):
        return None
    value = float(f"{whole}.{fraction or 0}")
    if extra == 0:
        return sign * value
    degrees, rest = divmod(value, 10**extra)
    minutes, seconds = divmod(rest, 100) if extra == 4 else (rest, 0.0)
    return sign * (degrees + minutes / 60 + seconds / 3600)


def _check_complete(container: InputContainer, stream: VideoStream) -> None:
    """Refuse a file cut short: its index (QuickTime/MP4 keep one at the front or the end)
    places frames past the end of the file, though the frames before the cut may decode."""
    entries = stream.index_entries
    if entries and container.size > 0 and (last := entries[len(entries) - 1]).pos + last.size > container.size:
        raise UnreadableVideo(
            f"truncated: the video's index places frames up to byte {last.pos + last.size:,}, "
            f"but the file ends at byte {container.size:,}"
        )


def _duration(container: InputContainer, stream: VideoStream) -> float | None:
    if container.duration is not None and container.duration > 0:
        return round(container.duration / av.time_base, 3)
    if stream.duration is not None and stream.duration > 0 and stream.time_base is not None:
        return round(float(stream.duration * stream.time_base), 3)
    return None


def _poster(container: InputContainer, stream: VideoStream) -> tuple[VideoFrame, Image.Image]:
    """The poster frame and its reduced, upright image: the first frame that is not black (a
    fade-in, a lens cap, a screen recording's start), decoded from the first keyframe on, at
    most BLACK_FRAMES past it. Every encoding of a clip starts with the same picture, whichever
    frames it made keyframes: a copy re-encoded by a messenger has its original's poster."""
    frame = None
    for count, frame in enumerate(_frames_from_first_keyframe(container, stream)):
        luma = frame.reformat(width=32, height=32, format="gray").to_ndarray()
        if luma.mean() >= BLACK_MEAN or count >= BLACK_FRAMES:
            break
    if frame is None:
        raise UnreadableVideo("no frame could be decoded (truncated?)")
    return frame, _upright(frame)


def _frames_from_first_keyframe(container: InputContainer, stream: VideoStream) -> Iterator[VideoFrame]:
    """The frames in display order from the stream's first keyframe (a stream cut out of a
    longer one may start mid-way between two), the decoder drained at the end."""
    started = False
    for packet in container.demux(stream):
        started = started or (bool(packet.size) and packet.is_keyframe)
        if started:  # the last packet, empty, drains the decoder of the frames it holds back
            yield from (frame for frame in packet.decode() if isinstance(frame, VideoFrame))


def _upright(frame: VideoFrame) -> Image.Image:
    """The frame as RGB, box-reduced to a short side of 256-511 px as photos
    are (decode_photo), turned as the display matrix says (PyAV: degrees counterclockwise)."""
    factor = max(1, min(frame.width, frame.height) // THUMBNAIL_SHORT_SIDE)
    image = frame.to_image(width=frame.width // factor, height=frame.height // factor, interpolation="AREA")
    turn = {1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_270}
    quarter_turns = round(frame.rotation / 90) % 4
    return image.transpose(turn[quarter_turns]) if quarter_turns else image


def _capture_time(tags: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """(captured_at, offset, source): Apple's creation date is local time with its offset;
    the container's creation_time is UTC. captured_at is naive ISO, as photos store it."""
    apple = _parse_time(tags.get(f"{APPLE}creationdate"))
    if apple is not None:
        local = apple.replace(tzinfo=None).isoformat()
        return local, apple.isoformat()[len(local):] or None, f"{APPLE}creationdate"  # offset: '+02:00'
    created = _parse_time(tags.get("creation_time"))
    if created is not None and created.year > 1970:  # 1904 or 1970: a camera whose clock was never set
        utc = created.astimezone(UTC) if created.tzinfo else created
        return utc.replace(tzinfo=None).isoformat(), "+00:00", "creation_time"
    return None, None, None


def _parse_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip()).replace(microsecond=0) if text else None
    except ValueError:
        return None


def _format_name(container: InputContainer) -> str:
    """'MOV' or 'MP4' for the QuickTime family (by its major brand), else FFmpeg's name."""
    name = container.format.name
    if name.startswith("mov,mp4"):
        brand = container.metadata.get("major_brand", "qt").strip()
        return "MOV" if brand == "qt" else "3GP" if brand.startswith("3g") else "MP4"
    return FORMAT_NAMES.get(name, name.split(",")[0].upper())


def _first(tags: dict[str, str], keys: tuple[str, ...]) -> str | None:
    return next((value.strip() for key in keys if (value := tags.get(key)) and value.strip()), None)
