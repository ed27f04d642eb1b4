"""Asset checks: complete analysis, groups that point at live files, and bit rot."""

import dagster as dg

from lumina_pipeline.analysis.files import absolute_paths, display_path
from lumina_pipeline.analysis.verification import reverify
from lumina_pipeline.defs.assets.duplicates import duplicate_groups
from lumina_pipeline.defs.assets.inventory import file_inventory
from lumina_pipeline.defs.partitions import catalogs
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.catalogs import get_catalog, list_catalogs
from lumina_pipeline.storage.images import files_to_verify, mark_verified, orphaned_references, unfinished_images


class VerificationConfig(dg.Config):
    share_per_run: float = 1 / 30  # run nightly: every file is re-read about once a month


@dg.asset_check(asset=duplicate_groups, partitions_def=catalogs)
def every_photo_is_analyzed(context: dg.AssetCheckExecutionContext, database: CatalogDatabase) -> dg.AssetCheckResult:
    """Every `ok` photo of the catalog has its metadata and hashes; nothing waits unread."""
    with database.transaction() as session:
        counts = unfinished_images(session.connection(), get_catalog(session, context.partition_key).id)
    return dg.AssetCheckResult(
        passed=counts["incomplete"] == 0,
        severity=dg.AssetCheckSeverity.ERROR if counts["incomplete"] else dg.AssetCheckSeverity.WARN,
        metadata=counts,
    )


@dg.asset_check(asset=duplicate_groups, partitions_def=catalogs)
def groups_point_at_listed_files(context: dg.AssetCheckExecutionContext, database: CatalogDatabase) -> dg.AssetCheckResult:
    """No duplicate group member or burst frame is a file the inventory no longer lists."""
    with database.transaction() as session:
        orphans = orphaned_references(session.connection(), get_catalog(session, context.partition_key).id)
    return dg.AssetCheckResult(passed=orphans == 0, metadata={"orphaned_references": orphans})


@dg.asset_check(asset=file_inventory)
def checksums_unchanged(
    context: dg.AssetCheckExecutionContext, config: VerificationConfig, database: CatalogDatabase
) -> dg.AssetCheckResult:
    """Re-read the least recently verified share of every catalog: a file whose content
    changed while its size and mtime did not is reported, and its stored checksum is kept."""
    with database.transaction() as session:
        batches = [
            (catalog.name, files_to_verify(session.connection(), catalog.id, config.share_per_run))
            for catalog in list_catalogs(session)
        ]
    counts, corrupted = dict.fromkeys(("same", "edited", "corrupted", "unreadable"), 0), []
    for name, files in batches:
        outcome = reverify(
            absolute_paths(files["source_root"], files["path"]), files["size_bytes"], files["mtime_ns"], files["checksum"]
        )
        with database.transaction() as session:
            mark_verified(session.connection(), files["id"])
        for key in counts:
            counts[key] += int((outcome == key).sum())
        corrupted += [f"{name}: {display_path(path)[0]}" for path in files.filter(outcome == "corrupted")["path"]]
    return dg.AssetCheckResult(
        passed=not corrupted, metadata={**counts, "corrupted_files": dg.MetadataValue.json(corrupted[:100])}
    )
