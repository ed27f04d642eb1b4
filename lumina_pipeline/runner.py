"""`lumina run`: the inventory, the batches with files to read and the regrouping of one
catalog, executed in this process as Dagster runs recorded in the instance the UI reads."""

import os
import socket
import time

import dagster as dg
from sqlalchemy.orm import Session

from lumina_pipeline import home
from lumina_pipeline.analysis.captions import PROMPT_VERSION
from lumina_pipeline.analysis.photos import ANALYSIS_VERSION
from lumina_pipeline.definitions import defs
from lumina_pipeline.defs.assets.regrouping import rule_settings
from lumina_pipeline.defs.jobs import GROUPINGS, QUIET_RUN_CONFIG
from lumina_pipeline.defs.partitions import CATALOGS
from lumina_pipeline.defs.run_launcher import HOST_TAG, PID_TAG, process_exists, process_tags
from lumina_pipeline.humanize import plural, size
from lumina_pipeline.storage.captions import batches_to_caption
from lumina_pipeline.storage.catalogs import get_catalog
from lumina_pipeline.storage.groups import BURSTS, DUPLICATES, STACKS, input_digest, last_regrouping, load_catalog_rows
from lumina_pipeline.storage.images import pending_batches, status_counts


def run_catalog(place: home.Home, name: str, engine) -> None:
    """Run what the catalog needs and print a line per step."""
    definitions, instance = defs(), dg.DagsterInstance.get()
    _fail_dead_runs(instance)
    instance.add_dynamic_partitions(CATALOGS, [name])
    started = time.perf_counter()
    tags = process_tags()  # so that a later `lumina run` can tell if this process died

    def execute(job: str, partition_key: str, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
        return definitions.resolve_job_def(job).execute_in_process(
            partition_key=partition_key, instance=instance, run_config=QUIET_RUN_CONFIG, tags=tags,
            raise_on_error=raise_on_error,
        )

    inventory = _figures(execute("inventory_job", name), "file_inventory")
    print(f"inventory: {plural(inventory['files'], 'file')}, {inventory['new']} new, "
          f"{inventory['changed']} changed, {inventory['deleted']} deleted")
    with Session(engine) as session:
        catalog_id = get_catalog(session, name).id
        todo = pending_batches(session.connection(), catalog_id, ANALYSIS_VERSION)
    for number, batch in enumerate(todo, 1):
        result = execute("batch_job", dg.MultiPartitionKey({"catalog": name, "batch": batch}))
        read = _figures(result, "photo_analysis", "metadata")
        embedded = _figures(result, "photo_analysis", "embeddings")
        print(f"batch {batch} ({number}/{len(todo)}): {plural(read['files_read'], 'file')} read "
              f"({read['ok']} ok, {plural(read['error'], 'error')}, {read['skipped']} skipped), "
              f"{read['files_per_second']} files per second")
        print(f"  embeddings: {plural(embedded['images_embedded'], 'photo')} by {embedded['model_id']}, "
              f"{plural(embedded['zero_shot_tags'], 'zero-shot tag')}, "
              f"{embedded['images_per_second']} images per second")
    with Session(engine) as session:
        regroup = _regrouping_needed(session.connection(), catalog_id)
    if regroup:
        execute("catalog_job", name)
    else:
        print("groupings: nothing they read changed since they were made")
    with Session(engine) as session:
        shots, groups, frames = (last_regrouping(session.connection(), catalog_id, grouping)["figures"]
                                 for grouping in (STACKS, DUPLICATES, BURSTS))
    print(f"stacks: {plural(shots['stacks'], 'shot')} stored as several files "
          f"({shots.get('raw_jpeg_stacks', 0)} RAW+JPEG, {shots.get('live_photo_stacks', 0)} Live Photo), "
          f"{plural(shots['files_in_stacks'], 'file')}")
    print(f"duplicates: {plural(groups['exact_groups'], 'exact group')}, "
          f"{plural(groups['near_duplicate_groups'], 'near-duplicate group')}, "
          f"{plural(groups['files_in_groups'], 'file')} in groups, {size(groups['reclaimable_bytes'])} reclaimable")
    print(f"bursts: {plural(frames['bursts'], 'burst')}, {plural(frames['frames_in_bursts'], 'frame')}")
    _caption(execute, engine, name)
    with Session(engine) as session:
        counts = status_counts(session.connection(), catalog_id)
    summary = ", ".join(plural(count, status) if status == "error" else f"{count} {status}"
                        for status, count in sorted(counts.items()))
    seconds = time.perf_counter() - started
    print(f"catalog {name}: {plural(sum(counts.values()), 'file')} ({summary}) in {seconds:.1f} s")


def _regrouping_needed(connection, catalog_id) -> bool:
    """Whether catalog_job would regroup anything: whether what a grouping reads differs from
    what its last regrouping read. Its assets ask again under the catalog lock; this only
    spares `lumina run` a run when nothing changed."""
    rows = load_catalog_rows(connection, catalog_id)
    return any(
        input_digest(rows, grouping, rule_settings(asset, config))
        != last_regrouping(connection, catalog_id, grouping).get("read")
        for asset, grouping, config in GROUPINGS
    )


def _caption(execute, engine, name: str) -> None:
    """Caption the photos that have no caption from the configured Ollama model yet, batch by
    batch, after the grouping (which does not wait for them)."""
    model = os.environ["LUMINA_OLLAMA_MODEL"]
    if not os.environ["LUMINA_OLLAMA_URL"]:
        print("captions: off (set LUMINA_OLLAMA_URL to describe photos with a local Ollama vision model)")
        return
    with Session(engine) as session:
        todo = batches_to_caption(session.connection(), get_catalog(session, name).id, model, PROMPT_VERSION)
    for batch in todo:
        result = execute("captions_job", dg.MultiPartitionKey({"catalog": name, "batch": batch}), raise_on_error=False)
        if not result.success:  # Ollama down or the model not pulled: the rest of the run stands
            failure = next(event for event in result.all_events if event.is_step_failure)
            print(f"captions: none asked: {failure.step_failure_data.error.message.strip()}")
            return
        figures = _figures(result, "captions")
        print(f"captions {batch}: {plural(figures['photos_captioned'], 'photo')} by {model}, "
              f"{figures['contents_asked']} asked, {plural(figures['errors'], 'error')}, "
              f"{figures['seconds_per_photo']} s per photo asked")


def _fail_dead_runs(instance: dg.DagsterInstance) -> None:
    """Fail the runs of `lumina run` processes of this machine that died (killed, machine
    restarted). They stay STARTED otherwise, and the daemon's run queue counts them against its
    limits. The daemon's run monitoring does the same, but only where a daemon runs."""
    mine = dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
        tags={HOST_TAG: socket.gethostname()},
    )
    dead = [run for run in instance.get_runs(mine) if not process_exists(int(run.tags[PID_TAG]))]
    for run in dead:
        instance.report_run_failed(run, f"its `lumina run` process {run.tags[PID_TAG]} is gone")
    if dead:
        runs = ", ".join(f"{run.job_name} {run.run_id}" for run in dead)
        print(f"marked failed, their `lumina run` process died: {runs}")


def _figures(result: dg.ExecuteInProcessResult, node: str, asset: str = "") -> dict:
    """The metadata of the materialization of `asset` (default: the node's first)."""
    materializations = result.asset_materializations_for_node(node)
    materialization = next(m for m in materializations if asset in ("", m.asset_key.to_user_string()))
    return {key: value.value for key, value in materialization.metadata.items()}

