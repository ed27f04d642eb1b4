"""Sensors and schedules with Dagster's test contexts, a real instance and the embedded database."""

import os
import shutil
from datetime import datetime

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.utils import make_new_run_id
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.photos import ANALYSIS_VERSION
from lumina_pipeline.definitions import defs
from lumina_pipeline.defs import sensors
from lumina_pipeline.defs.assets.captions import captions
from lumina_pipeline.defs.assets.images import photo_analysis
from lumina_pipeline.defs.assets.inventory import file_inventory
from lumina_pipeline.defs.checks import every_photo_is_analyzed
from lumina_pipeline.defs.jobs import CHANGE_TAG, FOLLOWED_UP_BY_TAG, batch_job
from lumina_pipeline.defs.partitions import CATALOGS
from lumina_pipeline.defs.resources import CatalogDatabase, FolderWatch, OllamaVision, SentenceModel
from lumina_pipeline.defs.schedules import nightly_backfill_schedule
from lumina_pipeline.defs.sensors import (
    BACKFILL_TAG,
    FAILED_BATCHES_TAG,
    catalog_sensor,
    folder_change_sensor,
    grouping_after_batches_sensor,
    grouping_after_canceled_batches_sensor,
    grouping_after_failed_batches_sensor,
    inventory_followup_sensor,
)
from lumina_pipeline.storage.catalogs import add_catalog, list_catalogs, remove_catalog
from lumina_pipeline.storage.images import pending_batches, waiting_batches


def photos(corpus, count, skip=0):
    jpegs = [corpus.photos / r["path"] for r in corpus.files(expected_status="ok") if r["format"] == "JPEG"]
    return jpegs[skip : skip + count]


@pytest.fixture
def library(corpus, tmp_path):
    folder = tmp_path / "library"
    folder.mkdir()
    for index, photo in enumerate(photos(corpus, 5)):
        shutil.copy(photo, folder / f"{index}.jpg")
    return folder


def tick(sensor, pipeline, cursor=None, budget=40.0):
    resources = {**pipeline.resources, "folder_watch": FolderWatch(tick_budget_seconds=budget)}
    with dg.build_sensor_context(instance=pipeline.instance, cursor=cursor, resources=resources) as context:
        return sensor(context)


def test_a_new_catalog_becomes_a_partition_and_a_removed_one_goes(pipeline, library):
    with Session(pipeline.engine) as session, session.begin():
        add_catalog(session, "fresh", [str(library)])
    pipeline.catalogs.append("fresh")
    pipeline.instance.add_dynamic_partitions("catalogs", ["gone"])
    result = tick(catalog_sensor, pipeline)
    added, removed, _ = result.dynamic_partitions_requests
    assert "fresh" in added.partition_keys and "gone" not in added.partition_keys
    assert removed.partition_keys == ["gone"]


def test_a_catalog_added_while_the_sensor_looks_keeps_its_partition(pipeline, library, monkeypatch):
    def added_meanwhile(session):  # `lumina catalog add` commits its row, then adds the partition
        found = list_catalogs(session)
        with Session(pipeline.engine) as other, other.begin():
            add_catalog(other, "meanwhile", [str(library)])
        pipeline.catalogs.append("meanwhile")
        pipeline.instance.add_dynamic_partitions("catalogs", ["meanwhile"])
        return found

    monkeypatch.setattr(sensors, "list_catalogs", added_meanwhile)
    _, removed, _ = tick(catalog_sensor, pipeline).dynamic_partitions_requests
    assert "meanwhile" not in removed.partition_keys


def test_batches_an_interrupted_inventory_left_unregistered_are_registered_from_the_database(pipeline, library):
    pipeline.add_catalog("interrupted", str(library), batch_size=2)
    pipeline.inventory("interrupted")
    for batch in ("00000", "00001", "00002"):  # as if the run was killed before registering them
        pipeline.instance.delete_dynamic_partition("batches", batch)
    assert tick(catalog_sensor, pipeline).dynamic_partitions_requests[2].partition_keys == ["00000", "00001", "00002"]
    assert pipeline.inventory("interrupted")["new"] == 0
    assert pipeline.instance.get_dynamic_partitions("batches") == ["00000", "00001", "00002"]


