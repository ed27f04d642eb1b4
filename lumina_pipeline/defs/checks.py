"""Asset checks: complete analysis and groups that point at live files. They only read;
the bit-rot check is part of `checksum_verification`, the asset that re-reads files.

Each check covers every catalog: per-partition checks are still a preview in Dagster, and
these are cheap aggregate queries.
"""

import dagster as dg

from lumina_pipeline.defs.assets.duplicates import duplicate_groups
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.groups import groups_holding_one_shot_twice
from lumina_pipeline.storage.images import orphaned_references, unfinished_images


# On the groups, not on `hashes`: asked as a regrouping ends, when every batch should be read,
# not by each batch run (from the asset graph, a check runs with its asset) while others wait
@dg.asset_check(asset=duplicate_groups)
def every_photo_is_analyzed(database: CatalogDatabase) -> dg.AssetCheckResult:
    """In every catalog, every `ok` photo has its metadata and hashes; nothing waits unread."""
    counts = database.by_catalog(unfinished_images)
    incomplete = sum(count["incomplete"] for count in counts.values())
    return dg.AssetCheckResult(
        passed=incomplete == 0 and not any(count["pending"] for count in counts.values()),
        severity=dg.AssetCheckSeverity.ERROR if incomplete else dg.AssetCheckSeverity.WARN,
        metadata={"by_catalog": dg.MetadataValue.json(counts)},
    )


@dg.asset_check(asset=duplicate_groups)
def groups_point_at_listed_files(database: CatalogDatabase) -> dg.AssetCheckResult:
    """No duplicate group member or burst frame is a file the inventory no longer lists."""
    orphans = database.by_catalog(orphaned_references)
    return dg.AssetCheckResult(
        passed=not any(orphans.values()), metadata={"by_catalog": dg.MetadataValue.json(orphans)}
    )


@dg.asset_check(asset=duplicate_groups)
def no_group_holds_one_shot_twice(database: CatalogDatabase) -> dg.AssetCheckResult:
    """No duplicate group holds two files of one stack: a RAW is never a duplicate of its own JPEG."""
    twice = database.by_catalog(groups_holding_one_shot_twice)
    return dg.AssetCheckResult(passed=not any(twice.values()), metadata={"by_catalog": dg.MetadataValue.json(twice)})
