"""`lumina run`: a catalog's inventory, batches with files to read and regrouping, as Dagster runs
recorded in the instance the UI reads. The batches run in worker processes, as many at once as the run
queue allows one catalog (in this process when that is one); the rest in this process. A catalog with
nothing to do (folders as last inventoried, batches read, groupings up to date) starts no run: a
no-change rescan costs about a walk."""

import contextlib
import ctypes
import functools
import os
import select
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import dagster as dg
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.captions import PROMPT_VERSION
from lumina_pipeline.analysis.files import APP_LIBRARY_LEFT_OUT, shown, walk_sources
from lumina_pipeline.analysis.inventory import InventoryChanges, diff_inventory
from lumina_pipeline.analysis.photos import ANALYSIS_VERSION
from lumina_pipeline.definitions import defs
from lumina_pipeline.defs.assets.regrouping import rule_settings
from lumina_pipeline.defs.jobs import BATCH_TAG, FOLLOWED_UP_BY_TAG, GROUPINGS, QUIET_RUN_CONFIG
from lumina_pipeline.defs.partitions import CATALOGS
from lumina_pipeline.defs.run_launcher import (
    HOST_TAG,
    LAUNCHED_TAG,
    PID_TAG,
    keep_connections_open,
    process_tags,
    worker_alive,
)
from lumina_pipeline.forkserver import preloaded_forkserver
from lumina_pipeline.humanize import plural, size
from lumina_pipeline.storage.browse import removable_total
from lumina_pipeline.storage.captions import batches_to_caption
from lumina_pipeline.storage.catalogs import RUN_LOCK_SPACE, get_catalog, held_lock
from lumina_pipeline.storage.groups import BURSTS, DUPLICATES, STACKS, input_digest, last_regrouping, load_catalog_rows
from lumina_pipeline.storage.images import errors, load_inventory, pending_batches, status_counts
from lumina_pipeline.storage.models import Catalog

M_ARENA_MAX = -8  # malloc.h: the most malloc arenas glibc makes for the threads of a process
STOPS = {signal.SIGINT, signal.SIGTERM}  # Ctrl-C and `kill`
ERRORS_SHOWN = 10  # files that could not be read, named under the summary
NOTHING_TO_REGROUP = "groupings: nothing they read changed since they were made"


def run_catalog(name: str, engine) -> None:
    """Run what the catalog needs and print a line per step. A catalog with nothing to do
    starts no Dagster run at all (`unchanged_inventory`)."""
    started = time.perf_counter()
    _stop_at_once_on_interrupt()
    with Session(engine) as session:
        catalog_id = get_catalog(session, name).id
    waiting = functools.partial(print, f"waiting for the other `lumina run {name}` to end", file=sys.stderr)
    with held_lock(engine, RUN_LOCK_SPACE, str(catalog_id), waiting):  # it would read the same files
        fail_dead_runs(_instance())  # the other's too, if it was killed while this one waited
        with Session(engine) as session:
            unchanged = unchanged_inventory(session.connection(), get_catalog(session, name))
        if unchanged is None:
            _bring_up_to_date(name, catalog_id, engine)
        else:  # what the inventory and the regrouping check would have said
            _print_inventory(len(unchanged.files), hard_links=unchanged.hard_links)
            print(NOTHING_TO_REGROUP)
    with Session(engine) as session:
        shots, groups, frames = (last_regrouping(session.connection(), catalog_id, grouping)["figures"]
                                 for grouping in (STACKS, DUPLICATES, BURSTS))
        counts = status_counts(session.connection(), catalog_id)  # captions change no file's status
        unread = errors(session.connection(), catalog_id, ERRORS_SHOWN)
        removable, removable_bytes = removable_total(session.connection(), catalog_id)
    print(f"stacks: {plural(shots['stacks'], 'shot')} stored as several files "
          f"({shots.get('raw_jpeg_stacks', 0)} RAW+JPEG, {shots.get('live_photo_stacks', 0)} Live Photo, "
          f"{shots.get('with_sidecar_stacks', 0)} with sidecars), "
          f"{plural(shots['files_in_stacks'], 'file')}")
    print(f"duplicates: {plural(groups['exact_groups'], 'exact group')}, "
          f"{plural(groups['near_duplicate_groups'], 'near-duplicate group')}, "
          f"{plural(groups['files_in_groups'], 'file')} in groups, "
          f"{size(groups['reclaimable_bytes'])} reclaimable once reviewed")
    if removable:
        print(f"reviewed away: {plural(removable, 'file')} ({size(removable_bytes)}), "
              f"which `lumina quarantine {name}` moves aside")
    print(f"bursts: {plural(frames['bursts'], 'burst')}, {plural(frames['frames_in_bursts'], 'frame')}")
    _caption(engine, name)
    summary = ", ".join(plural(count, status) if status == "error" else f"{count} {status}"
                        for status, count in sorted(counts.items())) or "none in its folders: are they the right ones?"
    seconds = time.perf_counter() - started
    print(f"catalog {name}: {plural(sum(counts.values()), 'file')} ({summary}) in {seconds:.1f} s")
    for path, reason in unread:
        print(f"  {shown(path)}: {reason}")
    if counts.get("error", 0) > len(unread):
        print(f"  and {counts['error'] - len(unread)} more: `lumina export {name}` gives each file's status and reason")


