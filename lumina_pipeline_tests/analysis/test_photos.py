import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw

from lumina_pipeline.analysis import photos, videos
from lumina_pipeline.analysis.files import classify, walk_sources
from lumina_pipeline.analysis.fingerprint import fingerprint, inventory_digest
from lumina_pipeline.analysis.photos import ANALYSIS_SCHEMA, analyze_file, analyze_files

FIELDS = list(ANALYSIS_SCHEMA)


def analyze(path: bytes, kind: str = "image", **options) -> dict:
    return dict(zip(FIELDS, analyze_file(path, kind, **options), strict=True))


def corpus_kind(record: dict) -> str:
    return classify(record["path"].encode())


def test_every_expected_metadata_field_matches_the_manifest(corpus):
    for expected in corpus.manifest["expected_metadata"]:
        record = corpus.files(path=expected["path"])[0]
        got = analyze(corpus.real_path(record))
        from_original = got["captured_at_source"] == "DateTimeOriginal"
        capture = got["captured_at"].split(".")[0] if from_original else None
        assert (got["status"], got["error"]) == ("ok", None)
        assert capture == expected["capture_time"], expected["path"]
        if not from_original:
            assert got["captured_at"] == expected["datetime_ifd0"], expected["path"]
        assert got["capture_subsec"] == expected["capture_time_subsec"], expected["path"]
        assert got["capture_offset"] == expected["capture_time_offset"], expected["path"]
        for ours, theirs in [("camera_make", "make"), ("camera_model", "model"), ("geohash", "geohash"),
                             ("orientation", "orientation"), ("width", "width"), ("height", "height"),
                             ("display_width", "display_width"), ("display_height", "display_height")]:
            assert got[ours] == expected[theirs], (expected["path"], ours)
        for ours, theirs in [("latitude", "lat"), ("longitude", "lon")]:
            assert (got[ours] is None) == (expected[theirs] is None), expected["path"]
            if expected[theirs] is not None:
                assert got[ours] == pytest.approx(expected[theirs], abs=1e-5), expected["path"]


def test_capture_time_carries_its_subseconds(corpus):
    record = corpus.files(path="Zoo 2019/DSCN1201.JPG")[0]
    assert analyze(corpus.real_path(record))["captured_at"] == "2019-07-14T10:15:03.120"


def test_every_file_gets_an_acceptable_status_checksum_and_reason(corpus):
    records = [r for r in corpus.manifest["files"] if corpus_kind(r) in ("image", "raw", "video")]
    frame = analyze_files([corpus.real_path(r) for r in records], [corpus_kind(r) for r in records])
    for record, row in zip(records, frame.iter_rows(named=True), strict=True):
        assert row["status"] in record["acceptable_status"], (record["path"], row["error"])
        assert row["checksum"] == record["sha256"], record["path"]
        assert (row["error"] is None) == (row["status"] == "ok"), record["path"]
        assert (row["thumbnail"] is not None) == (row["status"] == "ok"), record["path"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("_eingang/leer.jpg", "empty file"),
        ("_eingang/IMG_9999.jpg", "truncated"),
        ("_eingang/IMG_2041.jpg", "cannot identify image"),
        ("_eingang/panorama.png", "DecompressionBombError"),
    ],
)
def test_bad_inputs_are_errors_with_their_reason(corpus, path, reason):
    got = analyze(corpus.real_path(corpus.files(path=path)[0]))
    assert got["status"] == "error" and reason in got["error"]


def test_a_file_deleted_after_the_inventory_is_an_error_not_a_crash(tmp_path):
    got = analyze(os.fsencode(tmp_path / "gone.jpg"))
    assert got["status"] == "error" and "cannot read file" in got["error"]


