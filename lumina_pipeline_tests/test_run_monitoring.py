"""Runs whose process was killed with -9 are failed, so they no longer hold the run queue's
places: by the daemon's run monitoring for runs it launched, and by the next `lumina run` for
the runs of a `lumina run` that died. Real processes on the embedded PostgreSQL."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from lumina_pipeline.storage.database import make_engine
from lumina_pipeline_tests.conftest import stop_embedded_server
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


def prepared_env(lumina_home: Path, **settings: str) -> dict[str, str]:
    """The environment `lumina` gives its processes (database URL, DAGSTER_HOME, ...); its
    embedded database is left running, as `lumina` does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUMINA_", "DAGSTER_"))}
    env.update(LUMINA_HOME=str(lumina_home), **settings)
    prepared = subprocess.run(
        [sys.executable, "-c", "import json, os; from lumina_pipeline import home; home.prepare(); "
         "print(json.dumps({k: v for k, v in os.environ.items() if k.startswith(('LUMINA_', 'DAGSTER_'))}))"],
        env=env, check=True, capture_output=True, text=True,
    )
    env.update(json.loads(prepared.stdout.strip().splitlines()[-1]))
    return env


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
    """dagster-daemon on a Lumina home with one watched (empty) catalog, one run at a time (so a
    dead run alone would stop every run after it) and run monitoring every few seconds."""
    library = tmp_path / "library"
    library.mkdir()
    env = prepared_env(tmp_path / "home", LUMINA_MAX_RUNS="1", LUMINA_RUN_MONITORING_SECONDS=str(MONITORING_SECONDS))
    subprocess.run([sys.executable, "-m", "lumina_pipeline.cli", "catalog", "add", "watched", str(library)],
                   env=env, check=True, capture_output=True)
    log = open(tmp_path / "daemon.log", "w")
    process = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(PROJECT / "workspace.yaml")], env=env,
                               cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process, library, instance_for(env), env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):  # code servers the daemon started may outlive it
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        stop_embedded_server(tmp_path / "home" / "pgdata")


def test_a_daemon_run_whose_worker_died_with_its_code_server_is_failed_and_the_next_runs_complete(daemon, corpus):
    process, library, instance, env = daemon
    photos = [corpus.photos / r["path"] for r in corpus.files(expected_status="ok") if r["format"] == "JPEG"][:14]
    for photo in photos[:12]:
        shutil.copy(photo, library / photo.name)
    started = dg.RunsFilter(job_name="batch_job", statuses=[dg.DagsterRunStatus.STARTED])
    run = wait_for(lambda: instance.get_runs(started), "a batch run to start")[0]

    # The run worker is the code server's child; the code server fails a run whose worker dies
    # by itself, so both go, with the worker's step processes (as when the daemon is killed).
    table = processes()
    workers = [pid for pid, (parent, args) in table.items() if "spawn_main" in args
               and "dagster api grpc" in table.get(parent, (0, ""))[1] and table[parent][0] == process.pid]
    assert len(workers) == 1, "not one run worker (one run at a time): did the batch run end already?"
    server = table[workers[0]][0]
    for pid in [server, workers[0], *descendants(table, workers[0])]:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.time()

    wait_for(lambda: instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE,
             "run monitoring to fail the dead run", seconds=3 * MONITORING_SECONDS)
    messages = [record.message for record in instance.all_logs(run.run_id)]
    assert any(f"run worker process {workers[0]} is gone" in message for message in messages), messages

    for photo in photos[12:]:  # the folder sensor's next runs take the place the dead run held
        shutil.copy(photo, library / photo.name)
    engine = make_engine(env["LUMINA_DATABASE_URL"])
    wait_for(lambda: hashed(engine, [p.name for p in photos]), "every photo's hashes")
    engine.dispose()
    inventory = instance.get_run_records(dg.RunsFilter(job_name="inventory_job"), limit=1)[0]
    assert inventory.create_timestamp.timestamp() > killed_at
    assert inventory.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert inventory.dagster_run.tags["dagster/sensor_name"] == "folder_change_sensor"


def test_a_lumina_run_killed_mid_run_has_its_run_failed_by_the_next_one(tmp_path, corpus, instance_for):
    library = tmp_path / "library"
    library.mkdir()
    for record in [r for r in corpus.files(expected_status="ok") if r["format"] == "JPEG"][:6]:
        shutil.copy(corpus.photos / record["path"], library)
    env = prepared_env(tmp_path / "home")
    instance = instance_for(env)
    lumina = [sys.executable, "-m", "lumina_pipeline.cli", "run", "--photos", str(library), "trip"]
    try:
        first = subprocess.Popen(lumina, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        batch = dg.RunsFilter(job_name="batch_job", statuses=IN_PROGRESS)
        try:  # kill it inside its first batch run
            wait_for(lambda: first.poll() is not None or instance.get_runs(batch), "a batch run of `lumina run`")
            assert first.poll() is None, "`lumina run` ended before its batch run was seen"
        finally:
            first.kill()
            first.wait(timeout=30)
        assert instance.get_runs_count(dg.RunsFilter(statuses=IN_PROGRESS)) == 1

        second = subprocess.run(lumina, env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "marked failed, their `lumina run` process died: batch_job" in second.stdout
        assert "catalog trip: 6 files (6 ok)" in second.stdout
        assert instance.get_runs_count(dg.RunsFilter(statuses=IN_PROGRESS)) == 0
        assert instance.get_runs_count(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])) == 1
    finally:
        stop_embedded_server(tmp_path / "home" / "pgdata")
