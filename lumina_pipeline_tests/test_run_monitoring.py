"""Runs whose process was killed with -9 are failed, so they no longer hold the run queue's
places: by the daemon's run monitoring for runs it launched, and by the next `lumina run` for
the runs of a `lumina run` that died. Real processes on the embedded PostgreSQL."""

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.utils import make_new_run_id
from sqlalchemy import text

from lumina_pipeline.defs import run_launcher
from lumina_pipeline.defs.run_launcher import PID_TAG, process_exists, process_tags
from lumina_pipeline.storage.database import make_engine
from lumina_pipeline_tests.conftest import prepared_env, stop_embedded_server
from lumina_pipeline_tests.test_deployment import BIN, PROJECT, hashed

MONITORING_SECONDS = 5
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def wait_for(condition, what: str, seconds: float = 300):
    """The first true result of `condition`, asked every 0.2 s; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.2)
    pytest.fail(f"gave up after {seconds} s waiting for {what}")


@pytest.fixture
def instance_for(monkeypatch):
    """The Dagster instance of a prepared environment, in this process."""
    opened = []

    def open_instance(env: dict[str, str]) -> dg.DagsterInstance:
        for key in ("DAGSTER_HOME", "LUMINA_DATABASE_URL"):
            monkeypatch.setenv(key, env[key])
        opened.append(dg.DagsterInstance.get())
        return opened[-1]

    yield open_instance
    for instance in opened:
        instance.dispose()


def processes() -> dict[int, tuple[int, str]]:
    """pid: (parent pid, command line) of every process of this machine."""
    table = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True).stdout
    return {int(pid): (int(ppid), args) for pid, ppid, args in (line.split(None, 2) for line in table.splitlines())}


def descendants(table: dict[int, tuple[int, str]], pid: int) -> list[int]:
    children = [child for child, (parent, _) in table.items() if parent == pid]
    return children + [grandchild for child in children for grandchild in descendants(table, child)]


@pytest.fixture
def daemon(tmp_path, instance_for):
    """A start of dagster-daemon on a Lumina home with one watched (empty) catalog, one run at a
    time (so a dead run alone would stop every run after it) and run monitoring every few seconds."""
    library = tmp_path / "library"
    library.mkdir()
    env = prepared_env(tmp_path / "home", LUMINA_MAX_RUNS="1",
                       LUMINA_RUN_MONITORING_SECONDS=str(MONITORING_SECONDS))
    subprocess.run([sys.executable, "-m", "lumina_pipeline.cli", "catalog", "add", "watched", str(library)],
                   env=env, check=True, capture_output=True)
    log = open(tmp_path / "daemon.log", "w")
    started = []

    def start() -> subprocess.Popen:
        started.append(subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(PROJECT / "workspace.yaml")],
                                        env=env, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True))
        return started[-1]

    try:
        yield start, library, instance_for(env), env
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError):  # code servers the daemon started may outlive it
                os.killpg(process.pid, signal.SIGKILL)
        log.close()
        stop_embedded_server(tmp_path / "home" / "pgdata")


def batch_run_and_its_process(instance: dg.DagsterInstance, daemon: subprocess.Popen) -> tuple[dg.DagsterRun, int]:
    """The first batch run to start, and its run worker: a process of its own, tagged on the run,
    forked from the forkserver the daemon's run launcher started."""
    started = dg.RunsFilter(job_name="batch_job", statuses=[dg.DagsterRunStatus.STARTED])
    run = wait_for(lambda: instance.get_runs(started), "a batch run to start")[0]
    worker = int(run.tags[PID_TAG])
    assert worker in descendants(processes(), daemon.pid)
    return run, worker


