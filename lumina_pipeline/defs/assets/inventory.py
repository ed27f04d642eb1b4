"""`file_inventory`: what files each catalog holds, and which batch each belongs to."""

import time

import dagster as dg
import polars as pl

from lumina_pipeline.actions.runs import settle_put_back
from lumina_pipeline.analysis.files import APP_LIBRARY_LEFT_OUT, walk_sources
from lumina_pipeline.analysis.inventory import diff_inventory
from lumina_pipeline.defs.markdown import markdown_table
from lumina_pipeline.defs.partitions import BATCHES, catalogs, unregistered_batches
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.catalogs import (
    INVENTORY_LOCK_SPACE,
    MARKS_LOCK_SPACE,
    get_catalog,
    held_lock,
    lock_catalog,
)
from lumina_pipeline.storage.decisions import hand_over_deleted_files
from lumina_pipeline.storage.images import apply_inventory, load_inventory


@dg.asset(partitions_def=catalogs, kinds={"python", "postgres"}, group_name="inventory", code_version="inventory-v1")
def file_inventory(context: dg.AssetExecutionContext, database: CatalogDatabase) -> dg.MaterializeResult:
    """Every file under the catalog's folders, diffed against the last scan by (path, size, mtime).

    Reads no file content. New files fill the open batch, then new batches; changed files
    re-mark their own batch; files gone from disk are marked `deleted`, never dropped.
    """
    started = time.perf_counter()
    with database.transaction() as session:
        catalog = get_catalog(session, context.partition_key)
        catalog_id, folders, batch_size = catalog.id, catalog.source_directories, catalog.batch_size
    with held_lock(database.engine, INVENTORY_LOCK_SPACE, str(catalog_id)):  # inventories walk and write in turn
        walk = walk_sources(folders)
        with database.transaction() as session:  # diff against what the last inventory wrote, under its lock
            connection = session.connection()
            lock_catalog(connection, catalog_id)
            lock_catalog(connection, catalog_id, MARKS_LOCK_SPACE)  # before the rows: hand_over_deleted_files
            changes = diff_inventory(load_inventory(connection, catalog_id), walk, batch_size=batch_size)
            apply_inventory(connection, catalog_id, changes)
            put_back = settle_put_back(connection, catalog_id, changes.returned["id"].to_list())
            hand_over_deleted_files(connection, catalog_id)
    with database.transaction() as session:
        # from the database, not from this run's changes: a run killed before this line
        # left batches that only the next inventory can register
        new_batches = unregistered_batches(context.instance, session.connection(), catalog_id)
        context.instance.add_dynamic_partitions(BATCHES, new_batches)
    unlisted = [f"{root}/{folder.decode(errors='replace')}".rstrip("/") for root, folder in changes.unlisted]
    for folder in unlisted:
        context.log.warning(f"could not list {folder} (or it is empty: a drive not mounted?): its files are kept")
    libraries = [f"{root}/{folder.decode(errors='replace')}" for root, folder in walk.app_libraries]
    for library in libraries:
        context.log.warning(f"left out {library}: {APP_LIBRARY_LEFT_OUT}")
    return dg.MaterializeResult(
        metadata={
            "files": len(changes.files),
            "new": len(changes.new),
            "changed": len(changes.changed),
            "deleted": len(changes.deleted),
            "put_back_from_quarantine": put_back,
            "unchanged": changes.unchanged,
            "unlisted_folders": dg.MetadataValue.json(unlisted),
            "app_libraries_left_out": dg.MetadataValue.json(libraries),
            "hard_links_listed_once": changes.hard_links,
            "bytes": int(changes.files["size_bytes"].sum()),
            "batches_to_process": dg.MetadataValue.json(changes.batches_to_process()),
            "elapsed_seconds": round(time.perf_counter() - started, 3),
            "preview": _kinds_table(changes.new),
        }
    )


def _kinds_table(new: pl.DataFrame) -> dg.MarkdownMetadataValue:
    megabytes = (pl.col("size_bytes").sum() / 1e6).round(1)
    return markdown_table(new.group_by("kind").agg(new_files=pl.len(), MB=megabytes).sort("kind"))
