"""Sensors: catalogs become partitions, changed folders get an inventory, an inventory gets
its batches, finished batches get one regrouping of their catalog, and each finished batch
gets its captions when an Ollama server is configured."""

import json
import time
from collections.abc import Callable
from typing import NamedTuple, cast

import dagster as dg
import polars as pl

from lumina_pipeline.analysis.fingerprint import Progress, fingerprint, inventory_digest
from lumina_pipeline.analysis.photos import ANALYSIS_VERSION
from lumina_pipeline.defs.actions import quarantine_job
from lumina_pipeline.defs.assets.inventory import file_inventory
from lumina_pipeline.defs.jobs import (
    CHANGE_TAG,
    FOLLOWED_UP_BY_TAG,
    batch_job,
    batch_run,
    captions_job,
    catalog_job,
    inventory_job,
    reads_a_batch,
)
from lumina_pipeline.defs.organize import organize_job
from lumina_pipeline.defs.partitions import CATALOGS, batches, catalog_batches, catalogs, unregistered_batches
from lumina_pipeline.defs.resources import CatalogDatabase, FolderWatch, OllamaVision
from lumina_pipeline.storage.catalogs import get_catalog, list_catalogs
from lumina_pipeline.storage.images import load_inventory, pending_batches

RUNNING = dg.DefaultSensorStatus.RUNNING
FAILED_BATCHES_TAG = "lumina/failed_batches"  # on a regrouping run: batches of its change whose runs failed
IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
ENDED_BADLY = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
RUN_KEY_TAG = "dagster/run_key"  # what Dagster tags a sensor's run with
BACKFILL_TAG = "dagster/backfill"  # ... and a backfill's runs: its id


@dg.sensor(minimum_interval_seconds=30, default_status=RUNNING,
           description="Keeps the catalogs partitions (and their batches) equal to the catalogs `lumina catalog` made")
def catalog_sensor(context: dg.SensorEvaluationContext, database: CatalogDatabase) -> dg.SensorResult:
    """Keep the `catalogs` partitions equal to the catalogs `lumina catalog` registered, and
    register every batch that holds rows (an inventory killed before registering its new
    batches would otherwise leave them unknown to Dagster for good)."""
    # Partitions first: `lumina catalog add` commits its row, then adds the partition, so one
    # seen here is in the rows read next, never deleted as a catalog that does not exist.
    known = set(context.instance.get_dynamic_partitions(CATALOGS))
    with database.transaction() as session:
        found = list_catalogs(session)
        names = {catalog.name for catalog in found}
        missing = {b for c in found for b in unregistered_batches(context.instance, session.connection(), c.id)}
    return dg.SensorResult(
        dynamic_partitions_requests=[
            catalogs.build_add_request(sorted(names - known)),
            catalogs.build_delete_request(sorted(known - names)),
            batches.build_add_request(sorted(missing)),
        ]
    )


@dg.sensor(job=inventory_job, minimum_interval_seconds=30, default_status=RUNNING,
           description="Inventories a catalog when its folders changed (names, sizes, mtimes; no file is opened)")
def folder_change_sensor(
    context: dg.SensorEvaluationContext, database: CatalogDatabase, folder_watch: FolderWatch
) -> dg.SensorResult:
    """Request a `file_inventory` run for each catalog whose folders changed. The cursor keeps
    one digest per catalog (names, sizes, mtimes; no file is opened, and no per-file state goes
    into the cursor Dagster stores with every tick) and how far a walk the tick's budget cut got.
    A catalog new to the cursor, or whose requested inventory failed, is compared with its stored
    inventory: a library `lumina run` has just cataloged starts no run when the daemon starts,
    and a failed change is asked for again."""
    state = json.loads(context.cursor or "{}")
    deadline = time.monotonic() + folder_watch.tick_budget_seconds
    with database.transaction() as session:
        current = {str(c.id): (c.name, list(c.source_directories)) for c in list_catalogs(session)}
    requests, cursor = [], {}
    for key, (name, folders) in current.items():  # by id: a catalog removed and added again is a new one
        entry = _once_its_inventory_ended(context.instance, state.get(key, {"changes": 0}))
        start = Progress(*entry.pop("partial"), done=False) if "partial" in entry else None
        progress = fingerprint(folders, start=start, budget_seconds=max(0.0, deadline - time.monotonic()))
        if not progress.done:
            cursor[key] = {**entry, "partial": [progress.digest, progress.next_unit]}
            continue
        digest = f"{progress.digest:016x}"
        if "digest" not in entry:  # a catalog seen for the first time starts from its last inventory
            entry["digest"] = f"{_inventoried_digest(database, name):016x}"
        if entry["digest"] != digest:
            run_key = f"{name}:{key}:{entry['changes'] + 1}:{digest}"  # a folder can return to an old state
            entry = {"digest": digest, "changes": entry["changes"] + 1, "requested": run_key}
            requests.append(dg.RunRequest(partition_key=name, run_key=run_key))
        cursor[key] = entry
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))


