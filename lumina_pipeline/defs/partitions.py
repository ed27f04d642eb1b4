"""Partitions: one key per catalog, batches as ordinals shared by all catalogs (DESIGN.md)."""

import dagster as dg

catalogs = dg.DynamicPartitionsDefinition(name="catalogs")
batches = dg.DynamicPartitionsDefinition(name="batches")
catalog_batches = dg.MultiPartitionsDefinition({"catalog": catalogs, "batch": batches})

# A catalog-level asset reads every batch of its own catalog, never another catalog's.
by_catalog = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="catalog")
