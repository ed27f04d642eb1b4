"""The real thing: dagster-daemon and dagster-webserver on the embedded PostgreSQL, sensors
noticing photos copied into a watched folder, and their hashes landing in the database."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import text

from lumina_pipeline.storage.database import make_engine
from lumina_pipeline_tests.conftest import prepared_env, stop_embedded_server

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ASSETS = {
    "file_inventory", "metadata", "hashes", "embeddings", "stacks", "duplicate_groups", "bursts", "captions",
    "checksum_verification", "organize_plan", "vector_index",
}
WAIT_SECONDS = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", json.dumps({"query": query}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


def wait_for(condition, what: str, seconds: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if result := condition():
                return result
        except OSError:
            pass  # the webserver is not listening yet
        time.sleep(2)
    pytest.fail(f"gave up after {seconds} s waiting for {what}")


@pytest.fixture
def deployment(tmp_path):
    """A Lumina home with one catalog, plus the daemon and the webserver, stopped afterwards."""
    library = tmp_path / "library"
    library.mkdir()
    env = prepared_env(tmp_path / "home")
    subprocess.run([sys.executable, "-m", "lumina_pipeline.cli", "catalog", "add", "watched", str(library)], env=env,
                   check=True, capture_output=True)
    port, workspace = free_port(), str(PROJECT / "workspace.yaml")
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = [
        subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", workspace], env=env, cwd=PROJECT,
                         stdout=open(logs / "daemon.log", "w"), stderr=subprocess.STDOUT, start_new_session=True),
        subprocess.Popen([str(BIN / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", str(port)],
                         env=env, cwd=PROJECT, stdout=open(logs / "webserver.log", "w"), stderr=subprocess.STDOUT,
                         start_new_session=True),
    ]
    try:
        yield library, port, make_engine(env["LUMINA_DATABASE_URL"])
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError):  # code servers the daemon started may outlive it
                os.killpg(process.pid, signal.SIGKILL)
        stop_embedded_server(Path(env["LUMINA_HOME"]) / "pgdata")


def hashed(engine, names: list[str]) -> bool:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT path FROM images WHERE dhash IS NOT NULL AND status = 'ok'")).scalars()
        return set(names) <= {bytes(path).decode() for path in rows}


def test_photos_copied_into_a_watched_folder_are_cataloged_by_the_daemon(deployment, corpus):
    library, port, engine = deployment
    nodes = wait_for(lambda: graphql(port, "{ assetNodes { assetKey { path } } }")["assetNodes"], "the code location")
    assert {node["assetKey"]["path"][0] for node in nodes} == ASSETS

    # (changes that follow one another under a live daemon: test_run_monitoring's daemon test)
    photos = [corpus.photos / r["path"] for r in corpus.files(expected_status="ok") if r["format"] == "JPEG"][:5]
    for photo in photos:
        shutil.copy(photo, library / photo.name)
    wait_for(lambda: hashed(engine, [p.name for p in photos]), "the photos' hashes")
    with engine.connect() as connection:  # vectors are written in the hashes' transaction
        assert connection.execute(text("SELECT count(*) FROM embeddings_efficientnet_lite0_imagenet")).scalar() == 5

    def succeeded() -> set[str]:  # the batch run ends a moment after its rows are written
        runs = graphql(port, "{ runsOrError { ... on Runs { results { jobName status } } } }")["runsOrError"]["results"]
        return {run["jobName"] for run in runs if run["status"] == "SUCCESS"}

    wait_for(lambda: {"inventory_job", "batch_job"} <= succeeded(), "the inventory and batch runs to succeed", 60)