@dg.sensor(jobs=[batch_job, catalog_job], minimum_interval_seconds=15, default_status=RUNNING,
           description="After an inventory, reads the batches holding new or changed files (or regroups at once)")
def inventory_followup_sensor(context: dg.SensorEvaluationContext, database: CatalogDatabase) -> dg.SensorResult:
    """After a catalog's `file_inventory` materializations, run every batch of the catalog
    that still holds files to read, once, under the newest inventory's change: batches that
    earlier runs already read are skipped (after downtime, a queue of old inventories asks
    for nothing twice), and batches a failed run left behind are picked up again. A change
    with nothing to read (files deleted, sidecars added or changed: no batch reads those)
    regroups the catalog at once. A catalog whose newest inventory is `lumina run`'s is left to
    it: it reads and regroups after its own inventories (if it is killed, the next `lumina run`
    or the nightly schedule reads what it left)."""
    records = context.instance.fetch_materializations(
        file_inventory.key, limit=100, cursor=context.cursor, ascending=True
    )
    if not records.records:
        return dg.SensorResult(cursor=records.cursor)
    by_lumina_run = {run.run_id for run in context.instance.get_runs(dg.RunsFilter(
        run_ids=[record.run_id for record in records.records], tags={FOLLOWED_UP_BY_TAG: "lumina run"}))}
    newest: dict[str, dg.EventLogRecord] = {}
    changed: set[str] = set()
    for record in records.records:
        materialization = record.asset_materialization
        if materialization is None or materialization.partition is None:  # each has both: the asset is partitioned
            continue
        newest[materialization.partition] = record
        if any(materialization.metadata[rows].value for rows in ("new", "changed", "deleted")):
            changed.add(materialization.partition)
    requests = []
    for catalog, record in newest.items():
        if record.run_id in by_lumina_run or not context.instance.has_dynamic_partition(CATALOGS, catalog):
            continue  # followed up by `lumina run`, or removed since
        change, todo = record.run_id, _batches_to_read(database, catalog)
        requests += [batch_run(batch_job.name, catalog, batch, f"{change}:{batch}", change) for batch in sorted(todo)]
        if not todo and catalog in changed:
            requests.append(
                dg.RunRequest(job_name=catalog_job.name, partition_key=catalog, run_key=f"{change}:catalog")
            )
    return dg.SensorResult(run_requests=requests, cursor=records.cursor)


def _once_its_inventory_ended(instance: dg.DagsterInstance, entry: dict) -> dict:
    """A catalog's cursor entry, once the inventory it requested has ended: without the
    request if the run succeeded, and without the digest too if it failed (the folders are then
    compared with the stored inventory again)."""
    if "requested" not in entry:
        return dict(entry)
    runs = instance.get_runs(dg.RunsFilter(tags={RUN_KEY_TAG: entry["requested"]}), limit=1)
    if not runs or runs[0].status not in [dg.DagsterRunStatus.SUCCESS, *ENDED_BADLY]:
        return dict(entry)
    forgotten = {"requested", "digest"} if runs[0].status in ENDED_BADLY else {"requested"}
    return {key: value for key, value in entry.items() if key not in forgotten}


