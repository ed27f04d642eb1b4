"""Materialize the real assets against the embedded PostgreSQL, one partition at a time."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import numpy as np
import pytest
from numpy.typing import NDArray
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.embedding import INPUT_SIZE, l2_normalize, softmax, top_labels, zero_shot_tags
from lumina_pipeline.defs.assets.images import photo_analysis
from lumina_pipeline.defs.assets.inventory import file_inventory
from lumina_pipeline.defs.jobs import CATALOG_ASSETS
from lumina_pipeline.defs.resources import CatalogDatabase, Embedder, ThumbnailStore
from lumina_pipeline.models import Labels, Tags
from lumina_pipeline.storage.catalogs import add_catalog, get_catalog, remove_catalog

COLOURS = ["red", "green", "blue", "grey"]  # ProjectionModel's labels


class ProjectionModel:
    """An `ImageModel` for tests that need vectors and tags but not what a photo shows: a fixed
    random projection of the 224 x 224 input to 8 dimensions and to the logits of 4 labels.
    Needs no torch and no ONNX export, and gives the same vectors in every run."""

    model_id = "projection-test"
    dimensions = 8
    labels: list[str] | None = COLOURS
    tag_source = "model"
    # about N(0, 1) logits for photos' centred pixels: some labels pass TAG_CONFIDENCE, some not
    _projection = np.random.default_rng(0).standard_normal((INPUT_SIZE * INPUT_SIZE * 3, 8 + 4), np.float32) / 100

    def embed(self, pixels: NDArray[np.uint8], batch_size: int) -> tuple[NDArray[np.float32], Labels]:
        centred = (pixels.reshape(len(pixels), INPUT_SIZE * INPUT_SIZE * 3) / 255 - 0.5).astype(np.float32)
        outputs = centred @ self._projection
        return l2_normalize(outputs[:, :8]), top_labels(softmax(outputs[:, 8:]), COLOURS)

    def tags(self, vectors: NDArray[np.float32], labels: Labels | None) -> Tags:
        return zero_shot_tags(labels or [])


class ProjectionEmbedder(Embedder):
    """The embedder resource bound to `ProjectionModel`."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._model = ProjectionModel()


class Pipeline:
    """A Dagster test instance plus the resources of one test, and a few one-line helpers."""

    def __init__(self, instance: dg.DagsterInstance, database_url: str, thumbnails: str, engine, embedder: Embedder):
        self.instance, self.engine, self.catalogs = instance, engine, []
        self.resources = {
            "database": CatalogDatabase(url=database_url),
            "thumbnails": ThumbnailStore(root=thumbnails),
            "embedder": embedder,
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
        return _metadata(self.materialize([file_inventory], catalog), "file_inventory")

    def analyze(self, catalog: str, batch: str, asset: str = "metadata") -> dict:
        """Materialize `metadata`, `hashes` and `embeddings` of one batch; `asset`'s metadata."""
        key = dg.MultiPartitionKey({"catalog": catalog, "batch": batch})
        return _metadata(self.materialize([photo_analysis], key), "photo_analysis", asset)

    def materialize(self, assets: list, key: str) -> dg.ExecuteInProcessResult:
        return dg.materialize(assets, partition_key=key, instance=self.instance, resources=self.resources)

    assets = (file_inventory, photo_analysis, *CATALOG_ASSETS)

    def catalog_everything(self, catalog: str, inventory: dict | None = None) -> tuple[dict, dict]:
        """Inventory (unless its metadata is given), every batch to process, then stacks, bursts
        and duplicate groups."""
        for batch in (inventory or self.inventory(catalog))["batches_to_process"]:
            self.analyze(catalog, batch)
        result = self.materialize(CATALOG_ASSETS, catalog)
        return _metadata(result, "duplicate_groups"), _metadata(result, "bursts")

    def catalog_id(self, catalog: str) -> uuid.UUID:
        with Session(self.engine) as session:
            return get_catalog(session, catalog).id

    def forget_groupings(self, catalog: str) -> None:
        """Have the next regrouping of `catalog` do its work though nothing it reads changed."""
        catalog_id = self.catalog_id(catalog)
        with self.engine.begin() as connection:
            connection.execute(text("UPDATE catalogs SET groupings = '{}' WHERE id = :c"), {"c": catalog_id})

    def rows(self, catalog: str, columns: str = "*") -> list[dict]:
        with self.engine.connect() as connection:
            query = f"SELECT {columns} FROM images WHERE catalog_id = :c"
            return [dict(row._mapping) for row in connection.execute(text(query), {"c": self.catalog_id(catalog)})]


def _metadata(result: dg.ExecuteInProcessResult, node: str, asset: str | None = None) -> dict:
    assert result.success
    materializations = result.asset_materializations_for_node(node)
    materialization = next(m for m in materializations if asset in (None, m.asset_key.to_user_string()))
    return {key: value.value for key, value in materialization.metadata.items()}


@contextmanager
def pipeline_for_test(database_url: str, engine, embedder: Embedder, thumbnails: str) -> Iterator[Pipeline]:
    # in memory: a test instance on disk opened an SQLite file for every event, a fifth of these tests' time
    with dg.DagsterInstance.ephemeral() as instance:
        pipeline = Pipeline(instance, database_url, thumbnails, engine, embedder)
        yield pipeline
        pipeline.remove_catalogs()


@pytest.fixture(scope="session")
def embedder(model_cache) -> Embedder:
    """The image model of `pipeline` and `corpus_pipeline`: `ProjectionModel`. A module whose
    tests check what the real model sees overrides this fixture with `Embedder`."""
    return ProjectionEmbedder(cache_dir=model_cache)


@pytest.fixture
def pipeline(database_url, engine, embedder, tmp_path):
    with pipeline_for_test(database_url, engine, embedder, str(tmp_path / "thumbnails")) as pipeline:
        yield pipeline


@pytest.fixture(scope="module")
def corpus_pipeline(request, corpus, database_url, engine, embedder, tmp_path_factory):
    """A pipeline of the test module's own, with the corpus copy added as the module's
    `CATALOG` and inventoried; yields it and the inventory's metadata."""
    thumbnails = str(tmp_path_factory.mktemp("thumbnails"))
    with pipeline_for_test(database_url, engine, embedder, thumbnails) as pipeline:
        pipeline.add_catalog(request.module.CATALOG, str(corpus.photos))
        yield pipeline, pipeline.inventory(request.module.CATALOG)
