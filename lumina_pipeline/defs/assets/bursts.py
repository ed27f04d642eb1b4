"""`bursts`: rapid sequences from one camera, and the best frame of each."""

import dagster as dg
import polars as pl
from pydantic import Field

from lumina_pipeline.analysis.bursts import BurstRule, group_bursts
from lumina_pipeline.analysis.continuity import Settled
from lumina_pipeline.defs.assets.regrouping import regroup
from lumina_pipeline.defs.markdown import markdown_table
from lumina_pipeline.defs.partitions import by_catalog, catalogs
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.groups import BURSTS


class BurstsConfig(dg.Config):
    max_gap_seconds: float = Field(default=2.0, description="shots of one camera at most this far apart are one burst")
    min_shots: int = Field(default=3, description="the fewest shots a burst holds")


@dg.asset(
    partitions_def=catalogs,
    deps=[dg.AssetDep("metadata", partition_mapping=by_catalog), "stacks"],
    kinds={"polars", "postgres"},
    group_name="catalog",
    code_version="bursts-v4",  # bump when the rule or the stored result changes
)
def bursts(context: dg.AssetExecutionContext, config: BurstsConfig, database: CatalogDatabase) -> dg.MaterializeResult:
    """Runs of at least `min_shots` shots (default 3) from one camera, each within
    `max_gap_seconds` (default 2) of the last, numbered on their images, with the sharpest,
    best-exposed frame as the best."""
    rule = BurstRule(config.max_gap_seconds, config.min_shots)
    return regroup(context, config, database, BURSTS, lambda rows: group_bursts(rows, rule), _describe)


def _describe(settled: Settled, rows: pl.DataFrame) -> tuple[dict, dict]:
    preview = settled.groups.select("camera_model", "start_time", "image_count", "duration_seconds")
    figures = {"bursts": len(settled.groups), "frames_in_bursts": len(settled.members)}
    return figures, {"preview": markdown_table(preview)}
