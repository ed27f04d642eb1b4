"""Sensors, schedules and the webserver with the partition grid the batch-size rule allows at
its edge: 20 catalogs x 1,000 batches registered, every `metadata` partition materialized.

Targets: each sensor and schedule evaluates in under 10 s; the webserver answers the `metadata`
asset's partition status query in under 5 s."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
from sqlalchemy.orm import Session

from benchmarks.foundation import make_tiny_tree
from lumina_pipeline import home
from lumina_pipeline.analysis.inventory import BATCH_KEY_DIGITS
from lumina_pipeline.analysis.photos import ANALYSIS_VERSION
from lumina_pipeline.defs.partitions import BATCHES, CATALOGS
from lumina_pipeline.defs.resources import CatalogDatabase, FolderWatch
from lumina_pipeline.defs.schedules import nightly_backfill_schedule
from lumina_pipeline.defs.sensors import catalog_sensor, folder_change_sensor, inventory_followup_sensor
from lumina_pipeline.storage.catalogs import add_catalog
from lumina_pipeline.storage.database import make_engine, stop_embedded_server
from lumina_pipeline.storage.frames import copy_into

CATALOG_COUNT, BATCH_COUNT = 20, 1_000
FILES_PER_CATALOG = 200
PENDING_SHARE = 10  # one batch in ten holds a file to read, so the schedule has runs to request
PROJECT = Path(__file__).resolve().parent.parent
STATUS_QUERY = """{ assetNodeOrError(assetKey: {path: ["metadata"]}) { ... on AssetNode {
    partitionStats { numMaterialized numPartitions numFailed }
    assetPartitionStatuses { ... on MultiPartitionStatuses { primaryDimensionName ranges {
        primaryDimStartKey primaryDimEndKey
        secondaryDim { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } } } } } } }"""


@contextmanager
def lumina_home():
    """A Lumina home of its own (database and Dagster instance), the environment restored after."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="lumina-partitions-") as folder:
        os.environ["LUMINA_HOME"] = folder
        place = home.prepare()
        try:
            yield place
        finally:
            stop_embedded_server(place.root / "pgdata")
            os.environ.clear()
            os.environ.update(saved)


def fill(place: home.Home, instance: dg.DagsterInstance) -> None:
    """The catalogs, one images row per batch, the partitions, a materialization of each and an
    inventory of each catalog."""
    keys = [f"{n:0{BATCH_KEY_DIGITS}d}" for n in range(BATCH_COUNT)]
    names = [f"catalog{n:02d}" for n in range(CATALOG_COUNT)]
    with Session(make_engine(place.database_url)) as session, session.begin():
        for name in names:
            catalog = add_catalog(session, name, [str(make_tiny_tree(place.root / "photos" / name, FILES_PER_CATALOG))])
            copy_into(session.connection(), "images", pl.DataFrame({
                "catalog_id": str(catalog.id), "source_root": "/nowhere", "kind": "image", "size_bytes": 1,
                "mtime_ns": 0, "batch": keys, "path": [f"{key}.jpg".encode() for key in keys],
                "status": ["pending" if n % PENDING_SHARE == 0 else "ok" for n in range(BATCH_COUNT)],
                "analysis_version": ANALYSIS_VERSION,
            }))
    instance.add_dynamic_partitions(CATALOGS, names)
    instance.add_dynamic_partitions(BATCHES, keys)
    for name in names:  # an inventory of each, for the follow-up sensor to start its batches
        instance.report_runless_asset_event(dg.AssetMaterialization("file_inventory", partition=name,
                                                                    metadata={"new": 0, "changed": 0, "deleted": 0}))
    partitions = [dg.MultiPartitionKey({"catalog": name, "batch": key}) for name in names for key in keys]
    with ThreadPoolExecutor(8) as pool:  # one event per round trip: several at once
        list(pool.map(lambda key: instance.report_runless_asset_event(
            dg.AssetMaterialization("metadata", partition=key)), partitions))


def evaluations(instance: dg.DagsterInstance) -> dict[str, tuple[float, str]]:
    """Seconds and outcome of one evaluation of each sensor and schedule that reads the grid."""
    resources = {"database": CatalogDatabase(url=os.environ["LUMINA_DATABASE_URL"]), "folder_watch": FolderWatch()}
    timings = {}
    for sensor in (catalog_sensor, folder_change_sensor, inventory_followup_sensor):
        started = time.perf_counter()
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            result = sensor(context)
        timings[sensor.name] = (time.perf_counter() - started, f"{len(result.run_requests or [])} runs requested")
    started = time.perf_counter()
    night = datetime.now(UTC)
    with dg.build_schedule_context(instance=instance, resources=resources, scheduled_execution_time=night) as context:
        requests = nightly_backfill_schedule(context)
    timings[nightly_backfill_schedule.name] = (time.perf_counter() - started, f"{len(requests)} runs requested")
    return timings


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", json.dumps({"query": query}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["data"]


def status_query_seconds(port: int) -> tuple[list[float], dict]:
    """The webserver's answers to the partition status query: seconds of a first and two more."""
    seconds, answer = [], {}
    for _ in range(3):
        started = time.perf_counter()
        answer = graphql(port, STATUS_QUERY)["assetNodeOrError"]
        seconds.append(time.perf_counter() - started)
    return seconds, answer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def webserver(port: int):
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", str(PROJECT / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                graphql(port, "{ assetNodes { id } }")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def run() -> None:
    with lumina_home() as place, dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        fill(place, instance)
        filled = time.perf_counter() - started
        timings = evaluations(instance)
        port = free_port()
        with webserver(port):
            seconds, answer = status_query_seconds(port)
    print(f"\n== {CATALOG_COUNT} catalogs x {BATCH_COUNT:,} batches registered, "
          f"{CATALOG_COUNT * BATCH_COUNT:,} metadata partitions materialized ({filled:.0f} s to set up) ==")
    for name, (spent, outcome) in timings.items():
        print(f"  {name}: {spent:.2f} s ({outcome}; target < 10 s)")
    stats = answer["partitionStats"]
    print(f"  webserver, metadata partition status ({stats['numMaterialized']:,} of {stats['numPartitions']:,} "
          f"materialized): first {seconds[0]:.2f} s, then {min(seconds[1:]):.2f} s (target < 5 s)")


if __name__ == "__main__":
    run()
