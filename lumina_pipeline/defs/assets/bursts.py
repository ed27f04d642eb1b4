"""`bursts`: rapid sequences from one camera, and the best frame of each."""

import time

import dagster as dg

from lumina_pipeline.analysis.bursts import BurstRule, group_bursts
from lumina_pipeline.analysis.continuity import settle
from lumina_pipeline.defs.assets.regrouping import rule_settings, unchanged
from lumina_pipeline.defs.markdown import markdown_table
from lumina_pipeline.defs.partitions import by_catalog, catalogs
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.catalogs import get_catalog, lock_catalog
from lumina_pipeline.storage.groups import (
    BURSTS,
    input_digest,
    last_regrouping,
    load_catalog_rows,
    load_previous,
    replace,
)


class BurstsConfig(dg.Config):
    max_gap_seconds: float = 2.0
    min_shots: int = 3


@dg.asset(
    partitions_def=catalogs,
    deps=[dg.AssetDep("metadata", partition_mapping=by_catalog), "stacks"],
    kinds={"polars", "postgres"},
    group_name="catalog",
    code_version="bursts-v1",  # bump when the rule or the stored result changes
)
def bursts(context: dg.AssetExecutionContext, config: BurstsConfig, database: CatalogDatabase) -> dg.MaterializeResult:
    """Runs of at least three shots from one camera, each within two seconds of the last,
    numbered on their images, with the sharpest, best-exposed frame as the best."""
    started = time.perf_counter()
    with database.transaction() as session:
        connection = session.connection()
        catalog_id = get_catalog(session, context.partition_key).id
        lock_catalog(connection, catalog_id)  # people's decisions and other regroupings wait
        rows = load_catalog_rows(connection, catalog_id)
        read = input_digest(rows, BURSTS, rule_settings(context.assets_def, config))
        if (last := last_regrouping(connection, catalog_id, BURSTS)).get("read") == read:
            return unchanged(last, started)
        found = group_bursts(rows, BurstRule(config.max_gap_seconds, config.min_shots))
        settled = settle(found, load_previous(connection, catalog_id, BURSTS))
        figures = {"bursts": len(settled.groups), "frames_in_bursts": len(settled.members)}
        replace(connection, catalog_id, BURSTS, settled, read, figures)
    return dg.MaterializeResult(
        metadata={
            **figures,
            "elapsed_seconds": round(time.perf_counter() - started, 3),
            "preview": dg.MetadataValue.md(
                markdown_table(settled.groups.select("camera_model", "start_time", "image_count", "duration_seconds"))
            ),
        }
    )
