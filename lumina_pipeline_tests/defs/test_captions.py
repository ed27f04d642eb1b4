"""`captions` on a copy of the corpus, asking the stand-in Ollama server through the real
`ollama` client: captions and tags written, copies and re-runs never asked twice, another
model asks again, failures retried or recorded per photo, a clean skip without a server."""

import hashlib
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.captions import CAPTION_SCHEMA, PROMPT
from lumina_pipeline.analysis.files import display_path
from lumina_pipeline.defs.assets.captions import OLLAMA_POOL, captions
from lumina_pipeline.defs.jobs import batch_job
from lumina_pipeline.defs.resources import Embedder, OllamaVision, SentenceModel
from lumina_pipeline.defs.schedules import nightly_captions_schedule
from lumina_pipeline.defs.sensors import captions_after_batch_sensor
from lumina_pipeline.sample import draw_scene
from lumina_pipeline.search import SearchModels, search_text
from lumina_pipeline.storage.catalogs import remove_catalog
from lumina_pipeline_tests.ollama_server import MALFORMED, SERVER_ERROR, TIMEOUT, StandInOllama

CATALOG = "captioned"
LIGHTHOUSE = "Reisen/Leuchtturm 🌅 Abend.jpg"
LIGHTHOUSE_CAPTION = {"description": "A red and white lighthouse  at dusk above a calm sea.",
                      "tags": ["Lighthouse", "sea", "Beacon", "dusk", "sea"]}
MOTORCYCLE = "Alte Kameras/Canon_DIGITAL_IXUS_400.jpg"  # no ImageNet label of it means a cake
BIRTHDAY_CAPTION = {"description": "Grandma blowing out the candles on her birthday cake in the kitchen.",
                    "tags": ["birthday cake", "candles", "grandmother", "kitchen"]}
MODELS = {"moondream:latest", "llava:13b", "flaky:latest", "nightly:latest"}
# Long enough for the stand-in to answer on a loaded machine, short enough to wait for a few times.
TIMEOUT_SECONDS = 1.5


@pytest.fixture(scope="module")
def embedder(model_cache) -> Embedder:
    return Embedder(cache_dir=model_cache)  # caption tags combine with the real model's labels, search uses them


@pytest.fixture(scope="module")
def analyzed(corpus_pipeline):
    pipeline, _ = corpus_pipeline
    pipeline.analyze(CATALOG, "00000")
    return pipeline


@pytest.fixture(scope="module")
def ollama():
    with StandInOllama(models=set(MODELS), hang_seconds=TIMEOUT_SECONDS + 0.5) as server:
        yield server


def vision(server: StandInOllama, model: str = "moondream") -> OllamaVision:
    return OllamaVision(url=server.url, model=model, timeout_seconds=TIMEOUT_SECONDS, retries=2, backoff_seconds=0.01)


def caption(pipeline, resource: OllamaVision, catalog: str = CATALOG, raise_on_error: bool = True):
    key = dg.MultiPartitionKey({"catalog": catalog, "batch": "00000"})
    sentences = SentenceModel(cache_dir=pipeline.resources["embedder"].cache_dir)
    return dg.materialize(
        [captions], partition_key=key, instance=pipeline.instance, raise_on_error=raise_on_error,
        resources={**pipeline.resources, "vision": resource, "sentences": sentences},
    )


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    [materialization] = result.asset_materializations_for_node("captions")
    return {key: value.value for key, value in materialization.metadata.items()}


def thumbnail_keys(pipeline, catalog: str = CATALOG) -> dict[str, str]:
    """Path -> SHA-256 of the photo's thumbnail: what the stand-in keys its answers by."""
    root = Path(pipeline.resources["thumbnails"].root)
    return {
        display_path(bytes(row["path"]))[0]: hashlib.sha256((root / row["thumbnail_path"]).read_bytes()).hexdigest()
        for row in pipeline.rows(catalog, "path, thumbnail_path")
        if row["thumbnail_path"]
    }