def test_catching_up_requests_only_the_batches_that_still_have_files_to_read(pipeline, library):
    pipeline.add_catalog("behind", str(library), batch_size=2)
    pipeline.inventory("behind")
    for batch in ("00000", "00001"):  # read by other runs while the daemon was down
        pipeline.analyze("behind", batch)
    requests = tick(inventory_followup_sensor, pipeline).run_requests
    assert [r.partition_key.keys_by_dimension["batch"] for r in requests] == ["00002"]


def test_an_inventory_of_lumina_run_is_left_to_it_and_a_later_one_of_the_daemon_is_followed(pipeline, library):
    pipeline.add_catalog("handmade", str(library), batch_size=2)
    dg.materialize([file_inventory], partition_key="handmade", instance=pipeline.instance,
                   resources=pipeline.resources, tags={FOLLOWED_UP_BY_TAG: "lumina run"})
    by_lumina_run = tick(inventory_followup_sensor, pipeline)
    assert by_lumina_run.run_requests == []
    pipeline.inventory("handmade")  # the daemon's, while those files are still to read
    requests = tick(inventory_followup_sensor, pipeline, by_lumina_run.cursor).run_requests
    assert [r.partition_key.keys_by_dimension["batch"] for r in requests] == ["00000", "00001", "00002"]


def test_changed_folders_get_one_inventory_run_then_runs_for_the_touched_batch_only(pipeline, library, corpus):
    pipeline.add_catalog("watched", str(library), batch_size=5)
    first = tick(folder_change_sensor, pipeline)
    assert [r.partition_key for r in first.run_requests] == ["watched"]
    pipeline.catalog_everything("watched")
    quiet = tick(folder_change_sensor, pipeline, first.cursor)
    assert quiet.run_requests == []

    for index, photo in enumerate(photos(corpus, 2, skip=5)):
        shutil.copy(photo, library / f"new-{index}.jpg")
    changed = tick(folder_change_sensor, pipeline, quiet.cursor)
    assert [r.partition_key for r in changed.run_requests] == ["watched"]
    assert tick(folder_change_sensor, pipeline, changed.cursor).run_requests == []

    seen = tick(inventory_followup_sensor, pipeline).cursor  # everything before this change
    pipeline.inventory("watched")
    followup = tick(inventory_followup_sensor, pipeline, seen)
    assert [r.partition_key.keys_by_dimension for r in followup.run_requests] == [
        {"batch": "00001", "catalog": "watched"}
    ]
    assert tick(inventory_followup_sensor, pipeline, followup.cursor).run_requests == []


def test_a_library_already_cataloged_starts_no_run_when_the_sensor_first_sees_it(pipeline, library, corpus):
    pipeline.add_catalog("known", str(library))
    pipeline.catalog_everything("known")
    (library / "sub").mkdir()
    shutil.copy(library / "0.jpg", library / "sub" / "copy.jpg")  # files below a top-level folder count too
    pipeline.catalog_everything("known")
    first = tick(folder_change_sensor, pipeline)
    assert first.run_requests == []
    (library / "1.jpg").unlink()
    assert [r.partition_key for r in tick(folder_change_sensor, pipeline, first.cursor).run_requests] == ["known"]


def test_a_library_with_files_in_quarantine_starts_no_run_when_the_sensor_first_sees_it(pipeline, library, tmp_path):
    pipeline.add_catalog("tidied", str(library))
    pipeline.catalog_everything("tidied")
    (library / "1.jpg").rename(tmp_path / "1.jpg")  # as a quarantine moves it aside
    with pipeline.engine.begin() as connection:
        connection.execute(text("""UPDATE images SET status = 'quarantined' WHERE path = '1.jpg'
                                   AND catalog_id = (SELECT id FROM catalogs WHERE name = 'tidied')"""))
    assert tick(folder_change_sensor, pipeline).run_requests == []


