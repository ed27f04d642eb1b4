"""The code location on Celery (dagster-celery, Redis as broker): a corpus copy cataloged with
every step executed by Celery workers, separate processes started here, and the same rows as
the single-process run.

The inventory and the regrouping run from this process; the batches are three runs started
together, each in a process of its own, as the daemon launches them. Two workers of one process
each (`--pool solo`: the worker's own process executes the step) take the steps as they come.
A worker killed while it executes a step leaves the step to the other one."""

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from celery import Celery
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.storage.catalogs import add_catalog, remove_catalog
from lumina_pipeline.storage.embeddings import embeddings_table
from lumina_pipeline_tests.defs.celery_location import MODULE, PROJECT, run
from lumina_pipeline_tests.defs.conftest import ProjectionModel, pipeline_for_test
from lumina_pipeline_tests.test_deployment import free_port
from lumina_pipeline_tests.test_run_monitoring import wait_for

BATCH_SIZE = 40  # the corpus's 94 files make three batches
WORKERS = ("worker-a", "worker-b")
START_SECONDS = 60
# A step's task not acknowledged after this long goes to another worker: long enough for any
# step of the corpus (a few seconds), short enough to wait for once.
REDELIVER_SECONDS = 20


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def started(command: list[str], log: Path, env: dict | None = None, stdout=None) -> Iterator[subprocess.Popen]:
    """A process of the test's own writing to `log` (its stdout too, unless given), stopped
    when the block ends, however it ends."""
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=stdout or output, stderr=output, env=env,
                                   cwd=PROJECT, text=True)
    try:
        yield process
    finally:
        stop(process)


@dataclass(frozen=True)
class Cluster:
    instance: dg.DagsterInstance  # at `env`'s DAGSTER_HOME
    env: dict[str, str]  # of a deployment's processes
    workers: dict[str, int]  # pid by name


@pytest.fixture
def cluster(database_url, model_cache, tmp_path, monkeypatch) -> Iterator[Cluster]:
    """Redis (Debian's redis-server), two Celery workers and a Dagster instance of their own."""
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        reason = "the Celery test needs Debian's redis-server (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; under CI it must run")
        pytest.skip(reason)
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    (home := tmp_path / "dagster").mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    settings = {
        "LUMINA_CELERY_BROKER": broker, "LUMINA_CELERY_REDELIVER_SECONDS": str(REDELIVER_SECONDS),
        "LUMINA_DATABASE_URL": database_url,
        "LUMINA_THUMBNAIL_DIR": str(tmp_path / "thumbnails"), "LUMINA_MODEL_CACHE": model_cache,
        "LUMINA_CLIP_MODEL": "", "LUMINA_TAG_VOCABULARY": "", "LUMINA_OLLAMA_URL": "", "LUMINA_OLLAMA_MODEL": "",
    }
    for name, value in settings.items():  # this process's runs too hand their steps to Celery
        monkeypatch.setenv(name, value)
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(PROJECT)}  # where the code location is
    celery = [sys.executable, "-m", "celery", "-A", "lumina_pipeline.celery_workers", "worker", "--pool", "solo",
              "--prefetch-multiplier", "1", "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
    with ExitStack() as stack:
        server = stack.enter_context(started(
            [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            tmp_path / "redis.log",
        ))
        workers = {name: stack.enter_context(started([*celery, "-n", f"{name}@%h"], tmp_path / f"{name}.log",
                                                     env))
                   for name in WORKERS}
        with Celery(broker=broker) as app:
            wait_for(lambda: len(app.control.ping(timeout=0.5)) == len(WORKERS), "both Celery workers", START_SECONDS)
        assert server.poll() is None
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
        yield Cluster(instance, env, {name: process.pid for name, process in workers.items()})


def step_pids(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[int]]:
    """The processes that started each step of the run, in order: more than one where a step's
    task went to another worker (its worker killed, or the step outlasting REDELIVER_SECONDS)."""
    starts = [entry.dagster_event for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)]
    pids: dict[str, list[int]] = {}
    for event in starts:
        if event is not None and event.step_key is not None and event.pid is not None:
            pids.setdefault(event.step_key, []).append(event.pid)
    return pids


def catalog_rows(engine, catalog: str) -> list[dict]:
    """Each file's row as the catalog's users see it, with its groups named by their primary file."""
    vectors = embeddings_table(ProjectionModel.model_id, ProjectionModel.dimensions).name
    query = f"""
        SELECT encode(i.path, 'escape') AS path, i.kind, i.status, i.error, i.batch, i.checksum, i.dhash, i.ahash,
               i.whash, i.hash_version, i.quality_score, i.dates, i.metadata, i.geohash_8,
               encode(group_primary.path, 'escape') AS duplicate_of, g.similarity_type, m.similarity_score,
               encode(best.path, 'escape') AS burst_best, i.burst_sequence,
               encode(stack_primary.path, 'escape') AS stack_primary,
               CAST(v.embedding AS text) AS embedding, v.labels
        FROM images i JOIN catalogs c ON c.id = i.catalog_id
        LEFT JOIN duplicate_members m ON m.image_id = i.id
        LEFT JOIN duplicate_groups g ON g.id = m.group_id
        LEFT JOIN images group_primary ON group_primary.id = g.primary_image_id
        LEFT JOIN bursts b ON b.id = i.burst_id LEFT JOIN images best ON best.id = b.best_image_id
        LEFT JOIN stacks s ON s.id = i.stack_id LEFT JOIN images stack_primary ON stack_primary.id = s.primary_image_id
        LEFT JOIN {vectors} v ON v.image_id = i.id
        WHERE c.name = :catalog ORDER BY i.path"""
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text(query), {"catalog": catalog})]


