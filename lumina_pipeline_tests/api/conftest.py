"""One catalog of the corpus copy, run through every asset, behind the API's app."""

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from lumina_pipeline.api.app import ApiSettings, create_app
from lumina_pipeline.defs.resources import Embedder
from lumina_pipeline_tests.defs.conftest import Pipeline, pipeline_for_test

CATALOG = "api"


@dataclass(frozen=True)
class Served:
    pipeline: Pipeline
    settings: ApiSettings
    client: TestClient

    def image_id(self, path: str) -> int:
        with self.pipeline.engine.connect() as connection:
            return connection.execute(
                text(
                    "SELECT id FROM images WHERE path = :p AND catalog_id = (SELECT id FROM catalogs WHERE name = :c)"
                ),
                {"p": path.encode(), "c": CATALOG},
            ).scalar_one()

    def query(self, sql: str, **params) -> list:
        with self.pipeline.engine.begin() as connection:
            result = connection.execute(text(sql), {"c": CATALOG, **params})
            return result.all() if result.returns_rows else []


@pytest.fixture(scope="package")
def served(corpus, database_url, engine, model_cache, tmp_path_factory) -> Served:
    thumbnails = str(tmp_path_factory.mktemp("api-thumbnails"))
    # the real image model: the API's search and similar photos are checked against it
    with pipeline_for_test(database_url, engine, Embedder(cache_dir=model_cache), thumbnails) as pipeline:
        pipeline.add_catalog(CATALOG, str(corpus.photos))
        pipeline.catalog_everything(CATALOG)
        settings = ApiSettings(database_url=database_url, thumbnail_dir=thumbnails, model_cache=model_cache)
        # A loopback name, as without a token the app answers no other (TestClient's is `testserver`).
        with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
            yield Served(pipeline, settings, client)
