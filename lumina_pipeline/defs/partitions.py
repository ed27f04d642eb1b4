"""Partitions: one key per catalog, batches as ordinals shared by all catalogs (DESIGN.md)."""

import warnings

import dagster as dg

catalogs = dg.DynamicPartitionsDefinition(name="catalogs")
batches = dg.DynamicPartitionsDefinition(name="batches")
catalog_batches = dg.MultiPartitionsDefinition({"catalog": catalogs, "batch": batches})

# A catalog-level asset reads every batch of its own catalog, never another catalog's.
# The mapping has been marked beta since Dagster 1.6 and is the documented way to do this.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    by_catalog = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="catalog")