def _inventoried_digest(database: CatalogDatabase, catalog: str) -> int:
    with database.transaction() as session:
        stored = load_inventory(session.connection(), get_catalog(session, catalog).id)
    return inventory_digest(stored.filter(~pl.col("status").is_in(["deleted", "quarantined"])))  # as on disk


def _batches_to_read(database: CatalogDatabase, catalog: str) -> set[str]:
    with database.transaction() as session:
        found = [c for c in list_catalogs(session) if c.name == catalog]  # it may have been removed since
        return {b for c in found for b in pending_batches(session.connection(), c.id, ANALYSIS_VERSION)}


def _regroup_once_the_change_ended(context: dg.RunStatusSensorContext) -> list[dg.RunRequest] | None:
    """Once the last batch run of a change ends (succeeded, failed or canceled), regroup its
    catalogs: one run per change and catalog, not per batch (run keys make the request once,
    however many see it). A change is the runs a sensor or schedule requested together
    (CHANGE_TAG), a backfill's runs (of one catalog or several), or a run launched alone (the
    Launchpad); `lumina run` regroups its own runs. Batches whose runs did not succeed are named
    in the regrouping run's tags; their files stay pending for the next change, a retry or the
    nightly schedule.

    None, not a SkipReason, for a run with nothing to follow up: Dagster ends a run status
    sensor's tick at the first run its function returns something for and goes on past None, so
    `lumina run`'s runs and a change's earlier batches do not each hold back later regroupings by a tick."""
    run, instance = context.dagster_run, context.instance
    if FOLLOWED_UP_BY_TAG in run.tags or not reads_a_batch(run):
        return None
    tag = next((tag for tag in (CHANGE_TAG, BACKFILL_TAG) if tag in run.tags), None)
    if tag is None:  # launched alone: a change of its own
        change, ended = run.run_id, [run]
    elif instance.get_runs_count(dg.RunsFilter(tags={tag: run.tags[tag]}, statuses=IN_PROGRESS)):
        return None  # the change's last run to end regroups
    else:
        change = run.tags[tag]
        ended = list(instance.get_runs(dg.RunsFilter(tags={tag: change})))  # newest first
        if tag == BACKFILL_TAG and not _launched_whole(context, change, ended):
            return None
    latest = {_catalog_and_batch(run): run.status for run in reversed(ended) if reads_a_batch(run)}
    requests = []
    for catalog in sorted({catalog for catalog, _ in latest}):
        if not instance.has_dynamic_partition(CATALOGS, catalog):  # removed since
            continue
        failed = sorted(b for (c, b), status in latest.items() if c == catalog and status in ENDED_BADLY)
        tags = {FAILED_BATCHES_TAG: ",".join(failed)} if failed else {}
        requests.append(dg.RunRequest(partition_key=catalog, run_key=f"{change}:{catalog}:catalog", tags=tags))
    return requests or None  # a list, not a SensorResult: the tick yields the run's reaction after it


def _catalog_and_batch(run: dg.DagsterRun) -> tuple[str, str]:
    """From the run's partition key: a run launched by the API may lack the dimensions' own tags."""
    keys = catalog_batches.get_partition_key_from_str(run.tags["dagster/partition"]).keys_by_dimension
    return keys["catalog"], keys["batch"]


def _launched_whole(context: dg.RunStatusSensorContext, backfill_id: str, runs: list[dg.DagsterRun]) -> bool:
    """Whether a backfill has launched a run of each of its partitions (it launches a large one
    a chunk at a time), or stopped launching (canceled). One from failure launches only those
    that failed: whole once none is in progress. An asset backfill (of the asset graph) has
    launched every partition once it requested all it targets."""
    backfill = context.instance.get_backfill(backfill_id)
    if backfill is None or backfill.status.value != "REQUESTED" or backfill.from_failure:
        return True
    if backfill.is_asset_backfill:
        graph = cast(dg.RepositoryDefinition, context.repository_def).asset_graph
        launching = backfill.get_asset_backfill_data(graph)
        return (launching.target_subset - launching.requested_subset).is_empty
    return set(backfill.partition_names or ()) <= {run.tags.get("dagster/partition") for run in runs}


