"""`metadata` and `hashes`: what one read of each new or changed file of a batch tells."""

import time

import dagster as dg
import polars as pl

from lumina_pipeline.analysis.files import absolute_paths, display_path
from lumina_pipeline.analysis.hashing import hash_version
from lumina_pipeline.analysis.photos import ANALYSIS_VERSION, analyze_files
from lumina_pipeline.defs.assets.inventory import file_inventory
from lumina_pipeline.defs.markdown import markdown_table
from lumina_pipeline.defs.partitions import by_catalog, catalog_batches
from lumina_pipeline.defs.resources import CatalogDatabase, ThumbnailStore
from lumina_pipeline.storage.catalogs import get_catalog
from lumina_pipeline.storage.images import pending_files, write_analysis

from_inventory = [dg.AssetDep(file_inventory, partition_mapping=by_catalog)]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "metadata",
            deps=from_inventory,
            kinds={"python", "postgres"},
            code_version=ANALYSIS_VERSION,
            description="SHA-256, EXIF (capture time, camera, lens, GPS, orientation), "
            "dimensions and quality score of each file in the batch.",
        ),
        dg.AssetSpec(
            "hashes",
            deps=from_inventory,
            kinds={"python", "postgres"},
            code_version=ANALYSIS_VERSION,
            description="dhash, ahash and whash (imagehash definitions) and a thumbnail of each photo.",
        ),
    ],
    partitions_def=catalog_batches,
    group_name="images",
)
def photo_analysis(context: dg.AssetExecutionContext, database: CatalogDatabase, thumbnails: ThumbnailStore):
    """Read each new or changed file of the batch once and decode it once, for both assets."""
    started = time.perf_counter()
    keys = context.partition_key.keys_by_dimension
    with database.transaction() as session:
        catalog_id = get_catalog(session, keys["catalog"]).id
        pending = pending_files(session.connection(), catalog_id, keys["batch"], ANALYSIS_VERSION)
    analysis = analyze_files(absolute_paths(pending["source_root"], pending["path"]), pending["kind"])
    saved = thumbnails.save_all(keys["catalog"], analysis["checksum"], analysis["thumbnail"])
    rows = analysis.drop("thumbnail").with_columns(id=pending["id"], thumbnail_path=pl.Series(saved, dtype=pl.String))
    with database.transaction() as session:
        write_analysis(session.connection(), rows, hash_version(), ANALYSIS_VERSION)
    elapsed = time.perf_counter() - started
    counts = {status: int((analysis["status"] == status).sum()) for status in ("ok", "error", "skipped")}
    common = {
        "files_read": len(analysis),
        **counts,
        "elapsed_seconds": round(elapsed, 3),
        "files_per_second": round(len(analysis) / elapsed, 1) if elapsed else 0.0,
    }
    preview = rows.head(10).with_columns(path=pl.Series([display_path(p)[0] for p in pending["path"].head(10)]))
    yield dg.MaterializeResult(
        asset_key="metadata",
        metadata={
            **common,
            "bytes_read": int(pending["size_bytes"].sum()),
            "preview": dg.MetadataValue.md(
                markdown_table(preview.select("path", "status", "camera_model", "captured_at", "quality_score", "error"))
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key="hashes",
        metadata={
            **common,
            "hashed": int(analysis["dhash"].is_not_null().sum()),
            "hash_version": hash_version(),
            "preview": dg.MetadataValue.md(markdown_table(preview.select("path", "dhash", "ahash", "whash"))),
        },
    )