def descriptions(pipeline, catalog: str = CATALOG) -> dict[str, str | None]:
    return {display_path(bytes(r["path"]))[0]: r["description"]
            for r in pipeline.rows(catalog, "path, description, status") if r["status"] == "ok"}


def tags_of(pipeline, path: str, catalog: str = CATALOG) -> dict[str, tuple]:
    with pipeline.engine.connect() as connection:
        rows = connection.execute(text("""
            SELECT t.name, it.source, it.confidence, it.source_confidences FROM image_tags it
            JOIN tags t ON t.id = it.tag_id JOIN images i ON i.id = it.image_id
            WHERE i.path = :p AND i.catalog_id = :c"""),
            {"p": path.encode(), "c": pipeline.catalog_id(catalog)})
        return {name: (source, confidence, confidences) for name, source, confidence, confidences in rows}


def stored_captions(pipeline, model: str) -> list[dict]:
    with pipeline.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM captions WHERE model = :m"), {"m": model})
        return [dict(row._mapping) for row in rows]


@pytest.fixture(scope="module")
def captioned(analyzed, ollama):
    """The corpus captioned once by `moondream`, a person's tag set on the lighthouse first."""
    keys = thumbnail_keys(analyzed)
    ollama.captions[keys[LIGHTHOUSE]] = LIGHTHOUSE_CAPTION
    ollama.captions[keys[MOTORCYCLE]] = BIRTHDAY_CAPTION
    with analyzed.engine.begin() as connection:
        connection.execute(
            text("""
            INSERT INTO tags (catalog_id, name, category) VALUES (:c, 'sea', 'manual') ON CONFLICT DO NOTHING;
            INSERT INTO image_tags (image_id, tag_id, source) SELECT i.id, t.id, 'manual' FROM images i
            JOIN tags t ON t.catalog_id = i.catalog_id AND t.name = 'sea' WHERE i.path = :p AND i.catalog_id = :c"""),
            {"c": analyzed.catalog_id(CATALOG), "p": LIGHTHOUSE.encode()},
        )
    before = len(ollama.requests)
    result = metadata(caption(analyzed, vision(ollama)))
    return analyzed, result, ollama.requests[before:], keys


def test_without_an_ollama_url_the_asset_skips_and_changes_nothing(analyzed, ollama):
    before = state(analyzed, ollama)

    result = metadata(caption(analyzed, OllamaVision()))

    assert result["skipped"] is True and "LUMINA_OLLAMA_URL" in result["reason"]
    assert state(analyzed, ollama) == before


def state(pipeline, server: StandInOllama) -> tuple:
    with pipeline.engine.connect() as connection:
        tables = connection.execute(text("SELECT (SELECT count(*) FROM captions), (SELECT count(*) FROM image_tags)"))
        return len(server.requests), descriptions(pipeline), tables.one()


def test_every_photo_gets_a_caption_asked_once_per_content_with_its_thumbnail(captioned, corpus):
    pipeline, result, requests, keys = captioned
    videos = [corpus.files(path=path)[0] for path in corpus.manifest["expected_video_metadata"]]
    readable = corpus.files(expected_status="ok") + videos  # a video is captioned by its poster's thumbnail
    ok, contents = {r["path"] for r in readable}, {r["sha256"] for r in readable}
    assert len(requests) == len(contents) < len(ok)  # exact copies share one request
    assert {request.image for request in requests} == {keys[path] for path in ok}  # thumbnails, never the files
    assert all(request.format == CAPTION_SCHEMA and request.prompt == PROMPT for request in requests)
    assert result["photos_captioned"] == len(ok) and result["errors"] == 0 and result["model"] == "moondream"
    described = descriptions(pipeline)
    assert described[LIGHTHOUSE] == "A red and white lighthouse at dusk above a calm sea."
    assert all(described[path] for path in ok)
    previewed = [row.split(" | ") for row in result["preview"].splitlines()[2:]]  # photos by path, with their caption
    assert previewed and all(described[path.removeprefix("| ")] == caption for path, caption, _ in previewed)