def unchanged_inventory(connection, catalog: Catalog) -> InventoryChanges | None:
    """The inventory of the catalog's folders, which changes nothing, if `lumina run` has nothing
    to do, else None: every folder listed holds what the last inventory stored (compared as
    file_inventory does), no batch holds a file to read, no grouping would read anything new. A
    killed run leaves one undone."""
    walk = walk_sources(catalog.source_directories)
    changes = diff_inventory(load_inventory(connection, catalog.id), walk, batch_size=catalog.batch_size)
    if changes.unlisted or not changes.is_empty() or pending_batches(connection, catalog.id, ANALYSIS_VERSION,
                                                                     unreadable=True):
        return None
    return None if _regrouping_needed(connection, catalog.id) else changes


def _print_inventory(files: int, new: int = 0, changed: int = 0, deleted: int = 0, put_back: int = 0,
                     hard_links: int = 0) -> None:
    print(f"inventory: {plural(files, 'file')}, {new} new, {changed} changed, {deleted} deleted"
          + (f", {put_back} put back from quarantine by hand" if put_back else "")
          + (f" ({plural(hard_links, 'hard link')} to files listed under another name)" if hard_links else ""))


def _bring_up_to_date(name: str, catalog_id, engine) -> None:
    """The inventory, the batches to read, and the regrouping if it would read anything new."""
    instance = _instance()
    instance.add_dynamic_partitions(CATALOGS, [name])
    inventory = _figures(execute_run("inventory_job", name), "file_inventory")
    _print_inventory(*(inventory[figure] for figure in ("files", "new", "changed", "deleted",
                                                          "put_back_from_quarantine", "hard_links_listed_once")))
    for folder in inventory["unlisted_folders"]:
        print(f"lumina: cannot list {folder}, or it is empty (a drive not mounted?): its files are kept as they were",
              file=sys.stderr)
    for library in inventory["app_libraries_left_out"]:
        print(f"lumina: left out {library}: {APP_LIBRARY_LEFT_OUT}", file=sys.stderr)
    with Session(engine) as session:
        todo = pending_batches(session.connection(), catalog_id, ANALYSIS_VERSION, unreadable=True)
    if todo:
        _analyze(instance, name, todo)
    with Session(engine) as session:
        regroup = _regrouping_needed(session.connection(), catalog_id)
    if regroup:
        execute_run("catalog_job", name)
    else:
        print(NOTHING_TO_REGROUP)


def regroup(name: str) -> str | None:
    """Regroup the catalog as a Dagster run; why it failed, if it did."""
    _instance().add_dynamic_partitions(CATALOGS, [name])
    result = execute_run("catalog_job", name, raise_on_error=False)
    return None if result.success else _failure(result)


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


def _caption(engine, name: str) -> None:
    """Caption, batch by batch, the photos the configured Ollama model has not described yet,
    after the grouping (which does not wait for them)."""
    model = os.environ["LUMINA_OLLAMA_MODEL"]
    if not os.environ["LUMINA_OLLAMA_URL"]:
        print("captions: off (set LUMINA_OLLAMA_URL to describe photos with a local Ollama vision model)")
        return
    with Session(engine) as session:
        todo = batches_to_caption(session.connection(), get_catalog(session, name).id, model, PROMPT_VERSION)
    for batch in todo:
        result = execute_run("captions_job", _batch_key(name, batch), raise_on_error=False)
        if not result.success:  # Ollama down or the model not pulled: the rest of the run stands
            print(f"captions: none asked: {_failure(result)}")
            return
        figures = _figures(result, "captions")
        print(f"captions {batch}: {plural(figures['photos_captioned'], 'photo')} by {model}, "
              f"{figures['contents_asked']} asked, {plural(figures['errors'], 'error')}, "
              f"{figures['seconds_per_photo']} s per photo asked")


