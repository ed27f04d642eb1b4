"""Asset checks: complete analysis, groups that point at live files, and bit rot.

Each check covers every catalog: per-partition checks are still a preview in Dagster, and
these are cheap aggregate queries (the bit-rot check reads only a share of the files).
"""

import dagster as dg

from lumina_pipeline.analysis.files import absolute_paths, display_path
from lumina_pipeline.analysis.verification import reverify
from lumina_pipeline.defs.assets.duplicates import duplicate_groups
from lumina_pipeline.defs.assets.inventory import file_inventory
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.catalogs import list_catalogs
from lumina_pipeline.storage.images import files_to_verify, mark_verified, orphaned_references, unfinished_images


class VerificationConfig(dg.Config):
    share_per_run: float = 1 / 30  # run nightly: every file is re-read about once a month


@dg.asset_check(asset=duplicate_groups)
def every_photo_is_analyzed(database: CatalogDatabase) -> dg.AssetCheckResult:
    """In every catalog, every `ok` photo has its metadata and hashes; nothing waits unread."""
    with database.transaction() as session:
        counts = {c.name: unfinished_images(session.connection(), c.id) for c in list_catalogs(session)}
    incomplete = sum(count["incomplete"] for count in counts.values())
    return dg.AssetCheckResult(
        passed=incomplete == 0 and not any(count["pending"] for count in counts.values()),
        severity=dg.AssetCheckSeverity.ERROR if incomplete else dg.AssetCheckSeverity.WARN,
        metadata={"by_catalog": dg.MetadataValue.json(counts)},
    )


@dg.asset_check(asset=duplicate_groups)
def groups_point_at_listed_files(database: CatalogDatabase) -> dg.AssetCheckResult:
    """No duplicate group member or burst frame is a file the inventory no longer lists."""
    with database.transaction() as session:
        orphans = {c.name: orphaned_references(session.connection(), c.id) for c in list_catalogs(session)}
    return dg.AssetCheckResult(passed=not any(orphans.values()), metadata={"by_catalog": dg.MetadataValue.json(orphans)})


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