def test_caption_tags_are_lowercase_combined_where_the_image_model_agrees_and_manual_tags_stay(captioned):
    pipeline = captioned[0]
    tags = tags_of(pipeline, LIGHTHOUSE)
    assert tags["lighthouse"][0] == "ollama" and tags["dusk"][0] == "ollama"
    source, confidence, confidences = tags["beacon"]  # EfficientNet's ImageNet label for this photo, too
    assert source == "combined" and confidence > 0.3
    assert confidences == {"model:efficientnet-lite0-imagenet": confidence, "ollama:moondream": None}
    assert tags["sea"][0] == "manual"  # set by a person before the caption said it


def test_search_finds_a_photo_by_its_captions_words_where_no_label_fits(captioned):
    pipeline = captioned[0]
    models = SearchModels(Path(pipeline.resources["embedder"].cache_dir))
    with Session(pipeline.engine) as session:
        results = search_text(session, CATALOG, "a birthday cake with candles", 3, models)
        lighthouse = search_text(session, CATALOG, "a red and white lighthouse", 3, models)

    assert results[0].path == MOTORCYCLE
    assert results[0].reason.startswith("description ") and "labels:" not in results[0].reason
    assert results[0].reason.endswith(": " + BIRTHDAY_CAPTION["description"])
    assert lighthouse[0].path == LIGHTHOUSE and "; labels: beacon" in lighthouse[0].reason  # both agree


def test_a_rerun_and_a_copy_in_another_catalog_ask_nothing(captioned, pipeline, corpus, tmp_path, ollama):
    analyzed, _, _, _ = captioned
    before = len(ollama.requests)
    again = metadata(caption(analyzed, vision(ollama)))
    assert again["contents_asked"] == again["descriptions_embedded"] == 0 and len(ollama.requests) == before
    folder = tmp_path / "copies"
    folder.mkdir()
    shutil.copy(corpus.photos / LIGHTHOUSE, folder / "lighthouse copy.jpg")
    pipeline.add_catalog("copies", str(folder))
    pipeline.catalog_everything("copies")

    copied = metadata(caption(pipeline, vision(ollama), catalog="copies"))

    assert copied["contents_asked"] == 0 and len(ollama.requests) == before
    assert descriptions(pipeline, "copies") == {
        "lighthouse copy.jpg": "A red and white lighthouse at dusk above a calm sea."
    }
    assert tags_of(pipeline, "lighthouse copy.jpg", "copies")["lighthouse"][0] == "ollama"


def test_another_model_captions_again_and_replaces_the_first_models_tags(captioned, ollama):
    pipeline, first, _, keys = captioned
    before = len(ollama.requests)

    other = metadata(caption(pipeline, vision(ollama, "llava:13b")))

    assert other["contents_asked"] == first["contents_asked"] == len(ollama.requests) - before
    assert {r.model for r in ollama.requests[before:]} == {"llava:13b"}
    some_photo = next(path for path in keys if path not in (LIGHTHOUSE, MOTORCYCLE))  # captioned by default
    assert descriptions(pipeline)[some_photo].endswith("as llava:13b sees it.")
    tags = tags_of(pipeline, some_photo)
    assert "seen by llava" in tags and "seen by moondream" not in tags
    assert tags["photo"][2] == {"ollama:llava:13b": None}
    back = metadata(caption(pipeline, vision(ollama)))  # the first model's captions are still kept
    assert back["contents_asked"] == 0 and descriptions(pipeline)[some_photo].endswith("as moondream sees it.")


