"""What the daemon allows at once on one catalog: two inventories, two regroupings, a decision
during a regrouping, two writes of one batch's vectors. Each test starts real processes and
makes them collide (racing.py), then checks the rows; where only a slowed step makes the
interleaving (a walk that ends before a change), two threads with connections of their own."""

import contextlib
import re
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from sqlalchemy import text

from lumina_pipeline.analysis.files import walk_sources
from lumina_pipeline.defs.assets import images, inventory
from lumina_pipeline.models.efficientnet import EfficientNetModel
from lumina_pipeline.storage.decisions import set_rating
from lumina_pipeline.storage.embeddings import embeddings_table, write_embeddings
from lumina_pipeline_tests.defs.conftest import Pipeline, ProjectionModel
from lumina_pipeline_tests.defs.racing import finish, stalled, start, wait_until_waiting


@pytest.fixture
def library(corpus, tmp_path) -> Path:
    """A dozen corpus photos with two exact copies: enough for a group and a few batches' worth of rows."""
    folder = tmp_path / "library"
    folder.mkdir()
    jpegs = [corpus.photos / r["path"] for r in corpus.files(expected_status="ok") if r["format"] == "JPEG"][:12]
    for index, photo in enumerate(jpegs):
        shutil.copy(photo, folder / f"{index:02}.jpg")
    shutil.copy(jpegs[0], folder / "copy-a.jpg")
    shutil.copy(jpegs[0], folder / "copy-b.jpg")
    return folder


def race(pipeline, table: str, *steps: tuple[str, ...]) -> list[tuple[int, str]]:
    """Start every step while writes to `table` are held off; let go once all of them wait."""
    with stalled(pipeline.engine, table):
        processes = []
        for step in steps:
            processes.append(start(step[0], pipeline, *step[1:]))
            wait_until_waiting(pipeline.engine, len(processes))
    return [finish(process) for process in processes]


def count(pipeline, sql: str, catalog: str) -> int:
    with pipeline.engine.connect() as connection:
        return connection.execute(text(sql), {"c": pipeline.catalog_id(catalog)}).scalar_one()


def test_two_inventories_at_once_list_every_file_once(pipeline, library):
    pipeline.add_catalog("twice", str(library))
    outcomes = race(pipeline, "images", ("inventory", "twice"), ("inventory", "twice"))
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    files = count(pipeline, "SELECT count(*) FROM images WHERE catalog_id = :c", "twice")
    assert files == len(list(library.iterdir()))


def test_an_inventory_that_walked_before_a_change_never_writes_over_one_that_walked_after(
    pipeline, library, database_url, engine, embedder, tmp_path, monkeypatch
):
    pipeline.add_catalog("walked", str(library))
    pipeline.inventory("walked")
    walked, written = threading.Event(), threading.Event()

    def slow_walk(folders):  # the first walk ends before the change; its inventory writes after the second's
        walk = walk_sources(folders)
        if not walked.is_set():
            walked.set()
            written.wait(30)
        return walk

    monkeypatch.setattr(inventory, "walk_sources", slow_walk)
    # An ephemeral instance captures no logs: two captures at once in one process (instance_for_test
    # redirects the process's stdout and stderr for each run) once left a run hanging as it ended.
    with ThreadPoolExecutor(2) as pool, dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("catalogs", ["walked"])
        daemon = Pipeline(instance, database_url, str(tmp_path / "thumbnails"), engine, embedder)
        first = pool.submit(daemon.inventory, "walked")
        assert walked.wait(30)
        (library / "00.jpg").unlink()
        shutil.copy(library / "01.jpg", library / "02.jpg")
        second = pool.submit(pipeline.inventory, "walked")
        with contextlib.suppress(TimeoutError):  # the second waits for the first to write (else it is done)
            wait_until_waiting(engine, 1, timeout=10)
        written.set()
        first.result(timeout=60), second.result(timeout=60)
    rows = {bytes(row["path"]): row for row in pipeline.rows("walked")}
    changed = (library / "02.jpg").stat()
    assert rows[b"00.jpg"]["status"] == "deleted"
    assert (rows[b"02.jpg"]["size_bytes"], rows[b"02.jpg"]["mtime_ns"]) == (changed.st_size, changed.st_mtime_ns)


