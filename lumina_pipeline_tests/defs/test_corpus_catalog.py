"""The whole corpus through `file_inventory`, `metadata` and `hashes`, checked against its manifest."""

import pytest
from sqlalchemy import text

from lumina_pipeline.analysis.files import classify, display_path
from lumina_pipeline.analysis.hashing import hamming_distance
from lumina_pipeline.analysis.photos import HASH_VERSION
from lumina_pipeline.storage.embeddings import embeddings_table
from lumina_pipeline_tests.defs.conftest import ProjectionModel

CATALOG = "corpus"


@pytest.fixture(scope="module")
def cataloged(corpus_pipeline):
    pipeline, inventory = corpus_pipeline
    return pipeline, inventory, pipeline.analyze(CATALOG, "00000")


def status_now(corpus, record: dict) -> str:
    """The manifest's expected status, but videos are decoded now (both are acceptable): the
    readable ones (`expected_video_metadata`) are ok, the placeholders errors."""
    if classify(record["path"].encode()) == "video":
        return "ok" if record["path"] in corpus.manifest["expected_video_metadata"] else "error"
    return record["expected_status"]


def rows_by_path(pipeline) -> dict[str, dict]:
    return {display_path(bytes(row["path"]))[0]: row for row in pipeline.rows(CATALOG)}


def test_inventory_and_analysis_report_what_they_did(cataloged, corpus):
    _, inventory, analysis = cataloged
    assert inventory["files"] == inventory["new"] == len(corpus.manifest["files"])
    assert inventory["batches_to_process"] == ["00000"]
    assert analysis["files_read"] == len(corpus.manifest["files"]) - 2  # .DS_Store and ._ file are not read
    read = [f for f in corpus.manifest["files"] if classify(f["path"].encode()) != "system"]
    assert analysis["error"] == sum(status_now(corpus, f) == "error" for f in read)
    assert analysis["skipped"] == sum(status_now(corpus, f) == "skipped" for f in read)
    previewed = [row.split(" | ")[0].removeprefix("| ") for row in analysis["preview"].splitlines()[2:]]
    assert len(previewed) == 10 and set(previewed) <= {f["path"] for f in read}  # paths as text


def test_every_file_is_listed_with_its_checksum_and_an_acceptable_status(cataloged, corpus):
    rows = rows_by_path(cataloged[0])
    for record in corpus.manifest["files"]:
        row = rows[record["path"]]
        assert row["status"] in record["acceptable_status"], record["path"]
        assert row["size_bytes"] == record["size"]
        if row["status"] not in ("ignored", "skipped") or row["kind"] == "video":
            assert row["checksum"] == record["sha256"], record["path"]
        assert (row["error"] is None) == (row["status"] == "ok"), record["path"]


def test_a_non_utf8_name_is_stored_byte_for_byte(cataloged, corpus):
    record = next(r for r in corpus.manifest["files"] if "path_hex" in r)
    row = rows_by_path(cataloged[0])[record["path"]]
    assert bytes(row["path"]).hex() == record["path_hex"] and row["status"] == "ok"


def test_stored_hashes_are_within_one_bit_of_the_reference_and_carry_their_version(cataloged, corpus):
    rows = rows_by_path(cataloged[0])
    for record in corpus.files(expected_status="ok"):
        row = rows[record["path"]]
        assert row["hash_version"] == HASH_VERSION
        for name, reference in record["reference_hashes"].items():
            assert hamming_distance(row[name], reference) <= 1, (record["path"], name)


def test_stored_metadata_matches_the_manifest(cataloged, corpus):
    rows = rows_by_path(cataloged[0])
    for expected in corpus.manifest["expected_metadata"]:
        row = rows[expected["path"]]
        metadata, dates = row["metadata"], row["dates"]
        assert metadata.get("camera_model") == expected["model"]
        assert metadata.get("display_width") == expected["display_width"]
        assert row["geohash_8"] == expected["geohash"]
        assert row["geohash_6"] == (expected["geohash"][:6] if expected["geohash"] else None)
        if expected["capture_time"]:
            assert dates["captured_at"].startswith(expected["capture_time"])
            assert dates["captured_at_source"] == "DateTimeOriginal"


def test_stored_videos_have_their_metadata_a_poster_and_a_vector(cataloged, corpus):
    pipeline = cataloged[0]
    rows = rows_by_path(pipeline)
    for path, expected in corpus.manifest["expected_video_metadata"].items():
        row = rows[path]
        assert (row["status"], row["kind"], row["error"]) == ("ok", "video", None), path
        metadata, dates = row["metadata"], row["dates"]
        assert metadata["duration_seconds"] == pytest.approx(expected["duration_seconds"], abs=0.1)
        assert (metadata["width"], metadata["height"]) == (expected["width"], expected["height"])
        assert metadata["latitude"] == pytest.approx(expected["latitude"], abs=0.001)
        assert metadata["video_codec"] == "h264" and metadata["format"] in ("MOV", "MP4")
        assert dates["captured_at"].startswith(expected["captured_at"][:16]) and dates["offset"]
        assert row["geohash_8"] and row["dhash"] and row["hash_version"] == HASH_VERSION and row["thumbnail_path"]
    live = rows["Phone/2022/IMG_0002.MOV"]
    assert live["metadata"]["content_identifier"] and live["metadata"]["camera_model"] == "iPhone 12"
    assert live["dates"]["captured_at_source"] == "com.apple.quicktime.creationdate"
    assert "duration_seconds" not in rows["Phone/2022/IMG_0002.HEIC"]["metadata"]
    # the poster's model input went the photos' way: a vector per readable video
    vectors = embeddings_table(ProjectionModel.model_id, ProjectionModel.dimensions)
    with pipeline.engine.connect() as connection:
        embedded = set(connection.execute(text(f"SELECT image_id FROM {vectors.name}")).scalars())
    assert {rows[path]["id"] for path in corpus.manifest["expected_video_metadata"]} <= embedded


def test_every_ok_photo_has_a_thumbnail_and_a_quality_score(cataloged):
    for row in cataloged[0].rows(CATALOG):
        if row["status"] == "ok":
            assert row["thumbnail_path"].endswith(f"{row['checksum']}.jpg")
            assert 0 <= row["quality_score"] <= 100


def test_materializing_the_batch_again_reads_nothing_and_changes_no_row(cataloged, corpus):
    pipeline = cataloged[0]
    before = pipeline.rows(CATALOG, "id, status, checksum, dhash, updated_at")
    again = pipeline.analyze(CATALOG, "00000")
    assert again["files_read"] == 0 and again["preview"] == "none"
    assert pipeline.rows(CATALOG, "id, status, checksum, dhash, updated_at") == before
    # what the UI shows as the latest materialization is still the batch's real state
    assert again["batch_files"] == len(corpus.manifest["files"])
    assert again["batch_ok"] == sum(row["status"] == "ok" for row in before) > 0


def test_a_run_killed_before_it_wrote_is_redone_with_one_row_per_file(cataloged, corpus):
    pipeline = cataloged[0]
    with pipeline.engine.begin() as connection:  # as if the last run died before its commit
        connection.execute(text("UPDATE images SET status = 'pending' WHERE kind = 'image'"))
    redone = pipeline.analyze(CATALOG, "00000")
    rows = pipeline.rows(CATALOG)
    assert redone["files_read"] == sum(row["kind"] == "image" for row in rows)
    assert len(rows) == len(corpus.manifest["files"])
    assert len({(row["source_root"], bytes(row["path"])) for row in rows}) == len(rows)
    assert sum(row["status"] == "ok" for row in rows) == sum(status_now(corpus, f) == "ok" for f in corpus.files())