@pytest.fixture(scope="module")
def single(corpus, database_url, engine, embedder, tmp_path_factory) -> Iterator[None]:
    """The corpus copy cataloged in this process as `single`: what the workers must give."""
    thumbnails = str(tmp_path_factory.mktemp("thumbnails"))
    with pipeline_for_test(database_url, engine, embedder, thumbnails) as pipeline:
        pipeline.add_catalog("single", str(corpus.photos), BATCH_SIZE)
        pipeline.catalog_everything("single")
        yield


@pytest.fixture
def catalogs(single, engine, corpus) -> Iterator[None]:
    """The corpus copy as two catalogs: `single` cataloged in this process, `distributed` empty."""
    with Session(engine) as session, session.begin():
        add_catalog(session, "distributed", [str(corpus.photos)], BATCH_SIZE)
    yield
    with Session(engine) as session, session.begin():
        remove_catalog(session, "distributed")


# dagster-celery registers its one task again for every step it hands out; the first stands
@pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")
def test_celery_workers_catalog_the_corpus_as_one_process_does(cluster, catalogs, engine, corpus, tmp_path):
    instance = cluster.instance
    instance.add_dynamic_partitions("catalogs", ["distributed"])
    inventory = run("inventory_job", "distributed", instance)
    batches = instance.get_dynamic_partitions("batches")
    assert len(batches) == 3
    keys = [str(dg.MultiPartitionKey({"catalog": "distributed", "batch": batch})) for batch in batches]
    logs = [tmp_path / f"run-{batch}.log" for batch in batches]
    with ExitStack() as stack:
        runs = [stack.enter_context(started([sys.executable, "-m", MODULE, "batch_job", key], log, cluster.env,
                                            subprocess.PIPE))
                for key, log in zip(keys, logs, strict=True)]
        for process in runs:  # all loaded: start them together, as the daemon's queue does
            assert process.stdout is not None and process.stdout.readline() == "ready\n"
        for process in runs:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.close()
        exits = [process.wait(timeout=300) for process in runs]
    assert exits == [0] * len(runs), [log.read_text() for log in logs]
    regrouping = run("catalog_job", "distributed", instance)

    workers = set(cluster.workers.values())
    batch_runs = instance.get_runs(dg.RunsFilter(job_name="batch_job"))
    assert sorted(batch_run.tags["dagster/partition"] for batch_run in batch_runs) == sorted(keys)
    assert all(batch_run.status == dg.DagsterRunStatus.SUCCESS for batch_run in batch_runs)
    for run_id in (inventory.run_id, regrouping.run_id, *(batch_run.run_id for batch_run in batch_runs)):
        started_by = {pid for pids in step_pids(instance, run_id).values() for pid in pids}
        assert started_by <= workers  # no step in a run's own process
    # the worker that took each batch first (a batch slower than REDELIVER_SECONDS also runs on the other)
    taken_by = {batch_run.tags["dagster/partition"]: step_pids(instance, batch_run.run_id)["photo_analysis"][0]
                for batch_run in batch_runs}
    assert set(taken_by.values()) == workers, taken_by  # each worker took a batch

    single, distributed = catalog_rows(engine, "single"), catalog_rows(engine, "distributed")
    assert len(distributed) == len(corpus.manifest["files"])
    assert {row["status"] for row in distributed} >= {"ok", "error"}
    assert any(row["duplicate_of"] for row in distributed) and any(row["burst_best"] for row in distributed)
    assert distributed == single


@pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")
def test_the_step_of_a_worker_killed_midway_is_taken_by_the_other_worker(cluster, catalogs, engine, tmp_path):
    instance = cluster.instance
    instance.add_dynamic_partitions("catalogs", ["distributed"])
    run("inventory_job", "distributed", instance)
    first, *others = instance.get_dynamic_partitions("batches")
    key = str(dg.MultiPartitionKey({"catalog": "distributed", "batch": first}))
    with started([sys.executable, "-m", MODULE, "batch_job", key], tmp_path / "run.log", cluster.env,
                 subprocess.PIPE) as batch:
        assert batch.stdout is not None and batch.stdout.readline() == "ready\n"
        assert batch.stdin is not None
        batch.stdin.write("go\n")
        batch.stdin.close()
        batch_run = wait_for(lambda: next(iter(instance.get_runs(dg.RunsFilter(job_name="batch_job"))), None),
                             "the batch run", START_SECONDS)
        killed = wait_for(lambda: step_pids(instance, batch_run.run_id).get("photo_analysis"), "the step's start")[0]
        os.kill(killed, signal.SIGKILL)
        assert batch.wait(timeout=REDELIVER_SECONDS + 120) == 0, (tmp_path / "run.log").read_text()

    [survivor] = set(cluster.workers.values()) - {killed}
    assert step_pids(instance, batch_run.run_id)["photo_analysis"][-1] == survivor
    assert instance.get_run_by_id(batch_run.run_id).status == dg.DagsterRunStatus.SUCCESS
    for batch in others:
        run("batch_job", str(dg.MultiPartitionKey({"catalog": "distributed", "batch": batch})), instance)
    run("catalog_job", "distributed", instance)
    assert catalog_rows(engine, "distributed") == catalog_rows(engine, "single")