def test_two_runs_of_one_batch_at_once_read_each_file_once(pipeline, library):
    """A hand launch beside the sensor's, or `lumina run` beside the daemon: they take turns."""
    pipeline.add_catalog("read-once", str(library))
    pipeline.inventory("read-once")
    outcomes = race(pipeline, "images", ("analyze", "read-once"), ("analyze", "read-once"))
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    read = sorted(int(re.search(r"files read: (\d+)", output)[1]) for _, output in outcomes)
    assert read == [0, len(list(library.iterdir()))]


def test_two_batches_at_once_whose_files_traded_names_trade_what_was_said_of_them(pipeline, library, tmp_path):
    """One file per batch, names swapped: each batch takes the other's file's marks as it
    writes, and they take turns (the catalog's marks lock) rather than lose some or deadlock."""
    folder = tmp_path / "two"
    folder.mkdir()
    shutil.copy(library / "00.jpg", folder / "a.jpg")
    shutil.copy(library / "01.jpg", folder / "b.jpg")
    pipeline.add_catalog("traded", str(folder), batch_size=1)
    pipeline.catalog_everything("traded")
    ids = {row["path"]: row["id"] for row in pipeline.rows("traded", "id, convert_from(path, 'UTF8') AS path")}
    with pipeline.engine.begin() as connection:
        set_rating(connection, ids["a.jpg"], 5)
        set_rating(connection, ids["b.jpg"], 1)
    (folder / "a.jpg").rename(folder / "swapping.jpg")
    (folder / "b.jpg").rename(folder / "a.jpg")
    (folder / "swapping.jpg").rename(folder / "b.jpg")
    assert pipeline.inventory("traded")["batches_to_process"] == ["00000", "00001"]

    outcomes = race(pipeline, "images", ("analyze", "traded", "00000"), ("analyze", "traded", "00001"))

    assert [code for code, _ in outcomes] == [0, 0], outcomes
    assert not [output for _, output in outcomes if "deadlock detected" in output]  # the step's retry would hide it
    rows = pipeline.rows("traded", "convert_from(path, 'UTF8') AS path, rating")
    assert {row["path"]: row["rating"] for row in rows} == {"a.jpg": 1, "b.jpg": 5}
    assert count(pipeline, "SELECT count(*) FROM parked_marks WHERE catalog_id = :c", "traded") == 0


def test_two_regroupings_at_once_leave_one_set_of_groups(pipeline, library):
    pipeline.add_catalog("regrouped", str(library))
    single, _ = pipeline.catalog_everything("regrouped")
    with pipeline.engine.begin() as connection:  # as before the first regrouping
        connection.execute(text("DELETE FROM duplicate_groups WHERE catalog_id = :c"),
                           {"c": pipeline.catalog_id("regrouped")})
    pipeline.forget_groupings("regrouped")
    outcomes = race(pipeline, "duplicate_groups", ("regroup", "regrouped"), ("regroup", "regrouped"))
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    groups = count(pipeline, "SELECT count(*) FROM duplicate_groups WHERE catalog_id = :c", "regrouped")
    assert groups == single["exact_groups"] + single["near_duplicate_groups"] >= 1


@pytest.mark.parametrize("new_copy", [False, True])
def test_a_decision_saved_during_a_regrouping_is_kept_if_the_members_it_was_made_on_stay(pipeline, library, new_copy):
    pipeline.add_catalog("decided", str(library))
    pipeline.catalog_everything("decided")
    pipeline.forget_groupings("decided")  # so that the regrouping has work to do
    with pipeline.engine.connect() as connection:
        group = connection.execute(text("""SELECT m.group_id FROM duplicate_members m JOIN images i ON i.id = m.image_id
                                           WHERE i.catalog_id = :c AND i.path = 'copy-a.jpg'"""),
                                   {"c": pipeline.catalog_id("decided")}).scalar_one()
        seen = connection.execute(text("SELECT image_id FROM duplicate_members WHERE group_id = :g"),
                                  {"g": group}).scalars().all()
    if new_copy:  # cataloged, not grouped yet: the regrouping adds it to the group the person looks at
        shutil.copy(library / "copy-a.jpg", library / "copy-c.jpg")
        for batch in pipeline.inventory("decided")["batches_to_process"]:
            pipeline.analyze("decided", batch)
    # the regrouping reads the groups, then waits to write; the decision comes in meanwhile
    decision = ("decide", "decided", str(group), *map(str, seen))
    outcomes = race(pipeline, "duplicate_groups", ("regroup", "decided"), decision)
    assert [code for code, _ in outcomes] == [0, 1 if new_copy else 0], outcomes
    assert ("its members changed since it was shown" in outcomes[1][1]) is new_copy
    with pipeline.engine.connect() as connection:
        reviewed = connection.execute(text("SELECT reviewed FROM duplicate_groups WHERE id = :g"),
                                      {"g": group}).scalar()
    assert reviewed is not new_copy