def test_a_change_whose_inventory_failed_is_asked_for_again_until_one_succeeds(pipeline, library):
    pipeline.add_catalog("retried", str(library))
    pipeline.catalog_everything("retried")
    cursor = tick(folder_change_sensor, pipeline).cursor
    shutil.copy(library / "0.jpg", library / "new.jpg")
    keys = []
    for database in ("postgresql://nobody@127.0.0.1:1/none", pipeline.resources["database"].url):  # down, then up
        asked = tick(folder_change_sensor, pipeline, cursor)
        [request], cursor = asked.run_requests, asked.cursor
        assert tick(folder_change_sensor, pipeline, cursor).run_requests == []  # asked once, while its run is to come
        resources = {**pipeline.resources, "database": CatalogDatabase(url=database)}
        run = dg.materialize([file_inventory], partition_key="retried", instance=pipeline.instance,
                             resources=resources, tags={"dagster/run_key": request.run_key}, raise_on_error=False)
        keys.append((request.run_key, run.success))
    assert [success for _, success in keys] == [False, True] and keys[0][0] != keys[1][0]
    assert tick(folder_change_sensor, pipeline, cursor).run_requests == []
    assert b"new.jpg" in {bytes(row["path"]) for row in pipeline.rows("retried", "path")}


def test_a_catalog_too_big_for_one_tick_is_walked_over_several(pipeline, library):
    for folder in ("a", "b"):
        (library / folder).mkdir()
        shutil.copy(library / "0.jpg", library / folder / "x.jpg")
    pipeline.add_catalog("huge", str(library))
    cursors = [None]
    for _ in range(2):  # with no time budget a tick walks one unit: own files, then a, then b
        result = tick(folder_change_sensor, pipeline, cursors[-1], budget=0)
        assert result.run_requests == []
        cursors.append(result.cursor)
    requests = tick(folder_change_sensor, pipeline, cursors[-1], budget=0).run_requests
    assert [r.partition_key for r in requests] == ["huge"]


def test_a_deleted_photo_is_marked_deleted_and_the_catalog_regrouped(pipeline, library):
    pipeline.add_catalog("shrinking", str(library))
    pipeline.catalog_everything("shrinking")
    seen = tick(inventory_followup_sensor, pipeline).cursor
    (library / "0.jpg").unlink()
    pipeline.inventory("shrinking")
    followup = tick(inventory_followup_sensor, pipeline, seen)
    assert [(r.job_name, r.partition_key) for r in followup.run_requests] == [("catalog_job", "shrinking")]
    statuses = {bytes(row["path"]): row["status"] for row in pipeline.rows("shrinking", "path, status")}
    assert statuses[b"0.jpg"] == "deleted"


def test_a_new_sidecar_no_batch_reads_regroups_the_catalog_at_once(pipeline, library):
    pipeline.add_catalog("annotated", str(library))
    pipeline.catalog_everything("annotated")
    seen = tick(inventory_followup_sensor, pipeline).cursor
    (library / "0.xmp").write_text("<x:xmpmeta/>")  # a stack gains it, once regrouped
    assert pipeline.inventory("annotated")["batches_to_process"] == []
    followup = tick(inventory_followup_sensor, pipeline, seen)
    assert [(r.job_name, r.partition_key) for r in followup.run_requests] == [("catalog_job", "annotated")]