def test_a_file_of_any_size_is_read_in_pieces_never_whole(tmp_path):
    def peak_of_analyzing(path: Path) -> tuple[str, int]:  # in a process of its own: its memory is this file's
        code = ("import resource, sys; from lumina_pipeline.analysis.photos import ANALYSIS_SCHEMA, analyze_file; "
                "row = dict(zip(ANALYSIS_SCHEMA, analyze_file(sys.argv[1].encode(), 'image'))); "
                "print(row['status'], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        status, kilobytes = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                                           check=True).stdout.split()
        return status, int(kilobytes)

    small, large = tmp_path / "photo.jpg", tmp_path / "photo with half a gigabyte after it.jpg"
    Image.new("RGB", (640, 480), "red").save(small)
    shutil.copy(small, large)
    os.truncate(large, 512 * 2**20)  # sparse: no disk is used
    (status, base), (large_status, peak) = peak_of_analyzing(small), peak_of_analyzing(large)
    assert (status, large_status) == ("ok", "ok") and peak - base < 2 * photos.IN_MEMORY_BYTES // 1024  # kB, not 512 MB


def test_a_jpeg_of_thousands_of_scans_is_refused_before_its_decode(tmp_path):
    photo = tmp_path / "scans.jpg"
    Image.new("RGB", (64, 48), "red").save(photo, progressive=True)
    data = photo.read_bytes()
    last_scan = data.rindex(photos.SCAN_MARKER)
    photo.write_bytes(data[:last_scan] + data[last_scan:-2] * 2000 + data[-2:])  # its last scan, 2,000 times
    scans = data.count(photos.SCAN_MARKER) + 1999
    status, error = analyze_file(os.fsencode(photo), "image")[:2]
    assert (status, error) == ("error", f"a JPEG of {scans} scans, over the 500 any encoder writes: not decoded")


def test_an_unreadable_file_is_an_error_not_a_crash():
    with tempfile.TemporaryDirectory() as folder:  # not below pytest's own folders, which only root may enter
        os.chmod(folder, 0o755)
        photo = Path(folder) / "locked.jpg"
        Image.new("RGB", (64, 48), "red").save(photo)
        photo.chmod(0)
        reader, writer = os.pipe()
        if (child := os.fork()) == 0:  # root reads any file: look as an unprivileged user
            if os.geteuid() == 0:
                os.setuid(65534)
            os.write(writer, repr((os.path.exists(photo), *analyze_file(os.fsencode(photo), "image")[:2])).encode())
            os._exit(0)
        os.waitpid(child, 0)
        assert os.read(reader, 1000).decode() == "(True, 'error', 'cannot read file: Permission denied')"


@pytest.mark.parametrize(
    ("path", "short_side"),
    [("Orientierung/landscape_6.jpg", range(450, 451)), ("Phone/2022/IMG_0001.HEIC", range(256, 512)),
     ("Misc/CIMG0017.JPG", range(256, 512)), ("Misc/mountains.avif", range(256, 512))],
)
def test_thumbnail_is_upright_with_a_short_side_of_at_least_256(corpus, path, short_side):
    got = analyze(corpus.real_path(corpus.files(path=path)[0]))
    thumbnail = Image.open(io.BytesIO(got["thumbnail"]))
    assert min(thumbnail.size) in short_side
    assert (thumbnail.width > thumbnail.height) == (got["display_width"] > got["display_height"])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_tiff_reports_its_size_and_turns_upright_as_a_jpeg_of_the_same_picture(tmp_path, orientation):
    """Pillow's TIFF plugin turns a TIFF upright itself and reports the turned size."""
    picture = Image.new("RGB", (600, 400), "darkred")
    ImageDraw.Draw(picture).rectangle((0, 0, 150, 100), fill="white")  # a corner shows any turn
    exif = Image.Exif()
    exif[0x0112] = orientation
    got = {}
    for suffix in ("jpg", "tif"):
        picture.save(tmp_path / f"shot.{suffix}", exif=exif)
        got[suffix] = analyze(os.fsencode(tmp_path / f"shot.{suffix}"))

    turned = orientation >= 5
    for suffix in ("jpg", "tif"):
        assert (got[suffix]["width"], got[suffix]["height"], got[suffix]["orientation"]) == (600, 400, orientation)
        assert (got[suffix]["display_width"], got[suffix]["display_height"]) == ((400, 600) if turned else (600, 400))
    assert got["tif"]["dhash"] == got["jpg"]["dhash"]


def test_raw_without_a_readable_preview_is_skipped_with_a_reason(tmp_path):
    raw = tmp_path / "IMG_0001.CR3"
    raw.write_bytes(b"\x00\x00\x00\x18ftypcrx " + bytes(64))
    got = analyze(os.fsencode(raw), "raw")
    assert got["status"] == "skipped" and "RAW" in got["error"] and got["checksum"]


def test_error_reasons_are_the_same_text_on_every_run(corpus, tmp_path):
    raw = tmp_path / "IMG_0001.CR3"  # Pillow's own message for an unknown format names a Python object
    raw.write_bytes(b"\x00\x00\x00\x18ftypcrx " + bytes(64))
    records = [corpus.files(path=bad["path"])[0] for bad in corpus.manifest["bad_inputs"]]
    readable = [r for r in records if corpus_kind(r) in ("image", "raw", "video")]
    paths = [corpus.real_path(r) for r in readable] + [os.fsencode(raw)]
    kinds = [corpus_kind(r) for r in readable] + ["raw"]

    first, second = (analyze_files(paths, kinds)["error"].to_list() for _ in range(2))

    assert first == second
    assert not [reason for reason in first if reason and " at 0x" in reason]
    assert "cannot decode image: UnidentifiedImageError: cannot identify image file" in first
    assert first[-1] == (
        "RAW file without a preview Pillow can read "
        "(cannot decode image: UnidentifiedImageError: cannot identify image file)"
    )


SIXTEEN_BIT_FILES = [("png", "I;16"), ("tif", "I;16"), ("tif", "I;16B"), ("tif", "I")]


@pytest.mark.parametrize(("suffix", "mode"), SIXTEEN_BIT_FILES)
def test_sixteen_bit_greyscale_is_scaled_to_eight_bits_not_clipped(tmp_path, suffix, mode):
    y, x = np.mgrid[0:300, 0:400]
    pixels = (x * 65535 // 399).astype(np.uint16)  # black to white, left to right
    pixels[60:160, 80:200] = 9000  # a dark block and a bright disc give the hashes some structure
    pixels[(y - 200) ** 2 + (x - 300) ** 2 < 50**2] = 60000
    stored = {"I": np.int32, "I;16": "<u2", "I;16B": ">u2"}[mode]  # Pillow's convert between these clips
    image = Image.frombytes(mode, (400, 300), pixels.astype(stored).tobytes())
    path = tmp_path / f"grey16.{suffix}"
    image.save(path)
    assert Image.open(path).mode == mode
    eight_bits = Image.fromarray((pixels >> 8).astype(np.uint8))  # the reference conversion

    got = analyze(os.fsencode(path))

    thumbnail = np.asarray(Image.open(io.BytesIO(got["thumbnail"])).convert("L"), dtype=np.float64)
    assert thumbnail.mean() == pytest.approx(np.asarray(eight_bits).mean(), abs=1)
    assert got["dhash"] == str(imagehash.dhash(eight_bits))
    assert got["ahash"] == str(imagehash.average_hash(eight_bits))
    assert got["whash"] == str(imagehash.whash(eight_bits))


FIFO_SCRIPT = """
import json, sys
from lumina_pipeline.analysis.photos import analyze_files
frame = analyze_files([path.encode() for path in sys.argv[1:]], ["image"] * (len(sys.argv) - 1))
print(json.dumps(frame.select("status", "error").rows()))
"""


def test_a_fifo_device_or_folder_in_place_of_a_photo_is_an_error_and_the_others_are_read(tmp_path):
    photo, fifo, folder = tmp_path / "photo.jpg", tmp_path / "swapped.jpg", tmp_path / "folder.jpg"
    Image.new("RGB", (64, 48), "red").save(photo)
    os.mkfifo(fifo)  # nobody ever writes to it: a plain open would wait for ever
    folder.mkdir()
    paths = [str(photo), str(fifo), os.devnull, str(folder), str(photo)]

    # in a process of its own, so that a batch that hangs fails the test instead of hanging the suite
    done = subprocess.run([sys.executable, "-c", FIFO_SCRIPT, *paths], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        ["ok", None],
        ["error", "not a regular file but a FIFO: not read"],
        ["error", "not a regular file but a character device: not read"],
        ["error", "not a regular file but a folder: not read"],
        ["ok", None],
    ]


def test_a_file_over_the_time_limit_is_abandoned_as_an_error_and_the_batch_goes_on(tmp_path):
    big = tmp_path / "big.png"
    Image.linear_gradient("L").resize((4000, 3000)).save(big)  # decoding takes far longer than a millisecond
    paths = [os.fsencode(big)] * 2

    frame = analyze_files(paths, ["image"] * 2, timeout_seconds=0.001)

    assert frame.select("status", "error").rows() == [
        ("error", "not read and decoded within 0.001 s (file_timeout_seconds): abandoned")
    ] * 2


def test_after_a_file_hangs_the_next_files_are_read_by_a_new_thread(tmp_path, monkeypatch):
    hung, photo = tmp_path / "on-a-hung-share.jpg", tmp_path / "photo.jpg"
    for path in (hung, photo):
        Image.new("RGB", (64, 48), "red").save(path)
    released = threading.Event()
    read = photos.analyze_file

    def blocking_on_the_share(path, *args, **kwargs):  # as a read() of a share that stopped answering
        if path == os.fsencode(hung):
            released.wait(30)
        return read(path, *args, **kwargs)

    monkeypatch.setattr(photos, "analyze_file", blocking_on_the_share)
    try:
        frame = analyze_files([os.fsencode(hung), os.fsencode(photo), os.fsencode(photo)], ["image"] * 3,
                              timeout_seconds=2)  # ample for the photo, even on a loaded machine
    finally:
        released.set()

    assert frame.select("status", "error").rows() == [
        ("error", "not read and decoded within 2 s (file_timeout_seconds): abandoned"), ("ok", None), ("ok", None)
    ]


def test_a_file_that_changed_since_the_inventory_stays_pending(tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), "red").save(photo)
    info = photo.stat()

    as_listed = analyze(os.fsencode(photo), recorded=(info.st_size, info.st_mtime_ns))
    changed = analyze(os.fsencode(photo), recorded=(info.st_size - 1, info.st_mtime_ns))
    touched = analyze(os.fsencode(photo), recorded=(info.st_size, info.st_mtime_ns - 1))

    assert as_listed["status"] == "ok"
    for got in (changed, touched):
        assert (got["status"], got["checksum"]) == ("pending", None)
        assert got["error"] == "changed since the inventory listed it; it will be read again"


def test_a_medium_format_photo_is_read_without_a_decompression_bomb_warning(tmp_path):
    photo = tmp_path / "DSCF0001.JPG"  # the size of a 102-megapixel camera's JPEG
    Image.new("L", (11648, 8736), 100).save(photo, quality=50)

    with warnings.catch_warnings(record=True) as caught:
        got = analyze(os.fsencode(photo))

    assert (got["status"], got["width"], got["height"]) == ("ok", 11648, 8736)
    assert [str(warning.message) for warning in caught] == []


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns above the limit too
def test_an_image_over_the_pixel_limit_is_an_error_with_the_limit_named(tmp_path):
    panorama = tmp_path / "panorama.png"  # 126 megapixels: over the limit, under Pillow's refusal
    image = Image.new("L", (12000, 10500), 90)  # mostly flat: a small file
    ImageDraw.Draw(image).ellipse((2000, 2000, 9000, 8000), fill=200)
    image.save(panorama)

    got = analyze(os.fsencode(panorama))

    assert (got["status"], got["thumbnail"]) == ("error", None)
    assert got["error"] == (
        "image too large: 12000 x 10500 pixels (126.0 megapixels) is over the limit of 120 megapixels (max_megapixels)"
    )


TOO_LARGE = "image too large: 2400 x 1600 pixels (3.8 megapixels) is over the limit of 1 megapixels (max_megapixels)"


@pytest.mark.parametrize(
    ("name", "options", "error"),
    [("baseline.jpg", {}, None), ("progressive.jpg", {"progressive": True}, TOO_LARGE), ("photo.png", {}, TOO_LARGE)],
)
def test_only_baseline_jpegs_count_at_their_reduced_size_against_the_limit(tmp_path, name, options, error):
    path = tmp_path / name
    Image.linear_gradient("L").resize((2400, 1600)).convert("RGB").save(path, **options)

    got = analyze(os.fsencode(path), max_pixels=1_000_000)  # a baseline JPEG decodes at 1/4 scale: 0.24 megapixels

    assert (got["status"], got["error"]) == ("ok" if error is None else "error", error)


def test_exact_copies_are_each_read_but_decoded_once_to_the_same_row(corpus, monkeypatch):
    records = corpus.files()
    copies = {r["sha256"] for r in records if sum(o["sha256"] == r["sha256"] for o in records) > 1}
    batch = sorted((r for r in records if r["sha256"] in copies), key=lambda r: r["path"])
    assert {r["format"] for r in batch} >= {"HEIF", "MOV", "JPEG"}  # photos and a Live Photo's video
    decodes = []

    def counted(decode):
        def counting(*args, **kwargs):
            decodes.append(decode)
            return decode(*args, **kwargs)
        return counting

    monkeypatch.setattr(photos, "decode_photo", counted(photos.decode_photo))
    monkeypatch.setattr(videos, "decode_video", counted(videos.decode_video))

    frame = analyze_files([corpus.real_path(r) for r in batch], [corpus_kind(r) for r in batch], model_inputs=True)

    assert len(decodes) == len(copies) < len(batch)
    rows = {}
    for record, row in zip(batch, frame.iter_rows(named=True), strict=True):
        assert row["checksum"] == record["sha256"]
        assert rows.setdefault(record["sha256"], row) == row  # a copy's row is its first copy's, column for column


def test_a_photo_dated_after_2262_is_listed_and_read_with_the_last_date_the_catalog_holds(tmp_path):
    photo = tmp_path / "2024" / "scan.jpg"  # below a folder, and alone at the top: both fingerprints stat it
    photo.parent.mkdir()
    Image.new("RGB", (64, 48), (200, 80, 30)).save(photo)
    shutil.copy(photo, tmp_path / "top.jpg")
    for path in (photo, tmp_path / "top.jpg"):
        os.utime(path, ns=(0, 10_413_792_000 * 10**9))  # 2300-01-01, from a card's garbage timestamp
    walk = walk_sources([str(tmp_path)])

    listed = dict(zip(walk.files["path"], walk.files["mtime_ns"], strict=True))
    assert listed == {b"2024/scan.jpg": 2**63 - 1, b"top.jpg": 2**63 - 1}
    assert fingerprint([str(tmp_path)], start=None, budget_seconds=60).digest == inventory_digest(walk.files)
    assert analyze(os.fsencode(photo), recorded=(photo.stat().st_size, 2**63 - 1))["status"] == "ok"
