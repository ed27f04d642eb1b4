"""Materialize the real assets against the embedded PostgreSQL, one partition at a time."""

import dagster as dg
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.defs.assets.bursts import bursts
from lumina_pipeline.defs.assets.duplicates import duplicate_groups
from lumina_pipeline.defs.assets.images import photo_analysis
from lumina_pipeline.defs.assets.inventory import file_inventory
from lumina_pipeline.defs.resources import CatalogDatabase, ThumbnailStore
from lumina_pipeline.storage.catalogs import add_catalog, remove_catalog


class Pipeline:
    """A Dagster test instance plus the resources of one test, and a few one-line helpers."""

    def __init__(self, instance: dg.DagsterInstance, database_url: str, thumbnails: str, engine):
        self.instance, self.engine, self.catalogs = instance, engine, []
        self.resources = {"database": CatalogDatabase(url=database_url), "thumbnails": ThumbnailStore(root=thumbnails)}

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

    def analyze(self, catalog: str, batch: str) -> dict:
        key = dg.MultiPartitionKey({"catalog": catalog, "batch": batch})
        result = dg.materialize([photo_analysis], partition_key=key, instance=self.instance, resources=self.resources)
        return _metadata(result, "photo_analysis")

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


def _metadata(result: dg.ExecuteInProcessResult, node: str) -> dict:
    assert result.success
    materialization = result.asset_materializations_for_node(node)[0]
    return {key: value.value for key, value in materialization.metadata.items()}


@pytest.fixture
def pipeline(database_url, engine, tmp_path):
    with dg.instance_for_test() as instance:
        pipeline = Pipeline(instance, database_url, str(tmp_path / "thumbnails"), engine)
        yield pipeline
        pipeline.remove_catalogs()
