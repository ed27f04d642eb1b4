"""`organize_plan`: where `lumina organize` would put each file the catalog keeps, shown before
anything happens. It looks into the organized tree and never changes a file: applying is
`organize_job` or the CLI, always asked for."""

import os

import dagster as dg
import polars as pl

from lumina_pipeline.actions.organize import plan_catalog
from lumina_pipeline.analysis.organize import figures
from lumina_pipeline.defs.markdown import markdown_table
from lumina_pipeline.defs.partitions import catalogs
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.catalogs import get_catalog


@dg.asset(
    partitions_def=catalogs,
    deps=["stacks", "duplicate_groups"],
    kinds={"polars", "postgres"},
    group_name="catalog",
    code_version="organize-plan-v1",
)
def organize_plan(context: dg.AssetExecutionContext, database: CatalogDatabase) -> dg.MaterializeResult:
    """The catalog's organize plan in numbers: files and bytes to copy (or move), per year,
    undated (placed by their file time under undated/), renamed (their name was taken), already
    in place, left out (reviewed away, exact copies, not read); and a preview."""
    with database.transaction() as session:
        catalog = get_catalog(session, context.partition_key)
        if not catalog.organized_directory:
            return dg.MaterializeResult(metadata={"organized_directory": "none (lumina catalog organize)"})
        folder, move = catalog.organized_directory, catalog.organize_move
        planned = plan_catalog(session.connection(), catalog, move=move)
    into = os.fsencode(folder)
    head = planned.plan.sort("renamed", descending=True, maintain_order=True).head(10)  # the renamed ones first
    preview = pl.DataFrame({
        "file": head["source"],
        "to": [os.path.relpath(target, into) for target in head["target"]],
        "renamed": head["renamed"],
    })
    return dg.MaterializeResult(metadata={
        **figures(planned),
        "organized_directory": folder,
        "operation": "move" if move else "copy",
        "preview": markdown_table(preview),
    })
