import io
import os

import pytest
from PIL import Image

from lumina_pipeline.analysis.files import classify
from lumina_pipeline.analysis.photos import ANALYSIS_SCHEMA, analyze_file, analyze_files

FIELDS = list(ANALYSIS_SCHEMA)


def analyze(path: bytes, kind: str = "image") -> dict:
    return dict(zip(FIELDS, analyze_file(path, kind)))


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
    for record, row in zip(records, frame.iter_rows(named=True)):
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


def test_an_unreadable_file_is_an_error_not_a_crash(tmp_path):
    photo = tmp_path / "locked.jpg"
    Image.new("RGB", (64, 48), "red").save(photo)
    photo.chmod(0)
    tmp_path.chmod(0o755)
    reader, writer = os.pipe()
    if (child := os.fork()) == 0:  # root reads any file: look as an unprivileged user
        if os.geteuid() == 0:
            os.setuid(65534)
        os.write(writer, repr(analyze_file(os.fsencode(photo), "image")[:2]).encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(reader, 1000).decode() == "('error', 'cannot read file: Permission denied')"


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


def test_raw_without_a_readable_preview_is_skipped_with_a_reason(tmp_path):
    raw = tmp_path / "IMG_0001.CR3"
    raw.write_bytes(b"\x00\x00\x00\x18ftypcrx " + bytes(64))
    got = analyze(os.fsencode(raw), "raw")
    assert got["status"] == "skipped" and "RAW" in got["error"] and got["checksum"]
