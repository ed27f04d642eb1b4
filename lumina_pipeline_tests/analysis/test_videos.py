"""Videos through analyze_file: container metadata (PyAV) and one poster frame through the
photos' path (hashes, quality, thumbnail, model input), on the corpus and on clips encoded here."""

import io
import os
import struct
from datetime import datetime
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import ExifTags, Image

from lumina_pipeline.analysis.embedding import INPUT_SIZE
from lumina_pipeline.analysis.metadata import encode_geohash
from lumina_pipeline.analysis.photos import ANALYSIS_SCHEMA, analyze_file, analyze_files
from lumina_pipeline.analysis.videos import parse_iso6709

FIELDS = list(ANALYSIS_SCHEMA)
LIVE_VIDEO = "Phone/2022/IMG_0002.MOV"
PLACEHOLDERS = ["_eingang/IMG_0420.MOV", "_eingang/VID_20220814_141500.mp4"]


def analyze(path: bytes | Path, kind: str = "video", **options) -> dict:
    return dict(zip(FIELDS, analyze_file(os.fsencode(path), kind, **options), strict=True))


def thumbnail_of(got: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(got["thumbnail"])).convert("L"), dtype=np.float64)


def encode_clip(
    path: Path, frames: list[np.ndarray], *, fps: int = 10, keyint: int = 7, rotation: int = 0, form: str | None = None
) -> Path:
    """An H.264 clip of `frames` (RGB arrays) with a keyframe every `keyint` frames (x264's
    B-frames left on, so that the decoder holds frames back) and an optional display rotation;
    MP4 unless `form` names another container."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format=form) as container:
        params = f"keyint={keyint}:min-keyint={keyint}:scenecut=0"
        stream = container.add_stream("libx264", rate=fps, options={"x264-params": params})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)  # PyAV: degrees counterclockwise, as frames report it
        for pixels in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return path


def grey_frames(levels: list[int], size: tuple[int, int] = (96, 64)) -> list[np.ndarray]:
    return [np.full((size[1], size[0], 3), level, np.uint8) for level in levels]


def test_every_expected_video_field_matches_the_manifest(corpus):
    for path, expected in corpus.manifest["expected_video_metadata"].items():
        record = corpus.files(path=path)[0]
        got = analyze(corpus.real_path(record), model_inputs=True)
        assert (got["status"], got["error"]) == ("ok", None), path
        assert got["status"] in record["acceptable_status"] and got["checksum"] == record["sha256"]
        assert got["format"] == record["format"] and got["video_codec"] == "h264"
        assert got["duration_seconds"] == pytest.approx(expected["duration_seconds"], abs=0.1), path
        taken = datetime.fromisoformat(got["captured_at"]) - datetime.fromisoformat(expected["captured_at"])
        assert abs(taken.total_seconds()) <= 1, path
        assert got["latitude"] == pytest.approx(expected["latitude"], abs=0.001), path
        assert got["longitude"] == pytest.approx(expected["longitude"], abs=0.001), path
        assert got["geohash"] == encode_geohash(got["latitude"], got["longitude"])
        assert (got["width"], got["height"]) == (expected["width"], expected["height"]), path
        assert (got["display_width"], got["display_height"]) == (expected["width"], expected["height"]), path
        assert len(got["model_input"]) == INPUT_SIZE * INPUT_SIZE * 3 and got["thumbnail"]
        assert all(len(got[name]) == 16 for name in ("dhash", "ahash", "whash"))


def test_capture_time_comes_from_apples_local_date_first_else_the_utc_creation_time(corpus):
    live = analyze(corpus.real_path(corpus.files(path=LIVE_VIDEO)[0]))
    phone = analyze(corpus.real_path(corpus.files(path="Urlaub 2023/VID_20230704_101500.mp4")[0]))

    assert (live["captured_at"], live["capture_offset"], live["captured_at_source"]) == (
        "2022-08-14T14:14:59", "+02:00", "com.apple.quicktime.creationdate"
    )
    assert (phone["captured_at"], phone["capture_offset"], phone["captured_at_source"]) == (
        "2023-07-04T08:15:00", "+00:00", "creation_time"
    )
    assert (live["camera_make"], live["camera_model"]) == ("Apple", "iPhone 12")
    assert live["content_identifier"] == "6D1E0C5F-3B2A-4C55-9E2B-0A5C1F0D2E11"
    assert phone["content_identifier"] is None and phone["orientation"] is None


def test_the_poster_frame_of_every_readable_video_is_not_black(corpus):
    for path in corpus.manifest["expected_video_metadata"]:
        got = analyze(corpus.real_path(corpus.files(path=path)[0]))
        assert thumbnail_of(got).mean() > 40 and got["quality_score"] > 20, path


@pytest.mark.parametrize("path", PLACEHOLDERS)
def test_a_fake_video_is_an_error_with_a_readable_reason(corpus, path):
    record = corpus.files(path=path)[0]
    got = analyze(corpus.real_path(record))
    assert got["status"] == "error" and got["status"] in record["acceptable_status"]
    assert got["error"] == "cannot decode video: InvalidDataError: Invalid data found when processing input"
    assert got["checksum"] == record["sha256"] and got["thumbnail"] is None


def test_an_empty_video_is_an_error(tmp_path):
    empty = tmp_path / "VID_0001.mp4"
    empty.write_bytes(b"")
    assert analyze(empty)["error"] == "empty file (0 bytes)"


def faststart_copy(source: bytes, destination: Path) -> Path:
    """The same frames with the index (moov) before them, as cameras that stream write it."""
    faststart = {"movflags": "faststart"}
    with av.open(os.fsdecode(source)) as original, av.open(str(destination), "w", options=faststart) as copy:
        stream = copy.add_stream_from_template(original.streams.video[0])
        for packet in original.demux(original.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                copy.mux(packet)
    return destination


def test_a_video_cut_short_is_an_error_and_never_raises_or_hangs(corpus, tmp_path):
    source = corpus.real_path(corpus.files(path=LIVE_VIDEO)[0])
    layouts = {"index last": Path(os.fsdecode(source)), "index first": faststart_copy(source, tmp_path / "fast.mov")}
    paths = []
    for layout, full in layouts.items():
        for share in (0.05, 0.5, 0.9):
            data = full.read_bytes()
            cut = tmp_path / f"{layout} {share}.MOV"
            cut.write_bytes(data[: int(len(data) * share)])
            paths.append(os.fsencode(cut))

    frame = analyze_files(paths, ["video"] * len(paths), timeout_seconds=30)

    rows = frame.select("status", "error").rows()
    assert all(status == "error" and error for status, error in rows), rows
    assert not any("within 30 s" in error or "/" in error for _, error in rows)  # no timeout, no path
    assert rows[4][1].startswith("cannot decode video: truncated: the video's index places frames up to byte")
    assert analyze(tmp_path / "fast.mov")["status"] == "ok"  # the same frames, uncut


def test_the_time_limit_covers_the_video_decoder(corpus):
    path = corpus.real_path(corpus.files(path=LIVE_VIDEO)[0])
    frame = analyze_files([path], ["video"], timeout_seconds=1e-6)
    assert frame.select("status", "error").row(0) == (
        "error", "not read and decoded within 1e-06 s (file_timeout_seconds): abandoned"
    )


def test_a_video_is_checked_against_the_inventory_as_photos_are(corpus, tmp_path):
    path = corpus.real_path(corpus.files(path=LIVE_VIDEO)[0])
    info = os.stat(path)
    changed = analyze(path, recorded=(info.st_size + 1, info.st_mtime_ns))
    fifo = tmp_path / "IMG_0003.MOV"
    os.mkfifo(fifo)  # nobody writes to it: opened blocking, it would wait for ever

    assert (changed["status"], changed["checksum"]) == ("pending", None)
    assert analyze(path, recorded=(info.st_size, info.st_mtime_ns))["status"] == "ok"
    assert analyze(fifo)["error"] == "not a regular file but a FIFO: not read"


def test_a_frame_over_the_pixel_limit_is_refused_before_decoding(corpus):
    got = analyze(corpus.real_path(corpus.files(path=LIVE_VIDEO)[0]), max_pixels=100_000)
    assert (got["status"], got["thumbnail"]) == ("error", None)
    assert got["error"] == (
        "video too large: 480 x 360 pixels (0.2 megapixels) is over the limit of 0.1 megapixels (max_megapixels)"
    )


def test_the_poster_is_the_first_picture_whichever_frames_are_keyframes(tmp_path):
    """A messenger's copy is encoded again with other keyframes: it has its original's poster,
    so the two group as duplicates."""
    stripes = np.sin(np.arange(288) / 9)[:, None] * np.cos(np.arange(192) / 7)[None, :]  # a scene to hash
    frames = [np.repeat(((np.roll(stripes, 12 * i, axis=0) + 1) * 120).astype(np.uint8).T[..., None], 3, axis=2)
              for i in range(30)]  # 3 s at 10 fps, panning
    original = analyze(encode_clip(tmp_path / "PXL_1.mp4", frames, keyint=7))  # a keyframe each 0.7 s
    shared = analyze(encode_clip(tmp_path / "VID-WA0001.mp4", frames, keyint=250))  # one, at the start
    a_second_in = analyze(encode_clip(tmp_path / "later.mp4", frames[10:]))

    def bits_apart(one: dict, other: dict) -> int:
        return (int(one["phash"], 16) ^ int(other["phash"], 16)).bit_count()

    assert bits_apart(original, shared) <= 4 < 12 < bits_apart(original, a_second_in)  # 12: a near-duplicate


@pytest.mark.parametrize("keyint", [7, 250], ids=["keyframes through the fade", "one keyframe"])
def test_a_black_start_gives_way_to_the_first_picture(tmp_path, keyint):
    # black until 2 s (a fade-in, a screen recording's start)
    clip = encode_clip(tmp_path / "fade.mp4", grey_frames([0] * 20 + [150] * 10), keyint=keyint)
    assert thumbnail_of(analyze(clip)).mean() == pytest.approx(150, abs=3)


def test_a_stream_without_an_index_gives_its_first_keyframe_when_seeking_passes_it(tmp_path):
    # MPEG-TS (a camcorder's .MTS) has no index: a seek to 1 s lands after the one keyframe
    clip = encode_clip(tmp_path / "00001.MTS", grey_frames([90] * 30), keyint=250, form="mpegts")
    got = analyze(clip)
    assert (got["status"], got["format"]) == ("ok", "MPEG-TS")
    assert thumbnail_of(got).mean() == pytest.approx(90, abs=3)


def test_a_file_with_sound_only_is_skipped_with_its_reason(tmp_path):
    sound = tmp_path / "memo.mp4"
    with av.open(str(sound), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        for _ in range(8):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            samples.sample_rate = 8000
            container.mux(stream.encode(samples))
        container.mux(stream.encode())
    got = analyze(sound)
    assert (got["status"], got["error"]) == ("skipped", "no video stream (sound only?): nothing to show")
    assert got["checksum"] and got["thumbnail"] is None


def test_a_rotated_video_is_shown_upright_with_its_display_size_swapped(tmp_path):
    pixels = np.zeros((64, 96, 3), np.uint8)
    pixels[:32, :48] = 255  # the stored frame's top-left quarter is white
    # -90: a quarter turn clockwise to show it, as an iPhone held upright records
    got = analyze(encode_clip(tmp_path / "portrait.mp4", [pixels] * 10, rotation=-90))

    assert (got["width"], got["height"], got["display_width"], got["display_height"]) == (96, 64, 64, 96)
    shown = thumbnail_of(got)
    assert shown.shape == (96, 64)
    assert shown[:48, 32:].mean() > 200 and shown[48:, :].mean() < 50 and shown[:48, :32].mean() < 50


def test_iso6709_positions_in_their_three_forms():
    assert parse_iso6709("+48.8584+002.2945+035.000/") == (48.8584, 2.2945)
    assert parse_iso6709("-3345.5+15112.25/") == (-33.758333, 151.204167)  # degrees and minutes
    assert parse_iso6709("+404230-0740035/") == (40.708333, -74.009722)  # degrees, minutes, seconds
    assert parse_iso6709("+40.7-074.0CRSWGS_84/") == (40.7, -74.0)
    assert [parse_iso6709(text) for text in ("", "nowhere", "+91.0+000.0/", "+1.5")] == [None] * 4


def apple_maker_note(content_identifier: bytes) -> bytes:
    """An Apple MakerNote as iPhones write it ('Apple iOS', version 1, big-endian IFD whose
    offsets count from the note's start) with tag 0x0011 and one other entry."""
    text = content_identifier + b"\x00"
    offset = 14 + 2 + 12 * 2 + 4  # the header, the entry count, two entries, the next-IFD offset
    entries = [(0x0001, 9, 1, struct.pack(">i", 14)), (0x0011, 2, len(text), struct.pack(">I", offset))]
    ifd = struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHI", *entry[:3]) + entry[3] for entry in entries)
    return b"Apple iOS\x00\x00\x01MM" + ifd + b"\x00\x00\x00\x00" + text


def test_a_live_photos_still_carries_the_content_identifier_of_its_video(corpus, tmp_path):
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Apple"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.MakerNote] = apple_maker_note(b"6D1E0C5F-3B2A-4C55-9E2B-0A5C1F0D2E11")
    still = tmp_path / "IMG_0002.JPG"
    Image.new("RGB", (64, 48), "orange").save(still, exif=exif)
    video = analyze(corpus.real_path(corpus.files(path=LIVE_VIDEO)[0]))

    assert analyze(still, "image")["content_identifier"] == video["content_identifier"] is not None
    # the corpus's stills: IMG_0001.HEIC has an Apple MakerNote without the tag, IMG_0002.HEIC none at all
    for path in ("Phone/2022/IMG_0001.HEIC", "Phone/2022/IMG_0002.HEIC"):
        got = analyze(corpus.real_path(corpus.files(path=path)[0]), "image")
        assert (got["status"], got["content_identifier"]) == ("ok", None), path