def test_two_writes_of_one_batchs_vectors_at_once_leave_one_vector_per_photo(pipeline, library):
    pipeline.add_catalog("embedded", str(library))
    pipeline.catalog_everything("embedded")
    model = ProjectionModel
    table = embeddings_table(model.model_id, model.dimensions)
    catalog = {"c": pipeline.catalog_id("embedded")}
    with pipeline.engine.begin() as connection:
        rows = pl.DataFrame(
            connection.execute(text(f"SELECT image_id, CAST(catalog_id AS text) AS catalog_id, model_id, "
                                    f"CAST(embedding AS text) AS embedding, CAST(labels AS text) AS labels "
                                    f"FROM {table.name} WHERE catalog_id = :c"), catalog).all(),
            orient="row", schema=["image_id", "catalog_id", "model_id", "embedding", "labels"],
        )
        connection.execute(text(f"DELETE FROM {table.name} WHERE catalog_id = :c"), catalog)
    rows.write_parquet(parquet := library.parent / "vectors.parquet")
    with pipeline.engine.begin() as connection:  # one run's write, not committed yet ...
        write_embeddings(connection, table, rows)
        database = pipeline.resources["database"].url
        arguments = [database, str(parquet), model.model_id, str(model.dimensions)]
        other = subprocess.Popen([sys.executable, "-c", WRITE, *arguments])
        wait_until_waiting(pipeline.engine, 1)  # ... when the other run's write of the same rows comes in
    assert other.wait(timeout=120) == 0
    vectors = count(pipeline, f"SELECT count(*) FROM {table.name} WHERE catalog_id = :c", "embedded")
    assert vectors == len(rows) == len(list(library.iterdir()))


WRITE = """
import sys
import polars as pl
from lumina_pipeline.storage.database import make_engine
from lumina_pipeline.storage.embeddings import embeddings_table, write_embeddings
with make_engine(sys.argv[1]).begin() as connection:
    table = embeddings_table(sys.argv[3], int(sys.argv[4]))
    write_embeddings(connection, table, pl.read_parquet(sys.argv[2]))
"""


def test_a_first_export_of_the_image_model_is_not_hindered_by_another_ones_partial_file(tmp_path):
    cache = tmp_path / "models"
    (cache / "efficientnet-lite0-v2.part").mkdir(parents=True)  # where another first run's export is under way
    model = EfficientNetModel(cache)
    assert model.dimensions == 1280 and (cache / "efficientnet-lite0-v2.onnx").is_file()


def test_a_batch_whose_run_is_canceled_while_it_reads_writes_nothing(pipeline, library, monkeypatch):
    """As a step on a Celery worker, which Terminate does not stop."""
    pipeline.add_catalog("canceled", str(library))
    pipeline.inventory("canceled")
    embed = images.embed_photos

    def canceled_meanwhile(*args):
        [run] = pipeline.instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        pipeline.instance.report_run_canceling(run)
        return embed(*args)

    monkeypatch.setattr(images, "embed_photos", canceled_meanwhile)
    key = dg.MultiPartitionKey({"catalog": "canceled", "batch": "00000"})
    result = dg.materialize([images.photo_analysis], partition_key=key, instance=pipeline.instance,
                            resources=pipeline.resources, raise_on_error=False)

    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert "was canceled while this step read its files: nothing written" in str(failure.step_failure_data.error)
    assert {row["status"] for row in pipeline.rows("canceled", "status")} == {"pending"}