def test_failed_requests_are_retried_and_a_photo_that_keeps_failing_is_recorded_not_fatal(analyzed, ollama):
    keys = thumbnail_keys(analyzed)
    recovers, garbled, hangs = sorted(keys.values())[:3]
    ollama.failures[recovers] = [SERVER_ERROR, TIMEOUT]
    ollama.failures[garbled] = [MALFORMED] * 3
    ollama.failures[hangs] = [TIMEOUT] * 3
    before = len(ollama.requests)

    result = metadata(caption(analyzed, vision(ollama, "flaky")))

    asked = [r.image for r in ollama.requests[before:]]
    assert asked.count(recovers) == asked.count(garbled) == asked.count(hangs) == 3  # 1 + 2 retries each
    assert result["errors"] == 2 and result["requests"] == len(asked)
    stored = {row["checksum"]: row for row in stored_captions(analyzed, "flaky")}
    checksum_of = {keys[path]: row["checksum"] for path, row in _rows_by_path(analyzed).items() if path in keys}
    assert stored[checksum_of[recovers]]["description"] and stored[checksum_of[recovers]]["attempts"] == 3
    assert stored[checksum_of[garbled]]["description"] is None
    assert stored[checksum_of[garbled]]["error"].startswith("malformed JSON in the answer")
    assert stored[checksum_of[hangs]]["error"] == f"no answer within {TIMEOUT_SECONDS:g} s"
    failures = [row.split(" | ") for row in result["errors_preview"].splitlines()[2:]]  # named by a photo's path
    assert sorted(keys[path.removeprefix("| ")] for path, *_ in failures) == sorted([garbled, hangs])

    healed = metadata(caption(analyzed, vision(ollama, "flaky")))  # the next run asks for those two only

    assert healed["contents_asked"] == 2 and healed["errors"] == 0
    assert {r.image for r in ollama.requests[before + len(asked):]} == {garbled, hangs}


def _rows_by_path(pipeline) -> dict[str, dict]:
    return {display_path(bytes(r["path"]))[0]: r for r in pipeline.rows(CATALOG, "path, checksum")}


def test_a_model_that_is_not_pulled_fails_the_run_with_the_command_that_pulls_it(analyzed, ollama):
    before = len(ollama.requests)

    result = caption(analyzed, vision(ollama, "gemma3"), raise_on_error=False)

    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "`ollama pull gemma3`" in failure.step_failure_data.error.message
    assert len(ollama.requests) == before and stored_captions(analyzed, "gemma3") == []


def test_the_ollama_pool_keeps_two_catalogs_runs_to_one_request_at_a_time(pipeline, corpus, tmp_path, ollama):
    """Two run workers at once on one Dagster instance (PostgreSQL storage, as `lumina` sets
    up) whose pools allow one slot."""
    photos = [corpus.photos / r["path"] for r in corpus.files(expected_status="ok", format="JPEG")][:6]
    for name, chunk in (("pool-a", photos[:3]), ("pool-b", photos[3:])):
        (tmp_path / name).mkdir()
        for index, photo in enumerate(chunk):
            shutil.copy(photo, tmp_path / name / f"{index}.jpg")
        pipeline.add_catalog(name, str(tmp_path / name))
        pipeline.catalog_everything(name)
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {dagster_database(pipeline.engine)}\n"
        "concurrency:\n  pools:\n    default_limit: 1\n"
    )
    # Dagster creates a pool's limit on its first claim, and two first claims at once can both
    # get a slot; a deployment's first captions run creates it long before two runs meet.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default(OLLAMA_POOL)
    with StandInOllama(models={"slow:latest"}, delay_seconds=1.0) as slow:

        def worker(name: str) -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, "-m", "lumina_pipeline_tests.defs.captions_worker", str(home),
                 pipeline.resources["database"].url, pipeline.resources["thumbnails"].root,
                 pipeline.resources["embedder"].cache_dir, slow.url, "slow", name],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )

        # The second run starts while the first holds the slot and asks (three photos, a
        # second each): without the pool, their requests would overlap.
        workers = [worker("pool-a")]
        deadline = time.monotonic() + 120
        while not slow.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        workers.append(worker("pool-b"))
        outputs = [process.communicate(timeout=300)[0] for process in workers]
        assert [worker.returncode for worker in workers] == [0, 0], outputs
        assert len(slow.requests) == 6 and slow.most_at_once == 1


