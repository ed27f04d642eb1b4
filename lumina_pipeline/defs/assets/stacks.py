"""`stacks`: shots stored as several files (RAW + JPEG, Live Photos, sidecars), grouped and reviewed as one."""

import dagster as dg
import polars as pl
from pydantic import Field

from lumina_pipeline.analysis.continuity import Settled
from lumina_pipeline.analysis.stacks import StackRule, find_stacks
from lumina_pipeline.defs.assets.regrouping import regroup
from lumina_pipeline.defs.markdown import markdown_table
from lumina_pipeline.defs.partitions import by_catalog, catalogs
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.groups import STACKS, readable_path


class StacksConfig(dg.Config):
    """See StackRule."""

    raw_seconds: float = Field(default=1.0, description=(
        "a RAW and the photo of its name are one shot when their capture times are this close (or either has none)"))
    live_seconds: float = Field(default=2.0, description=(
        "a clip is a Live Photo's when it starts this close to the still of its name, or both carry one Apple "
        "content identifier"))
    live_max_seconds: float = Field(default=5.0, description="... and is at most this long")


@dg.asset(
    partitions_def=catalogs,
    deps=[dg.AssetDep("metadata", partition_mapping=by_catalog)],
    kinds={"polars", "postgres"},
    group_name="catalog",
    code_version="stacks-v5",  # bump when the rule or the stored result changes
)
def stacks(context: dg.AssetExecutionContext, config: StacksConfig, database: CatalogDatabase) -> dg.MaterializeResult:
    """Files of one shot: a camera RAW and its JPEG/HEIC/TIFF twin, a Live Photo's still and
    video (same folder and name stem, close capture times), with their sidecars; a photo or
    video alone with its sidecars. The still a person looks at is the primary; duplicates and
    bursts then treat the stack as one shot."""
    rule = StackRule(config.raw_seconds, config.live_seconds, config.live_max_seconds)
    return regroup(context, config, database, STACKS, lambda rows: find_stacks(rows, rule), _describe)


def _describe(settled: Settled, rows: pl.DataFrame) -> tuple[dict, dict]:
    figures = {
        "stacks": len(settled.groups),
        **{f"{kind}_stacks": int(count) for kind, count in settled.groups["kind"].value_counts().iter_rows()},
        "files_in_stacks": len(settled.members),
    }
    paths = settled.members.join(rows.select("id", "path"), on="id").group_by("group_id").agg(
        files=pl.col("path").sort().map_elements(readable_path, return_dtype=pl.String).str.join(", ")
    )
    preview = settled.groups.join(paths, on="group_id").sort("files").head(10).select("kind", "files")
    return figures, {"preview": markdown_table(preview)}