def test_grouping_follows_once_the_last_batch_of_a_change_is_done(pipeline, library):
    pipeline.add_catalog("followed", str(library), batch_size=3)
    pipeline.inventory("followed")
    definitions = dg.Definitions(assets=pipeline.assets, jobs=[batch_job], resources=pipeline.resources)
    job = definitions.resolve_job_def(batch_job.name)
    results = [
        job.execute_in_process(
            partition_key=dg.MultiPartitionKey({"catalog": "followed", "batch": batch}),
            instance=pipeline.instance, tags={CHANGE_TAG: "change-1"},
        )
        for batch in ("00000", "00001")
    ]
    context = dg.build_run_status_sensor_context(
        sensor_name=grouping_after_batches_sensor.name, dagster_instance=pipeline.instance,
        dagster_run=results[-1].dagster_run, dagster_event=results[-1].get_run_success_event(),
    )
    [request] = grouping_after_batches_sensor(context)
    assert (request.partition_key, request.run_key) == ("followed", "change-1:followed:catalog")


def test_grouping_follows_a_change_whose_last_batch_failed_and_names_it(pipeline, library):
    pipeline.add_catalog("failing", str(library), batch_size=3)
    pipeline.inventory("failing")

    def run_batch(batch: str, resources: dict) -> dg.ExecuteInProcessResult:
        definitions = dg.Definitions(assets=pipeline.assets, jobs=[batch_job], resources=resources)
        return definitions.resolve_job_def(batch_job.name).execute_in_process(
            partition_key=dg.MultiPartitionKey({"catalog": "failing", "batch": batch}),
            instance=pipeline.instance, tags={CHANGE_TAG: "change-2"}, raise_on_error=False,
        )

    assert run_batch("00000", pipeline.resources).success
    unreachable = {**pipeline.resources, "database": CatalogDatabase(url="postgresql://lumina@127.0.0.1:9/none")}
    failed = run_batch("00001", unreachable)  # the database went away during this batch
    assert not failed.success
    context = dg.build_run_status_sensor_context(
        sensor_name=grouping_after_failed_batches_sensor.name, dagster_instance=pipeline.instance,
        dagster_run=failed.dagster_run, dagster_event=failed.get_run_failure_event(),
    )
    [request] = grouping_after_failed_batches_sensor(context)
    assert (request.partition_key, request.run_key) == ("failing", "change-2:failing:catalog")
    assert request.tags[FAILED_BATCHES_TAG] == "00001"


def run_batches(pipeline, catalog: str, tags_by_batch: dict[str, dict]) -> list[dg.ExecuteInProcessResult]:
    definitions = dg.Definitions(assets=pipeline.assets, jobs=[batch_job], resources=pipeline.resources)
    job = definitions.resolve_job_def(batch_job.name)
    return [job.execute_in_process(partition_key=dg.MultiPartitionKey({"catalog": catalog, "batch": batch}),
                                   instance=pipeline.instance, tags=tags)
            for batch, tags in tags_by_batch.items()]


def evaluated(sensor: dg.RunStatusSensorDefinition, pipeline, cursor: str | None):
    """One tick of a run status sensor over the instance's runs, as the daemon evaluates it."""
    with (dg.build_sensor_context(instance=pipeline.instance, cursor=cursor, definitions=defs()) as context,
          dg.partition_loading_context(dynamic_partitions_store=pipeline.instance)):
        return sensor.evaluate_tick(context)


def test_one_tick_goes_past_batch_runs_with_nothing_to_follow_up(pipeline, library):
    """Dagster ends a run status sensor's tick at the first run its function answers for:
    each batch of a `lumina run` (which regroups itself) held the regroupings behind it back
    by a tick."""
    pipeline.add_catalog("busy", str(library), batch_size=2)
    pipeline.inventory("busy")
    started = evaluated(grouping_after_batches_sensor, pipeline, None)  # it starts from now
    by_lumina_run = {FOLLOWED_UP_BY_TAG: "lumina run"}
    run_batches(pipeline, "busy", {"00000": by_lumina_run, "00001": by_lumina_run, "00002": {CHANGE_TAG: "change-3"}})
    requests = evaluated(grouping_after_batches_sensor, pipeline, started.cursor).run_requests
    assert [(r.partition_key, r.run_key) for r in requests] == [("busy", "change-3:busy:catalog")]


