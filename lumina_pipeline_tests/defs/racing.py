"""Real processes racing on one catalog, and a way to make them meet at the worst moment.

`python -m lumina_pipeline_tests.defs.racing STEP DATABASE_URL THUMBNAILS MODELS CATALOG [ARG...]`
runs one step the way a run worker does: its own process, its own Dagster instance, the shared
database. Tests start two at once while holding a table lock that stalls whichever gets to
that table first, wait until both are blocked in PostgreSQL, then let go: every interleaving
a daemon allows is then the one tested, every time.
"""

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from sqlalchemy import Engine, text

from lumina_pipeline.defs.assets.duplicates import duplicate_groups
from lumina_pipeline.storage.database import make_engine
from lumina_pipeline.storage.decisions import decide
from lumina_pipeline.storage.groups import DUPLICATES
from lumina_pipeline_tests.defs.conftest import Pipeline, ProjectionEmbedder


def start(step: str, pipeline: Pipeline, catalog: str, *args: str) -> subprocess.Popen:
    database = pipeline.resources["database"].url
    thumbnails = pipeline.resources["thumbnails"].root
    models = pipeline.resources["embedder"].cache_dir
    command = [sys.executable, "-m", __name__, step, database, thumbnails, models, catalog, *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


@contextmanager
def stalled(engine: Engine, table: str) -> Iterator[None]:
    """Hold off writes to `table` (reads go on) until the block ends."""
    with engine.begin() as connection:
        connection.execute(text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
        yield


def wait_until_waiting(engine: Engine, count: int, timeout: float = 120.0) -> None:
    """Until `count` other sessions wait for a lock (a table's or an advisory one)."""
    deadline = time.monotonic() + timeout
    query = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.execute(query).scalar_one() >= count:
                return
        time.sleep(0.05)
    raise TimeoutError(f"fewer than {count} sessions ever waited for a lock")


def _run(step: str, database_url: str, thumbnails: str, models: str, catalog: str, *args: str) -> None:
    engine = make_engine(database_url)
    if step == "decide":  # what the review page's POST does: reviewed, no new primary, on the members it showed
        with engine.begin() as connection:
            decide(connection, DUPLICATES, uuid.UUID(args[0]), None, True, seen=[int(arg) for arg in args[1:]] or None)
        return
    batch = args[0] if step == "analyze" and args else "00000"
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("catalogs", [catalog])
        instance.add_dynamic_partitions("batches", [batch])
        pipeline = Pipeline(instance, database_url, thumbnails, engine, ProjectionEmbedder(cache_dir=models))
        if step == "inventory":
            pipeline.inventory(catalog)
        elif step == "analyze":
            print(f"files read: {pipeline.analyze(catalog, batch)['files_read']}")
        elif step == "regroup":
            result = dg.materialize(
                [duplicate_groups], partition_key=catalog, instance=instance, resources=pipeline.resources
            )
            assert result.success


if __name__ == "__main__":
    _run(*sys.argv[1:])