def _stop_at_once_on_interrupt() -> None:
    """End this process at once on Ctrl-C or `kill`, as kill -9 would: the next `lumina run` reads
    what a run had not written and fails the runs left behind. Dagster turns an interrupt into a
    step failure and retries a step with a retry policy (for a preempted pod), so a batch in this
    process went on to its end. Whatever handler Dagster gives the signals, Python writes each one
    caught to the wakeup file descriptor, which a thread of this process waits on."""
    waiting, wakeup = socket.socketpair()
    wakeup.setblocking(False)
    signal.set_wakeup_fd(wakeup.fileno(), warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a handler of Python's, so that it is written
    threading.Thread(target=_exit_on_stop, args=(waiting, wakeup), daemon=True, name="stops lumina run").start()


def _exit_on_stop(waiting: socket.socket, wakeup: socket.socket) -> None:
    while waiting.recv(1)[0] not in STOPS:  # `wakeup` stays open as long as this thread waits
        pass
    print("lumina: interrupted; the next `lumina run` goes on from where this one stopped", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def fail_dead_runs(instance: dg.DagsterInstance) -> None:
    """Fail the runs whose process of this machine died (killed, machine restarted): those of
    `lumina run` processes, and those of a daemon's run workers that died with it. They stay
    STARTED otherwise, and the daemon's run queue counts them against its limits. The daemon's
    run monitoring does the same, but only where a daemon runs."""
    mine = dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
        tags={HOST_TAG: socket.gethostname()},
    )
    dead = [run for run in instance.get_runs(mine) if worker_alive(run) is False]
    for run in dead:
        process = "run worker" if LAUNCHED_TAG in run.tags else "`lumina run`"
        instance.report_run_failed(run, f"its {process} process {run.tags[PID_TAG]} is gone")
    if dead:
        runs = ", ".join(f"{run.job_name} {run.run_id}" for run in dead)
        print(f"marked failed, their process died: {runs}")


def _figures(result: dg.ExecuteInProcessResult, node: str, asset: str = "") -> dict:
    """The metadata of the materialization of `asset` (default: the node's first)."""
    materializations = result.asset_materializations_for_node(node)
    materialization = next(m for m in materializations if asset in ("", m.asset_key.to_user_string()))
    return {key: value.value for key, value in materialization.metadata.items()}


def _batch_key(name: str, batch: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"catalog": name, "batch": batch})


def _failure(result: dg.ExecuteInProcessResult) -> str:
    """The error of the run's (first) failed step, and where it has causes, the first line of
    the last: a retried step fails with "Exceeded max_retries of 2", its reason in the causes."""
    error = next(event for event in result.all_events if event.is_step_failure).step_failure_data.error
    if error is None:
        return "no error recorded"
    root = error
    while root.cause is not None:
        root = root.cause
    message, reason = error.message.strip(), root.message.strip().partition("\n")[0]
    return f"{message} ({reason})" if root is not error and reason else message


@functools.cache
def _instance() -> dg.DagsterInstance:
    instance = dg.DagsterInstance.get()
    keep_connections_open(instance)
    return instance


_definitions = functools.cache(defs)  # the code location, loaded once per process