def test_a_batch_launched_alone_and_a_backfill_once_it_launched_every_batch_are_regrouped(pipeline, library):
    """As the Launchpad and a job's backfill launch them, without a change of the sensors'."""
    pipeline.add_catalog("launched", str(library), batch_size=2)
    pipeline.inventory("launched")
    [alone] = run_batches(pipeline, "launched", {"00000": {}})
    [request] = grouping_after_batches_sensor(success_context(pipeline, alone))
    assert request.run_key == f"{alone.run_id}:launched:catalog"

    partitions = [f"{batch}|launched" for batch in ("00000", "00001", "00002")]
    pipeline.instance.add_backfill(PartitionBackfill(
        backfill_id="fill", status=BulkActionStatus.REQUESTED, from_failure=False, tags={},
        backfill_timestamp=datetime.now().timestamp(), partition_names=partitions))
    filling = {BACKFILL_TAG: "fill"}
    _, second = run_batches(pipeline, "launched", {"00000": filling, "00001": filling})
    assert grouping_after_batches_sensor(success_context(pipeline, second)) is None  # 00002 is not launched yet
    [last] = run_batches(pipeline, "launched", {"00002": filling})
    [request] = grouping_after_batches_sensor(success_context(pipeline, last))
    assert request.run_key == "fill:launched:catalog"

    pipeline.add_catalog("launched-too", str(library), batch_size=2)  # a backfill over two catalogs
    pipeline.inventory("launched-too")
    pipeline.instance.add_backfill(PartitionBackfill(
        backfill_id="both", status=BulkActionStatus.REQUESTED, from_failure=False, tags={},
        backfill_timestamp=datetime.now().timestamp(), partition_names=["00000|launched", "00000|launched-too"]))
    run_batches(pipeline, "launched", {"00000": {BACKFILL_TAG: "both"}})
    [last] = run_batches(pipeline, "launched-too", {"00000": {BACKFILL_TAG: "both"}})
    requests = grouping_after_batches_sensor(success_context(pipeline, last))
    assert [r.partition_key for r in requests] == ["launched", "launched-too"]


def test_batches_materialized_from_the_asset_graph_are_regrouped_alone_or_once_their_backfill_launched_all(
        pipeline, library):
    """The UI's Materialize and an asset backfill run the batch's assets in Dagster's asset job,
    not batch_job; a captions run of the same partition is no batch read."""
    pipeline.add_catalog("graph", str(library), batch_size=2)
    pipeline.inventory("graph")
    repository = defs().get_repository_def()
    sentences = SentenceModel(cache_dir=pipeline.resources["embedder"].cache_dir)
    resources = {**pipeline.resources, "vision": OllamaVision(), "sentences": sentences}  # no server: none asked
    graph = dg.Definitions(assets=[*pipeline.assets, captions], asset_checks=[every_photo_is_analyzed],
                           resources=resources)
    asset_job = graph.resolve_implicit_global_asset_job_def()

    def materialized(batch: str, selected: list, tags: dict) -> dg.RunStatusSensorContext:
        keys = [key for assets in selected for key in assets.keys]
        result = asset_job.execute_in_process(asset_selection=keys, partition_key=f"{batch}|graph", tags=tags,
                                              instance=pipeline.instance)
        assert not result.get_asset_check_evaluations()  # asked as the regrouping ends, not by each batch
        return dg.build_run_status_sensor_context(
            sensor_name=grouping_after_batches_sensor.name, dagster_instance=pipeline.instance,
            dagster_run=result.dagster_run, dagster_event=result.get_run_success_event(), repository_def=repository)

    started = evaluated(grouping_after_batches_sensor, pipeline, None)  # as the daemon: it starts from now
    alone = materialized("00000", [photo_analysis], {})
    materialized("00001", [captions], {})
    requests = evaluated(grouping_after_batches_sensor, pipeline, started.cursor).run_requests
    assert [(r.partition_key, r.run_key) for r in requests] == [("graph", f"{alone.dagster_run.run_id}:graph:catalog")]

    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id="graph-fill", asset_graph=repository.asset_graph, partition_names=["00001|graph", "00002|graph"],
        asset_selection=sorted(photo_analysis.keys), backfill_timestamp=datetime.now().timestamp(), tags={},
        dynamic_partitions_store=pipeline.instance, all_partitions=False, title=None, description=None,
        run_config=None)
    pipeline.instance.add_backfill(backfill)
    filling = {BACKFILL_TAG: "graph-fill"}
    assert grouping_after_batches_sensor(materialized("00001", [photo_analysis], filling)) is None  # 00002 waits
    launching = backfill.get_asset_backfill_data(repository.asset_graph)
    pipeline.instance.update_backfill(backfill.with_asset_backfill_data(  # as the daemon, launching 00002
        launching.replace_requested_subset(launching.target_subset), pipeline.instance, repository.asset_graph))
    [request] = grouping_after_batches_sensor(materialized("00002", [photo_analysis], filling))
    assert request.run_key == "graph-fill:graph:catalog"


