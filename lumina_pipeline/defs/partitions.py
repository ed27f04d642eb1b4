"""Partitions: one key per catalog, batches as ordinals shared by all catalogs (DESIGN.md)."""

import uuid
import warnings

import dagster as dg
from sqlalchemy import Connection

from lumina_pipeline.storage.catalogs import batch_keys

# The names the instance stores the keys under (typed `str`, which a definition's `name` is not).
CATALOGS, BATCHES = "catalogs", "batches"
catalogs = dg.DynamicPartitionsDefinition(name=CATALOGS)
batches = dg.DynamicPartitionsDefinition(name=BATCHES)
catalog_batches = dg.MultiPartitionsDefinition({"catalog": catalogs, "batch": batches})

# A catalog-level asset reads every batch of its own catalog, never another catalog's.
# The mapping has been marked beta since Dagster 1.6 and is the documented way to do this.
with warnings.catch_warnings(action="ignore", category=dg.BetaWarning):
    by_catalog = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="catalog")


def unregistered_batches(instance: dg.DagsterInstance, connection: Connection, catalog_id: uuid.UUID) -> list[str]:
    """The catalog's batches that hold rows but are not yet `batches` partitions."""
    known = set(instance.get_dynamic_partitions(BATCHES))
    return [batch for batch in batch_keys(connection, catalog_id) if batch not in known]