def execute_run(job: str, partition_key: str, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    """A run of `job` in this process, tagged with it so that a later `lumina run` can tell if
    the process died."""
    return _definitions().resolve_job_def(job).execute_in_process(
        partition_key=partition_key, instance=_instance(), run_config=QUIET_RUN_CONFIG,
        tags={**process_tags(), FOLLOWED_UP_BY_TAG: "lumina run"},
        raise_on_error=raise_on_error,
    )


def _analyze(instance: dg.DagsterInstance, name: str, todo: list[str]) -> None:
    """Execute the batch runs of `todo` in worker processes, as many at once as the run queue lets
    one catalog have (LUMINA_BATCHES_PER_CATALOG), printing each as it ends; one at a time in this
    process, which has imported all a batch uses. A failed batch ends `lumina run` once those handed
    to a worker end; the rest are not started. Runs of dead workers are marked failed on the way out."""
    at_once = min(len(todo), batches_at_once(instance))
    workers = batch_workers(at_once) if at_once > 1 else None
    try:
        if workers is not None:
            futures = [workers.submit(execute_batch, name, batch) for batch in todo]
            done = (future.result() for future in as_completed(futures))
        else:
            _ready_for_batches(threads_per_worker(1))
            done = (execute_batch(name, batch) for batch in todo)
        for number, figures in enumerate(done, 1):
            _print_batch(figures, number, len(todo))
    except BatchFailed as failure:
        raise SystemExit(f"lumina: {failure}") from None
    except BrokenProcessPool:
        raise SystemExit(f"lumina: a batch worker process died (killed, or out of memory); "
                         f"`lumina run {name}` goes on from where it stopped") from None
    finally:
        if workers is not None:
            workers.shutdown(cancel_futures=True)
        fail_dead_runs(instance)


def batches_at_once(instance: dg.DagsterInstance) -> int:
    """The run queue's limit on one catalog's batch runs (dagster.yaml), or one per core."""
    queue = instance.get_concurrency_config().run_queue_config
    limits = {limit["key"]: limit["limit"] for limit in queue.tag_concurrency_limits} if queue else {}
    return limits.get(BATCH_TAG, len(os.sched_getaffinity(0)))


def batch_workers(count: int) -> ProcessPoolExecutor:
    """`count` processes for `execute_batch`, forked from a forkserver that imported the heavy
    libraries once (as the daemon's runs are). Each loads the code location and image model once,
    and sizes the model's threads to its share of this process's cores: no fight over them."""
    return ProcessPoolExecutor(count, preloaded_forkserver(), _start_worker, (os.getpid(), threads_per_worker(count)))


def threads_per_worker(count: int) -> int:
    """The model's threads in each of `count` workers: their share of this process's cores."""
    return max(1, len(os.sched_getaffinity(0)) // count)


def _start_worker(command: int, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group; workers end with `lumina run`
    _ready_for_batches(threads)
    if sys.platform == "linux":
        threading.Thread(target=_end_with, args=(command,), daemon=True, name="ends with lumina run").start()


def _ready_for_batches(threads: int) -> None:
    """Size the model's threads and malloc's arenas of a process that executes batches."""
    # Read by onnxruntime sessions (models.onnx_session) and torch, both made after this.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if sys.platform == "linux":
        # A batch reads its files in a thread of their own (analysis.photos), which spreads its
        # allocations over several malloc arenas (glibc allows 8 per core), each keeping freed
        # pages of its own: a worker grew by about 70 MB a batch. Two arenas hold it flat.
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 2)


def _end_with(command: int) -> None:
    """Kill this worker once `lumina run` (process `command`) ends, however it ends: an orphan would
    wait for batches forever, as its parent, the forkserver, lives as long as any process it forked.
    Its run stays STARTED under its pid, which the next `lumina run` fails."""
    with contextlib.suppress(ProcessLookupError):  # already gone
        select.select([os.pidfd_open(command)], [], [])  # readable once the process ended
    os.kill(os.getpid(), signal.SIGKILL)


class BatchFailed(Exception):
    pass


@dataclass(frozen=True)
class BatchFigures:
    batch: str
    read: dict  # the metadata of `metadata`'s materialization
    embedded: dict  # of `embeddings`'


def execute_batch(name: str, batch: str) -> BatchFigures:
    result = execute_run("batch_job", _batch_key(name, batch), raise_on_error=False)
    if not result.success:
        raise BatchFailed(f"batch {batch} of catalog {name} failed (run {result.run_id}): {_failure(result)}")
    return BatchFigures(batch, _figures(result, "photo_analysis", "metadata"),
                        _figures(result, "photo_analysis", "embeddings"))


def _print_batch(figures: BatchFigures, number: int, count: int) -> None:
    read, embedded = figures.read, figures.embedded
    print(f"batch {figures.batch} ({number}/{count}): {plural(read['files_read'], 'file')} read "
          f"({read['ok']} ok, {plural(read['error'], 'error')}, {read['skipped']} skipped), "
          f"{read['files_per_second']} files per second")
    print(f"  embeddings: {plural(embedded['images_embedded'], 'photo')} by {embedded['model_id']}, "
          f"{plural(embedded['zero_shot_tags'], 'zero-shot tag')}, "
          f"{embedded['images_per_second']} images per second")
