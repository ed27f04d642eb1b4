"""Captions through the API: images filtered by tag source, the description on every image,
and text search that finds a photo by its caption. A catalog of its own, captioned by the
stand-in Ollama server, beside the package's corpus catalog."""

import hashlib
import shutil
from pathlib import Path

import dagster as dg
import pytest

from lumina_pipeline.defs.assets.captions import captions
from lumina_pipeline.defs.resources import OllamaVision, SentenceModel
from lumina_pipeline_tests.ollama_server import StandInOllama

CATALOG = "api-captions"
# Captions are kept by content for every catalog, and other modules caption these corpus
# photos too: a model of this module's own keeps its answers its own.
MODEL = "llava:7b"
PHOTOS = {  # file name here: what the stand-in says it shows
    "lighthouse.jpg": ("Reisen/Leuchtturm 🌅 Abend.jpg",
                       {"description": "A red and white lighthouse at dusk.", "tags": ["lighthouse", "beacon"]}),
    "party.jpg": ("Alte Kameras/Canon_DIGITAL_IXUS_400.jpg",
                  {"description": "Grandma blowing out the candles on her birthday cake.", "tags": ["birthday cake"]}),
}


@pytest.fixture(scope="module")
def captioned(served, corpus, tmp_path_factory):
    pipeline = served.pipeline
    folder = tmp_path_factory.mktemp("api-captions")
    for name, (original, _) in PHOTOS.items():
        shutil.copy(corpus.photos / original, folder / name)
    pipeline.add_catalog(CATALOG, str(folder))
    pipeline.catalog_everything(CATALOG)
    root = Path(pipeline.resources["thumbnails"].root)
    with StandInOllama(models={MODEL}) as server:
        for row in pipeline.rows(CATALOG, "path, thumbnail_path"):
            server.captions[hashlib.sha256((root / row["thumbnail_path"]).read_bytes()).hexdigest()] = PHOTOS[
                bytes(row["path"]).decode()][1]
        resources = {**pipeline.resources, "vision": OllamaVision(url=server.url, model=MODEL),
                     "sentences": SentenceModel(cache_dir=pipeline.resources["embedder"].cache_dir)}
        key = dg.MultiPartitionKey({"catalog": CATALOG, "batch": "00000"})
        assert dg.materialize([captions], partition_key=key, instance=pipeline.instance, resources=resources).success
    return served


def paths(client, **filters) -> set[str]:
    page = client.get(f"/api/catalogs/{CATALOG}/images", params=filters)
    assert page.status_code == 200, page.text
    return {item["path"] for item in page.json()["items"]}


def test_images_filter_by_tag_source(captioned):
    client = captioned.client
    assert paths(client, tag="lighthouse", source="ollama") == {"lighthouse.jpg"}
    assert paths(client, tag="beacon", source="combined") == {"lighthouse.jpg"}  # EfficientNet says so too
    assert paths(client, tag="beacon", source="model") == set()
    assert paths(client, source="ollama") == set(PHOTOS)
    assert paths(client, tag="lighthouse") == {"lighthouse.jpg"}
    assert client.get(f"/api/catalogs/{CATALOG}/images", params={"source": "guess"}).status_code == 422


def test_every_image_shows_its_description(captioned):
    items = captioned.client.get(f"/api/catalogs/{CATALOG}/images").json()["items"]
    assert {item["path"]: item["description"] for item in items} == {
        name: caption["description"] for name, (_, caption) in PHOTOS.items()
    }
    detail = captioned.client.get(f"/api/images/{items[0]['id']}").json()
    assert detail["description"] == items[0]["description"]
    assert {tag["source"] for tag in detail["tags"]} >= {"ollama"}


def test_search_finds_a_photo_by_the_words_of_its_caption(captioned):
    results = captioned.client.get(f"/api/catalogs/{CATALOG}/search", params={"q": "a birthday cake with candles"})
    assert results.status_code == 200
    best = results.json()[0]
    assert best["path"] == "party.jpg" and best["reason"].startswith("description ")