def dagster_database(engine) -> str:
    """A database of its own on the test server for a Dagster instance's storage."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if not connection.execute(text("SELECT 1 FROM pg_database WHERE datname = 'dagster_pool'")).scalar():
            connection.execute(text("CREATE DATABASE dagster_pool"))
    return engine.url.set(database="dagster_pool").render_as_string(hide_password=False)


@pytest.mark.parametrize("url", ["http://127.0.0.1:11434", ""])
def test_a_finished_batch_run_gets_its_captions_run_only_with_a_server(pipeline, corpus, tmp_path, url):
    (tmp_path / "two").mkdir()
    for index, record in enumerate(corpus.files(expected_status="ok", format="JPEG")[:2]):
        shutil.copy(corpus.photos / record["path"], tmp_path / "two" / f"{index}.jpg")
    pipeline.add_catalog("followed-by-captions", str(tmp_path / "two"))
    pipeline.inventory("followed-by-captions")
    definitions = dg.Definitions(assets=pipeline.assets, jobs=[batch_job], resources=pipeline.resources)
    key = dg.MultiPartitionKey({"catalog": "followed-by-captions", "batch": "00000"})
    batch = definitions.resolve_job_def(batch_job.name).execute_in_process(
        partition_key=key, instance=pipeline.instance
    )
    with dg.build_run_status_sensor_context(
        sensor_name=captions_after_batch_sensor.name, dagster_instance=pipeline.instance,
        dagster_run=batch.dagster_run, dagster_event=batch.get_run_success_event(),
        resources={"vision": OllamaVision(url=url)},
    ) as context:
        answer = captions_after_batch_sensor(context)

    if url:
        assert (answer.partition_key, answer.run_key) == (str(key), f"{batch.run_id}:captions")
    else:  # nothing: the sensor's tick goes on to the next run
        assert answer is None


def test_the_nightly_schedule_requests_the_batches_with_photos_still_to_caption(analyzed, ollama):
    def tonight(resource: OllamaVision) -> list:
        with dg.build_schedule_context(
            instance=analyzed.instance, scheduled_execution_time=datetime(2026, 12, 1, 3),
            resources={"database": analyzed.resources["database"], "vision": resource},
        ) as context:
            answer = nightly_captions_schedule(context)
        return answer if isinstance(answer, dg.SkipReason) else [r.partition_key for r in answer]

    ours = str(dg.MultiPartitionKey({"catalog": CATALOG, "batch": "00000"}))
    assert ours in tonight(vision(ollama, "nightly"))  # a model no photo has a caption from
    caption(analyzed, vision(ollama, "nightly"))
    assert ours not in tonight(vision(ollama, "nightly"))
    skipped = tonight(OllamaVision())
    assert isinstance(skipped, dg.SkipReason) and "LUMINA_OLLAMA_URL" in skipped.skip_message


def test_removing_a_catalog_forgets_the_captions_of_photos_only_it_held(analyzed, pipeline, corpus, tmp_path, ollama):
    caption(analyzed, vision(ollama))  # the corpus, lighthouse included, captioned by moondream
    (tmp_path / "own").mkdir()
    shutil.copy(corpus.photos / LIGHTHOUSE, tmp_path / "own" / "lighthouse.jpg")
    draw_scene(7).save(tmp_path / "own" / "only here.jpg", quality=90)
    pipeline.add_catalog("removed", str(tmp_path / "own"))
    pipeline.catalog_everything("removed")
    caption(pipeline, vision(ollama), catalog="removed")
    checksums = {display_path(bytes(r["path"]))[0]: r["checksum"] for r in pipeline.rows("removed", "path, checksum")}
    assert set(checksums.values()) <= {row["checksum"] for row in stored_captions(pipeline, "moondream")}

    with Session(pipeline.engine) as session, session.begin():
        remove_catalog(session, "removed")
    pipeline.catalogs.remove("removed")

    kept = {row["checksum"] for row in stored_captions(pipeline, "moondream")}
    assert checksums["lighthouse.jpg"] in kept and checksums["only here.jpg"] not in kept