def _regroup_after_file_actions(context: dg.RunStatusSensorContext) -> dg.RunRequest | None:
    """The inventory that follows a quarantine or organize run sees no change (the rows already
    say where the files went), so the groups would hold quarantined files until the next
    change; one that failed part-way moved some. None for a dry run (the jobs' default), or for
    a removed catalog."""
    run = context.dagster_run
    catalog, ops = run.tags["dagster/partition"], cast(dict, run.run_config.get("ops") or {})
    dry_run = not ops or any(op.get("config", {}).get("dry_run", True) for op in ops.values())
    if dry_run or not context.instance.has_dynamic_partition(CATALOGS, catalog):
        return None
    return dg.RunRequest(partition_key=catalog, run_key=f"{run.run_id}:catalog")


class Followed(NamedTuple):
    """What a kind of regrouping sensor follows: its jobs, the function asking for the
    regrouping, and how its description starts."""

    jobs: list | None  # None: every job of the code location
    regroup: Callable[[dg.RunStatusSensorContext], dg.RunRequest | list[dg.RunRequest] | None]
    description: str


# every job's runs: a batch's assets may be materialized from the asset graph (reads_a_batch)
BATCHES = Followed(None, _regroup_once_the_change_ended,
                   "Regroups a catalog (catalog_job) once the last batch run of a change ")
FILE_ACTIONS = Followed([quarantine_job, organize_job], _regroup_after_file_actions,
                        "Regroups a catalog once a quarantine or organize run, not a dry run, ")


def _regrouping_sensor(
    followed: Followed, name: str, status: dg.DagsterRunStatus, ended: str
) -> dg.RunStatusSensorDefinition:
    return dg.run_status_sensor(name=name, run_status=status, monitored_jobs=followed.jobs, request_job=catalog_job,
                                default_status=RUNNING, description=followed.description + ended)(followed.regroup)


# The same follow-up after a success, a failure and a cancel (Terminate in the UI). Each sensor
# keeps its own run keys, so a failed batch run that is retried and then succeeds regroups the
# catalog once more.
grouping_after_batches_sensor = _regrouping_sensor(
    BATCHES, "grouping_after_batches_sensor", dg.DagsterRunStatus.SUCCESS, "succeeded"
)
grouping_after_failed_batches_sensor = _regrouping_sensor(
    BATCHES, "grouping_after_failed_batches_sensor", dg.DagsterRunStatus.FAILURE, "failed"
)
grouping_after_canceled_batches_sensor = _regrouping_sensor(
    BATCHES, "grouping_after_canceled_batches_sensor", dg.DagsterRunStatus.CANCELED, "was canceled (Terminate)"
)
grouping_after_file_actions_sensor = _regrouping_sensor(
    FILE_ACTIONS, "grouping_after_file_actions_sensor", dg.DagsterRunStatus.SUCCESS, "succeeded"
)
grouping_after_failed_file_actions_sensor = _regrouping_sensor(
    FILE_ACTIONS, "grouping_after_failed_file_actions_sensor", dg.DagsterRunStatus.FAILURE, "failed part-way"
)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[batch_job], request_job=captions_job,
    default_status=RUNNING, description="Captions each analyzed batch, with an Ollama server configured",
)
def captions_after_batch_sensor(context: dg.RunStatusSensorContext, vision: OllamaVision) -> dg.RunRequest | None:
    """Caption the photos of each batch once it is analyzed (the captions run of a batch asks
    only for contents not captioned yet, so this costs nothing where there is nothing new).
    None without an Ollama server (LUMINA_OLLAMA_URL), or for a removed catalog: the tick
    goes on to the next run (see _regroup_once_the_change_ended)."""
    run = context.dagster_run
    removed = not context.instance.has_dynamic_partition(CATALOGS, _catalog_and_batch(run)[0])
    if not vision.configured or removed:
        return None
    return dg.RunRequest(partition_key=run.tags["dagster/partition"], run_key=f"{run.run_id}:captions")
