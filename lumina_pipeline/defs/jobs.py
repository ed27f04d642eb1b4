"""Jobs: the inventory of one catalog, the analysis of one (catalog, batch), the
catalog-wide grouping that follows them, the captions of one (catalog, batch) once it is
analyzed, and the nightly checksum verification.

The jobs' runs are tagged with their catalog, whoever launches them (UI, sensor, schedule,
backfill), so that the run queue's tag limits in dagster.yaml can allow one inventory and one
regrouping per catalog at a time and a bounded number of its batches (runs of the asset graph
carry no such tags). The queue is a courtesy; what keeps
the rows right is the catalog lock in the database (storage/catalogs.py), which holds for
runs launched by any means.
"""

from collections.abc import Callable

import dagster as dg

from lumina_pipeline.defs.assets.bursts import BurstsConfig, bursts
from lumina_pipeline.defs.assets.captions import captions
from lumina_pipeline.defs.assets.duplicates import DuplicatesConfig, duplicate_groups
from lumina_pipeline.defs.assets.images import photo_analysis
from lumina_pipeline.defs.assets.inventory import file_inventory
from lumina_pipeline.defs.assets.organize import organize_plan
from lumina_pipeline.defs.assets.stacks import StacksConfig, stacks
from lumina_pipeline.defs.assets.vectors import vector_index
from lumina_pipeline.defs.assets.verification import checksum_verification
from lumina_pipeline.defs.partitions import catalog_batches, catalogs
from lumina_pipeline.storage.groups import BURSTS, DUPLICATES, STACKS

INVENTORY_TAG = "lumina/inventory"  # value: catalog; dagster.yaml allows one run per value
BATCH_TAG = "lumina/batches"  # value: catalog; dagster.yaml bounds the runs per value
REGROUP_TAG = "lumina/regroup"  # value: catalog; dagster.yaml allows one run per value
CHANGE_TAG = "lumina/change"  # what a batch run belongs to: grouping follows once all are done
FOLLOWED_UP_BY_TAG = "lumina/followed_up_by"  # on `lumina run`'s runs: it regroups after them, no sensor


def batch_catalog(partition_key: str) -> str:
    return catalog_batches.get_partition_key_from_str(partition_key).keys_by_dimension["catalog"]


def _tagged(partitions: dg.PartitionsDefinition, tags: Callable[[str], dict[str, str]]) -> dg.PartitionedConfig:
    """A job's runs tagged by their partition key (the run queue's limits), with no config of their own."""
    return dg.PartitionedConfig(partitions, run_config_for_partition_key_fn=lambda key: {},
                                tags_for_partition_key_fn=tags)


inventory_job = dg.define_asset_job(
    "inventory_job",
    description="Walks a catalog's folders and records new, changed and deleted files (stat only)",
    selection=dg.AssetSelection.assets(file_inventory).without_checks(),
    config=_tagged(catalogs, lambda key: {INVENTORY_TAG: key}),
)
batch_job = dg.define_asset_job(
    "batch_job",
    description="Reads the new and changed files of one batch: checksum, metadata, hashes, thumbnail, vector",
    selection=dg.AssetSelection.assets(photo_analysis).without_checks(),
    config=_tagged(catalog_batches, lambda key: {BATCH_TAG: batch_catalog(key)}),
)


def reads_a_batch(run: dg.DagsterRun) -> bool:
    """Whether a run analyzed a (catalog, batch): a batch_job run, or one materializing the
    batch's assets from the asset graph (the UI's Materialize, an asset backfill)."""
    return run.job_name == batch_job.name or bool(photo_analysis.keys & (run.asset_selection or set()))


def batch_run(job_name: str, catalog: str, batch: str, run_key: str, change: str | None = None) -> dg.RunRequest:
    """A run of (catalog, batch); the runs of one `change` are regrouped once they all ended."""
    partition_key = dg.MultiPartitionKey({"catalog": catalog, "batch": batch})
    return dg.RunRequest(job_name=job_name, partition_key=partition_key, run_key=run_key,
                         tags={CHANGE_TAG: change} if change else None)


# The catalog-wide groupings, in their order: stacks say which files are one shot, bursts
# which shots are one moment, and duplicate groups compare what is left. Each with where it is
# stored and its settings when no config is given (as `lumina run` and the sensors launch it).
GROUPINGS = [
    (stacks, STACKS, StacksConfig()),
    (bursts, BURSTS, BurstsConfig()),
    (duplicate_groups, DUPLICATES, DuplicatesConfig()),
]
CATALOG_ASSETS = [asset for asset, _, _ in GROUPINGS]
catalog_job = dg.define_asset_job(
    "catalog_job",
    description="Regroups a catalog: stacks, bursts, duplicate groups, the organize plan and the vector index",
    # The plan follows each regrouping (it never applies); the vectors batches wrote join their
    # index. The groups' checks come along (checks.py), whether every photo is analyzed among them.
    selection=dg.AssetSelection.assets(*CATALOG_ASSETS, organize_plan, vector_index),
    config=_tagged(catalogs, lambda key: {REGROUP_TAG: key}),
)
# Its own job, not part of batch_job: a vision model takes seconds per photo where the analysis
# takes milliseconds, so batch runs (and the regrouping waiting for them) never wait on it.
captions_job = dg.define_asset_job(
    "captions_job", selection=[captions], description="Captions one batch's photos with a local Ollama vision model"
)
verification_job = dg.define_asset_job(
    "verification_job", selection=[checksum_verification],
    description="Re-reads the least recently verified files of each catalog against their checksums",
)

# For runs started from a terminal (`lumina run`, benchmarks): warnings and errors only.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
