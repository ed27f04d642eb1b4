"""Materialize the real assets against the embedded PostgreSQL, one partition at a time."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.defs.assets.bursts import bursts
from lumina_pipeline.defs.assets.duplicates import duplicate_groups
from lumina_pipeline.defs.assets.images import photo_analysis
from lumina_pipeline.defs.assets.inventory import file_inventory
from lumina_pipeline.defs.resources import CatalogDatabase, Embedder, ThumbnailStore
from lumina_pipeline.storage.catalogs import add_catalog, remove_catalog


class Pipeline:
    """A Dagster test instance plus the resources of one test, and a few one-line helpers."""

    def __init__(self, instance: dg.DagsterInstance, database_url: str, thumbnails: str, engine, models: str):
        self.instance, self.engine, self.catalogs = instance, engine, []
        self.resources = {
            "database": CatalogDatabase(url=database_url),
            "thumbnails": ThumbnailStore(root=thumbnails),
            "embedder": Embedder(cache_dir=models),
        }

    def add_catalog(self, name: str, folder: str, batch_size: int = 500) -> None:
        with Session(self.engine) as session, session.begin():
            add_catalog(session, name, [folder], batch_size)
        self.catalogs.append(name)
        self.instance.add_dynamic_partitions("catalogs", [name])

    def remove_catalogs(self) -> None:
        with Session(self.engine) as session, session.begin():
            for name in self.catalogs:
                remove_catalog(session, name)

    def inventory(self, catalog: str) -> dict:
        result = dg.materialize([file_inventory], partition_key=catalog, instance=self.instance, resources=self.resources)
        return _metadata(result, "file_inventory")

    def analyze(self, catalog: str, batch: str, asset: str = "metadata") -> dict:
        """Materialize `metadata`, `hashes` and `embeddings` of one batch; `asset`'s metadata."""
        key = dg.MultiPartitionKey({"catalog": catalog, "batch": batch})
        result = dg.materialize([photo_analysis], partition_key=key, instance=self.instance, resources=self.resources)
        return _metadata(result, "photo_analysis", asset)

    assets = (file_inventory, photo_analysis, duplicate_groups, bursts)

    def catalog_everything(self, catalog: str) -> tuple[dict, dict]:
        """Inventory, every batch to process, then duplicate groups and bursts."""
        for batch in self.inventory(catalog)["batches_to_process"]:
            self.analyze(catalog, batch)
        result = dg.materialize([duplicate_groups, bursts], partition_key=catalog, instance=self.instance, resources=self.resources)
        return _metadata(result, "duplicate_groups"), _metadata(result, "bursts")

    def rows(self, catalog: str, columns: str = "*") -> list[dict]:
        with self.engine.connect() as connection:
            query = f"SELECT {columns} FROM images WHERE catalog_id = (SELECT id FROM catalogs WHERE name = :n)"
            return [dict(row._mapping) for row in connection.execute(text(query), {"n": catalog})]


def _metadata(result: dg.ExecuteInProcessResult, node: str, asset: str | None = None) -> dict:
    assert result.success
    materializations = result.asset_materializations_for_node(node)
    materialization = next(m for m in materializations if asset in (None, m.asset_key.to_user_string()))
    return {key: value.value for key, value in materialization.metadata.items()}


@contextmanager
def pipeline_for_test(database_url: str, engine, model_cache: str, thumbnails: str) -> Iterator[Pipeline]:
    with dg.instance_for_test() as instance:
        pipeline = Pipeline(instance, database_url, thumbnails, engine, model_cache)
        yield pipeline
        pipeline.remove_catalogs()


@pytest.fixture
def pipeline(database_url, engine, model_cache, tmp_path):
    with pipeline_for_test(database_url, engine, model_cache, str(tmp_path / "thumbnails")) as pipeline:
        yield pipeline


@pytest.fixture(scope="module")
def corpus_pipeline(request, corpus, database_url, engine, model_cache, tmp_path_factory):
    """A pipeline of the test module's own, with the corpus copy added as the module's
    `CATALOG` and inventoried; yields it and the inventory's metadata."""
    thumbnails = str(tmp_path_factory.mktemp("thumbnails"))
    with pipeline_for_test(database_url, engine, model_cache, thumbnails) as pipeline:
        pipeline.add_catalog(request.module.CATALOG, str(corpus.photos))
        yield pipeline, pipeline.inventory(request.module.CATALOG)