def kill_with_its_processes(pid: int) -> None:
    """kill -9 a process and its descendants (a run worker's step processes)."""
    for process in [pid, *descendants(processes(), pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)


def copy_and_wait_for_hashes(photos: list[Path], library: Path, env: dict[str, str]) -> None:
    for photo in photos:
        if not (library / photo.name).exists():
            shutil.copy(photo, library / photo.name)
    engine = make_engine(env["LUMINA_DATABASE_URL"])
    wait_for(lambda: hashed(engine, [p.name for p in photos]), "every photo's hashes")
    engine.dispose()


def test_daemon_runs_whose_worker_died_are_failed_and_the_next_runs_complete(daemon, corpus):
    start, library, instance, env = daemon
    photos = [corpus.photos / r["path"] for r in corpus.files(expected_status="ok") if r["format"] == "JPEG"][:16]
    process = start()
    for photo in photos[:8]:
        shutil.copy(photo, library / photo.name)

    # A run worker killed while the daemon lives: its launcher fails the run at once.
    run, worker = batch_run_and_its_process(instance, process)
    kill_with_its_processes(worker)
    wait_for(lambda: instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE,
             "the launcher to fail the dead run", seconds=MONITORING_SECONDS)
    messages = [record.message for record in instance.all_logs(run.run_id)]
    assert any(f"run worker process {worker} ended with code -9" in message for message in messages), messages

    # The daemon killed with its run worker (as when the machine stops): once it is back, run
    # monitoring fails the run, and the retry and the folder sensor's next runs take its place.
    for photo in photos[8:12]:
        shutil.copy(photo, library / photo.name)
    run, worker = batch_run_and_its_process(instance, process)
    kill_with_its_processes(process.pid)
    process.wait()
    killed_at = time.time()
    start()
    wait_for(lambda: instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE,
             "run monitoring to fail the dead run", seconds=60 + 3 * MONITORING_SECONDS)
    messages = [record.message for record in instance.all_logs(run.run_id)]
    assert any(f"run worker process {worker} is gone" in message for message in messages), messages

    copy_and_wait_for_hashes(photos, library, env)
    done = instance.get_run_records(dg.RunsFilter(job_name="inventory_job", statuses=[dg.DagsterRunStatus.SUCCESS]))
    # started by the daemon that came back (the one killed may have queued it just before)
    assert any((record.start_time or 0) > killed_at
               and record.dagster_run.tags["dagster/sensor_name"] == "folder_change_sensor" for record in done)


CLI = [sys.executable, "-m", "lumina_pipeline.cli"]


@pytest.fixture
def trip(tmp_path: Path, corpus):
    """A maker of catalog `trip` of six of the corpus's photos in batches of its argument, in a
    home of its own; it returns the home's environment."""
    return functools.partial(six_photo_catalog, tmp_path, corpus)


def six_photo_catalog(tmp_path: Path, corpus, batch_size: int) -> dict[str, str]:
    library = tmp_path / "library"
    library.mkdir()
    for record in [r for r in corpus.files(expected_status="ok") if r["format"] == "JPEG"][:6]:
        shutil.copy(corpus.photos / record["path"], library)
    env = prepared_env(tmp_path / "home")
    subprocess.run([*CLI, "catalog", "add", "trip", str(library), "--batch-size", str(batch_size)], env=env, check=True)
    return env


def stopped_in_its_first_batch(command: list[str], env: dict[str, str], instance: dg.DagsterInstance,
                               stop: signal.Signals) -> int:
    """Start `lumina run trip` by `command`, send it `stop` once its first batch run started;
    its exit code."""
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    batch = dg.RunsFilter(job_name="batch_job", statuses=IN_PROGRESS)
    try:
        wait_for(lambda: first.poll() is not None or instance.get_runs(batch), "a batch run of `lumina run`")
        assert first.poll() is None, "`lumina run` ended before its batch run was seen"
    finally:
        first.send_signal(stop)
    return first.wait(timeout=30)


def test_the_pool_slot_of_a_killed_run_is_freed_for_the_next_runs(daemon):
    """A captions run killed as it asked Ollama never frees its slot of the `ollama` pool (one
    slot by default): the daemon frees it once the run ended, or no captions step would run again."""
    start, _, instance, _ = daemon
    slots = instance.event_log_storage
    run = instance.add_run(dg.DagsterRun(job_name="captions_job", run_id=make_new_run_id(),
                                         status=dg.DagsterRunStatus.STARTED))
    slots.initialize_concurrency_limit_to_default("ollama")  # as a captions step's first claim does
    assert slots.claim_concurrency_slot("ollama", run.run_id, "captions").is_claimed
    instance.report_run_failed(run, "its run worker was killed")  # as run monitoring does
    start()
    next_run = make_new_run_id()  # its step waits in the pool's queue until the slot is free
    wait_for(lambda: slots.claim_concurrency_slot("ollama", next_run, "captions").is_claimed,
             "the next captions step to get the slot", seconds=120)


def test_a_run_terminated_once_its_process_was_gone_is_canceled_within_two_monitoring_intervals(daemon):
    """Terminate from another machine marks the run canceling and leaves its process to stop
    itself (every 2 s it asks): where that process was gone, the run must not wait minutes."""
    start, _, instance, _ = daemon
    run = instance.add_run(dg.DagsterRun(job_name="batch_job", run_id=make_new_run_id(),
                                         status=dg.DagsterRunStatus.STARTED))
    instance.report_run_canceling(run)  # as the launcher does for a run of another machine
    start()
    wait_for(lambda: instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED,
             "run monitoring to end the cancel", seconds=60 + 2 * MONITORING_SECONDS)


@pytest.mark.parametrize("batch_size", [6, 3], ids=["its batch in lumina run", "its batches in two workers"])
def test_a_lumina_run_killed_mid_run_has_its_runs_failed_by_the_next_one(tmp_path, trip, instance_for, batch_size):
    env = trip(batch_size)
    instance = instance_for(env)
    try:
        stopped_in_its_first_batch([*CLI, "run", "trip"], env, instance, signal.SIGKILL)
        killed = instance.get_runs(dg.RunsFilter(statuses=IN_PROGRESS))
        assert killed
        # the processes that executed them die with `lumina run`, and none ends its batch
        wait_for(lambda: not any(process_exists(int(run.tags[PID_TAG])) for run in killed), "their processes to end",
                 seconds=10)

        second = subprocess.run([*CLI, "run", "trip"], env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "marked failed, their process died: batch_job" in second.stdout
        assert "catalog trip: 6 files (6 ok)" in second.stdout
        assert instance.get_runs_count(dg.RunsFilter(statuses=IN_PROGRESS)) == 0
        failed = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        assert {run.run_id for run in failed} == {run.run_id for run in killed}

        # killed after its last write (in its regrouping, say): the next run has nothing to do,
        # and fails the dead run all the same
        gone = subprocess.Popen(["true"])
        gone.wait()
        left = instance.add_run(dg.DagsterRun(job_name="catalog_job", run_id=make_new_run_id(),
                                              status=dg.DagsterRunStatus.STARTED, tags=process_tags(gone.pid)))
        third = subprocess.run([*CLI, "run", "trip"], env=env, capture_output=True, text=True, timeout=600)
        assert "0 new, 0 changed, 0 deleted" in third.stdout, third.stderr[-3000:]
        assert f"marked failed, their process died: catalog_job {left.run_id}" in third.stdout
        assert instance.get_runs_count(dg.RunsFilter(statuses=IN_PROGRESS)) == 0
    finally:
        stop_embedded_server(tmp_path / "home" / "pgdata")


@pytest.mark.parametrize("batch_size", [6, 3], ids=["its batch in lumina run", "its batches in two workers"])
def test_ctrl_c_stops_lumina_run_at_once_and_the_next_one_goes_on(tmp_path, trip, instance_for, batch_size):
    """Dagster retries an interrupted step that has a retry policy: a batch executed by `lumina
    run` itself went on to its end, and so did the run."""
    env = trip(batch_size)
    instance = instance_for(env)
    try:
        assert stopped_in_its_first_batch([*CLI, "run", "trip"], env, instance, signal.SIGINT) == 130
        assert instance.get_runs(dg.RunsFilter(job_name="catalog_job")) == []
        second = subprocess.run([*CLI, "run", "trip"], env=env, capture_output=True, text=True, timeout=600)
        assert "catalog trip: 6 files (6 ok)" in second.stdout, second.stderr[-3000:]
        assert instance.get_runs_count(dg.RunsFilter(statuses=IN_PROGRESS)) == 0
    finally:
        stop_embedded_server(tmp_path / "home" / "pgdata")


def test_two_lumina_runs_of_one_catalog_take_turns_and_read_each_file_once(tmp_path, trip, instance_for):
    env = trip(6)
    instance = instance_for(env)
    try:
        both = [subprocess.Popen([*CLI, "run", "trip"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(2)]
        outputs = [process.communicate(timeout=600) for process in both]
        assert [process.returncode for process in both] == [0, 0], outputs
        assert sum("waiting for the other `lumina run trip` to end" in err for _, err in outputs) == 1
        assert all("catalog trip: 6 files (6 ok)" in out for out, _ in outputs)
        assert len(instance.get_runs(dg.RunsFilter(job_name="batch_job"))) == 1
    finally:
        stop_embedded_server(tmp_path / "home" / "pgdata")


def test_kill_stops_a_lumina_run_started_in_the_background_of_a_script(tmp_path, trip, instance_for):
    """A shell starts `lumina run NAME &` with SIGINT ignored; once a Dagster run ended, Dagster
    had SIGTERM ignored too, and `kill` left `lumina run` running to its end."""
    env = trip(3)
    instance = instance_for(env)
    as_a_background_job = [
        sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "os.execv(sys.executable, [sys.executable, '-m', 'lumina_pipeline.cli', 'run', 'trip'])",
    ]
    try:
        assert stopped_in_its_first_batch(as_a_background_job, env, instance, signal.SIGTERM) != 0
        assert instance.get_runs(dg.RunsFilter(job_name="catalog_job")) == []  # it stopped before the regrouping
        second = subprocess.run([*CLI, "run", "trip"], env=env, capture_output=True, text=True, timeout=600)
        assert "catalog trip: 6 files (6 ok)" in second.stdout, second.stderr[-3000:]
        assert instance.get_runs_count(dg.RunsFilter(statuses=IN_PROGRESS)) == 0
    finally:
        stop_embedded_server(tmp_path / "home" / "pgdata")


def launched(instance: dg.DagsterInstance, job_name: str, partition_key: str) -> dg.DagsterRun:
    """A run of `job_name` for `partition_key`, launched by the instance's run launcher as the
    daemon launches one."""
    job = ReconstructableRepository.for_module("lumina_pipeline.definitions", "defs").get_reconstructable_job(job_name)
    definition = job.get_definition()
    run = instance.create_run_for_job(definition, run_config=definition.get_run_config_for_partition_key(partition_key),
                                      tags=definition.get_tags_for_partition_key(partition_key, None),
                                      job_code_origin=job.get_python_origin())
    return instance.launch_run(run.run_id, workspace=None)  # type: ignore[arg-type]  (Lumina's launcher needs none)


def launched_and_terminated(instance: dg.DagsterInstance, monkeypatch, machine: str) -> dg.DagsterRun:
    """A run of the corpus's batch, terminated once its step started, as the webserver does when
    someone presses Terminate, from another process than the launcher's, on `machine`; returned
    once it ended and its process is gone. On this machine the launcher's watch over the run
    process sees it die before the run is marked canceled; on another the launcher cannot kill
    it, and the run process stops itself."""
    batch = launched(instance, "batch_job", str(dg.MultiPartitionKey({"catalog": "trip", "batch": "00000"})))
    wait_for(lambda: instance.all_logs(batch.run_id, of_type=dg.DagsterEventType.STEP_START), "its step to start")
    with monkeypatch.context() as patch:
        if machine == "this":
            watch = next(thread for thread in threading.enumerate() if thread.name == f"watching run {batch.run_id}")
            report_run_canceled = instance.report_run_canceled
            patch.setattr(instance, "report_run_canceled",
                          lambda *args, **kwargs: watch.join(30) or report_run_canceled(*args, **kwargs))
        else:
            patch.setattr(run_launcher.socket, "gethostname", lambda: "webserver-container")
        assert instance.run_launcher.terminate(batch.run_id)
    ended = wait_for(lambda: (run := instance.get_run_by_id(batch.run_id)) and run.is_finished and run, "its end")
    wait_for(lambda: not process_exists(int(ended.tags[PID_TAG])), "its process to be gone", seconds=10)
    return ended


def test_a_run_terminated_from_this_machine_or_another_is_canceled_and_leaves_its_batch_to_read(
    tmp_path, corpus, instance_for, monkeypatch
):
    env = prepared_env(tmp_path / "home")
    for key in [key for key in env if key.startswith("LUMINA_")]:  # the run processes' resources read them
        monkeypatch.setenv(key, env[key])
    instance = instance_for(env)
    subprocess.run([sys.executable, "-m", "lumina_pipeline.cli", "catalog", "add", "trip", str(corpus.photos)],
                   env=env, check=True, capture_output=True)
    engine = make_engine(env["LUMINA_DATABASE_URL"])

    def statuses() -> dict[str, int]:
        with engine.connect() as connection:
            return dict(connection.execute(text("SELECT status, count(*) FROM images GROUP BY status")).all())

    try:
        inventory = launched(instance, "inventory_job", "trip")
        wait_for(lambda: instance.get_run_by_id(inventory.run_id).is_finished, "the inventory")  # type: ignore[union-attr]
        inventoried = statuses()
        assert inventoried["pending"] > 80
        for machine in ("this", "another"):
            ended = launched_and_terminated(instance, monkeypatch, machine)
            assert ended.status == dg.DagsterRunStatus.CANCELED, machine
            assert len(instance.all_logs(ended.run_id, of_type=dg.DagsterEventType.RUN_CANCELED)) == 1, machine
            # stopped as it read: its step never ended, and it wrote nothing
            ends = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
            assert not instance.all_logs(ended.run_id, of_type=ends), machine
            assert statuses() == inventoried, machine
    finally:
        engine.dispose()
        stop_embedded_server(tmp_path / "home" / "pgdata")