def success_context(pipeline, result: dg.ExecuteInProcessResult) -> dg.RunStatusSensorContext:
    return dg.build_run_status_sensor_context(
        sensor_name=grouping_after_batches_sensor.name, dagster_instance=pipeline.instance,
        dagster_run=result.dagster_run, dagster_event=result.get_run_success_event(),
    )


def test_a_change_whose_last_batch_was_canceled_is_regrouped_and_names_it(pipeline, library):
    pipeline.add_catalog("stopped", str(library), batch_size=3)
    pipeline.inventory("stopped")
    started = evaluated(grouping_after_canceled_batches_sensor, pipeline, None)
    run_batches(pipeline, "stopped", {"00000": {CHANGE_TAG: "change-4"}})
    canceled = pipeline.instance.add_run(dg.DagsterRun(
        job_name=batch_job.name, run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
        tags={CHANGE_TAG: "change-4", "dagster/partition/catalog": "stopped", "dagster/partition/batch": "00001",
              "dagster/partition": "00001|stopped"}))
    pipeline.instance.report_run_canceled(canceled)  # Terminate in the UI
    [request] = evaluated(grouping_after_canceled_batches_sensor, pipeline, started.cursor).run_requests
    assert (request.partition_key, request.run_key) == ("stopped", "change-4:stopped:catalog")
    assert request.tags[FAILED_BATCHES_TAG] == "00001"


def test_the_follow_up_sensors_pass_over_a_removed_catalog(pipeline, library):
    pipeline.add_catalog("gone", str(library), batch_size=3)
    inventoried = tick(inventory_followup_sensor, pipeline)
    pipeline.inventory("gone")
    started = evaluated(grouping_after_batches_sensor, pipeline, None)
    run_batches(pipeline, "gone", {"00000": {CHANGE_TAG: "change-5"}, "00001": {CHANGE_TAG: "change-5"}})
    with Session(pipeline.engine) as session, session.begin():
        remove_catalog(session, "gone")
    pipeline.catalogs.remove("gone")
    pipeline.instance.delete_dynamic_partition(CATALOGS, "gone")  # as `lumina catalog remove` does

    assert tick(inventory_followup_sensor, pipeline, inventoried.cursor).run_requests == []
    assert evaluated(grouping_after_batches_sensor, pipeline, started.cursor).run_requests == []


