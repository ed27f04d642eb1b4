"""`bursts`: rapid sequences from one camera, and the best frame of each."""

import time

import dagster as dg
import polars as pl

from lumina_pipeline.analysis.bursts import BurstRule, find_bursts, summarize_bursts
from lumina_pipeline.analysis.continuity import carry_over, with_decisions
from lumina_pipeline.defs.markdown import markdown_table
from lumina_pipeline.defs.partitions import by_catalog, catalogs
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.catalogs import get_catalog, lock_catalog
from lumina_pipeline.storage.groups import load_catalog_rows, load_previous_bursts, replace_bursts


class BurstsConfig(dg.Config):
    max_gap_seconds: float = 2.0
    min_shots: int = 3


@dg.asset(
    partitions_def=catalogs,
    deps=[dg.AssetDep("metadata", partition_mapping=by_catalog)],
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
        shots = load_catalog_rows(connection, catalog_id).filter(
            (pl.col("status") == "ok") & (pl.col("captured_at_source") == "DateTimeOriginal")
        )
        frames = find_bursts(shots, BurstRule(config.max_gap_seconds, config.min_shots))
        frames = frames.join(shots.select("id", "checksum", "camera_make", "camera_model"), on="id")
        carried = carry_over(frames.rename({"burst_key": "group_key"}), *load_previous_bursts(connection, catalog_id))
        decided = with_decisions(summarize_bursts(frames), carried, "best_id")
        replace_bursts(
            connection,
            catalog_id,
            decided.select(
                id="group_id", image_count="image_count", start_time="start_time", end_time="end_time",
                duration_seconds="duration_seconds", camera_make="camera_make", camera_model="camera_model",
                best_image_id="choice", reviewed="reviewed", best_chosen="chosen",
                selection_method=pl.when("chosen").then(pl.lit("user")).otherwise(pl.lit("quality_score")),
            ),
            frames.join(carried, left_on="burst_key", right_on="group_key").select(
                "id", burst_id="group_id", burst_sequence="sequence"
            ),
        )
    return dg.MaterializeResult(
        metadata={
            "bursts": len(decided),
            "frames_in_bursts": len(frames),
            "elapsed_seconds": round(time.perf_counter() - started, 3),
            "preview": dg.MetadataValue.md(
                markdown_table(decided.select("camera_model", "start_time", "image_count", "duration_seconds"))
            ),
        }
    )
