"""The folder-change sensor's tick on a catalog of 100,000 files, against a bare walk."""

import time

import dagster as dg
from sqlalchemy.orm import Session

from benchmarks import scratch_database
from benchmarks.foundation import bare_walk, make_tiny_tree, timed
from lumina_pipeline.defs.resources import CatalogDatabase, FolderWatch
from lumina_pipeline.defs.sensors import folder_change_sensor
from lumina_pipeline.storage.catalogs import add_catalog
from lumina_pipeline.storage.database import make_engine

FILES = 100_000


def tick(instance, database, cursor):
    started = time.perf_counter()
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"database": database, "folder_watch": FolderWatch()}
    ) as context:
        result = folder_change_sensor(context)
    return time.perf_counter() - started, result


def run() -> None:
    with scratch_database() as (root, url):
        tree = make_tiny_tree(root / "library", FILES)
        with Session(make_engine(url)) as session, session.begin():
            add_catalog(session, "bench", [str(tree)])
        database = CatalogDatabase(url=url)
        with dg.instance_for_test() as instance:
            _, first = tick(instance, database, None)
            bare = min(timed(bare_walk, str(tree)) for _ in range(3))
            quiet = min(tick(instance, database, first.cursor)[0] for _ in range(3))
            (tree / "new").mkdir()
            for index in range(100):
                (tree / "new" / f"{index:03d}.jpg").write_bytes(b"y")
            changed, result = tick(instance, database, first.cursor)
        print(f"\n== folder-change sensor tick, one catalog of {FILES:,} files ==")
        print(f"  bare os.scandir walk with stat {bare:.2f} s")
        print(f"  no change: {quiet:.2f} s = {quiet / bare:.2f}x the walk (target <= 1.5x)")
        print(f"  100 new files: {changed:.2f} s = {changed / bare:.2f}x, "
              f"{len(result.run_requests)} inventory run requested")