def test_a_catalog_removed_and_added_again_is_inventoried_again(pipeline, library):
    """Its cursor entry and its run keys are new: the daemon skips a run key it has seen."""
    pipeline.add_catalog("again", str(library))
    [first] = (seen := tick(folder_change_sensor, pipeline)).run_requests
    with Session(pipeline.engine) as session, session.begin():
        remove_catalog(session, "again")
    pipeline.catalogs.remove("again")
    pipeline.add_catalog("again", str(library))
    [second] = tick(folder_change_sensor, pipeline, seen.cursor).run_requests
    assert (first.partition_key, second.partition_key) == ("again", "again") and first.run_key != second.run_key


def test_the_nightly_schedule_requests_only_real_batches_that_are_missing_or_stale(pipeline, library, corpus, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    shutil.copy(photos(corpus, 1)[0], small / "one.jpg")
    pipeline.add_catalog("big", str(library), batch_size=2)  # batches 00000-00002
    pipeline.add_catalog("small", str(small), batch_size=2)  # batch 00000 only
    assert waiting(pipeline, "big") is None  # not walked yet: `lumina run` counts its files
    pipeline.inventory("big")
    pipeline.inventory("small")
    assert waiting(pipeline, "big") == 3

    def requested():
        with dg.build_schedule_context(
            instance=pipeline.instance, resources=pipeline.resources, scheduled_execution_time=datetime(2026, 1, 2, 2)
        ) as context:
            result = nightly_backfill_schedule(context)
        return [] if isinstance(result, dg.SkipReason) else sorted(r.partition_key for r in result)

    assert requested() == ["00000|big", "00000|small", "00001|big", "00002|big"]
    for name, batches in (("big", ["00000", "00001", "00002"]), ("small", ["00000"])):
        for batch in batches:
            pipeline.analyze(name, batch)
    assert requested() == [] and waiting(pipeline, "big") == 0
    with pipeline.engine.begin() as connection:  # as after an upgrade of the hashing code
        connection.execute(text("UPDATE images SET analysis_version = 'photos-v0' WHERE batch = '00001'"))
    assert requested() == ["00001|big"]
    assert pipeline.analyze("big", "00001")["files_read"] == 2

    # a file away (a share's hiccup) while its batch is read, back as it was since; another undecodable
    rows = pipeline.rows("big", "batch, source_root, path")
    root, path = next((row["source_root"], bytes(row["path"])) for row in rows if row["batch"] == "00002")
    away, file = tmp_path / "away", os.path.join(os.fsencode(root), path)
    with pipeline.engine.begin() as connection:
        connection.execute(text("UPDATE images SET analysis_version = 'photos-v0' WHERE batch = '00002'"))
    os.rename(file, away)
    pipeline.analyze("big", "00002")
    os.rename(away, file)
    errors = [row["error"] for row in pipeline.rows("big", "batch, error") if row["batch"] == "00002" and row["error"]]
    assert [error.split(":")[0] for error in errors] == ["cannot read file"]
    assert pipeline.inventory("big")["changed"] == 0  # its size and date tell nothing
    with pipeline.engine.begin() as connection:
        connection.execute(text("UPDATE images SET status = 'error', error = 'cannot decode image: x' "
                                "WHERE id = (SELECT min(id) FROM images WHERE batch = '00001')"))
        assert pending_batches(connection, pipeline.catalog_id("big"), ANALYSIS_VERSION) == []  # rescans start none
    assert requested() == ["00002|big"]
    assert pipeline.analyze("big", "00002")["files_read"] == 1
    assert {row["status"] for row in pipeline.rows("big", "batch, status") if row["batch"] == "00002"} == {"ok"}


def waiting(pipeline, catalog: str) -> int | None:
    with pipeline.engine.connect() as connection:
        return waiting_batches(connection, pipeline.catalog_id(catalog))


def test_every_sensor_schedule_and_job_says_in_the_ui_what_it_does():
    definitions = defs()
    described = [*definitions.sensors, *definitions.schedules, *definitions.jobs]
    assert len(described) > 15 and [item.name for item in described if not item.description] == []
