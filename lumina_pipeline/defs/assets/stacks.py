"""`stacks`: shots stored as several files (RAW + JPEG, Live Photos), grouped and reviewed as one."""

import time

import dagster as dg
import polars as pl

from lumina_pipeline.analysis.continuity import settle
from lumina_pipeline.analysis.stacks import StackRule, find_stacks
from lumina_pipeline.defs.assets.regrouping import rule_settings, unchanged
from lumina_pipeline.defs.markdown import markdown_table
from lumina_pipeline.defs.partitions import by_catalog, catalogs
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.catalogs import get_catalog, lock_catalog
from lumina_pipeline.storage.groups import (
    STACKS,
    input_digest,
    last_regrouping,
    load_catalog_rows,
    load_previous,
    readable_path,
    replace,
)


class StacksConfig(dg.Config):
    """See StackRule."""

    raw_seconds: float = 1.0
    live_seconds: float = 2.0
    live_max_seconds: float = 5.0


@dg.asset(
    partitions_def=catalogs,
    deps=[dg.AssetDep("metadata", partition_mapping=by_catalog)],
    kinds={"polars", "postgres"},
    group_name="catalog",
    code_version="stacks-v1",  # bump when the rule or the stored result changes
)
def stacks(context: dg.AssetExecutionContext, config: StacksConfig, database: CatalogDatabase) -> dg.MaterializeResult:
    """Files of one shot: a camera RAW and its JPEG/HEIC/TIFF twin, a Live Photo's still and
    video (same folder and name stem, close capture times), with their sidecars. The still a
    person looks at is the primary; duplicates and bursts then treat the stack as one shot."""
    started = time.perf_counter()
    with database.transaction() as session:
        connection = session.connection()
        catalog_id = get_catalog(session, context.partition_key).id
        lock_catalog(connection, catalog_id)  # people's decisions and other regroupings wait
        rows = load_catalog_rows(connection, catalog_id)
        read = input_digest(rows, STACKS, rule_settings(context.assets_def, config))
        if (last := last_regrouping(connection, catalog_id, STACKS)).get("read") == read:
            return unchanged(last, started)
        found = find_stacks(rows, StackRule(config.raw_seconds, config.live_seconds, config.live_max_seconds))
        settled = settle(found, load_previous(connection, catalog_id, STACKS))
        figures = {
            "stacks": len(settled.groups),
            **{f"{kind}_stacks": int(count) for kind, count in settled.groups["kind"].value_counts().iter_rows()},
            "files_in_stacks": len(settled.members),
        }
        replace(connection, catalog_id, STACKS, settled, read, figures)
    paths = settled.members.join(rows.select("id", "path"), on="id").group_by("group_id").agg(
        files=pl.col("path").sort().map_elements(readable_path, return_dtype=pl.String).str.join(", ")
    )
    preview = settled.groups.join(paths, on="group_id").sort("files").head(10).select("kind", "files")
    return dg.MaterializeResult(
        metadata={
            **figures,
            "elapsed_seconds": round(time.perf_counter() - started, 3),
            "preview": dg.MetadataValue.md(markdown_table(preview)),
        }
    )
