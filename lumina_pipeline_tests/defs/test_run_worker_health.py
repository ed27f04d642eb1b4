"""What run monitoring learns of a run's process: real processes of this machine."""

import socket
import subprocess

import dagster as dg
from dagster._core.launcher import WorkerStatus
from dagster._core.utils import make_new_run_id

from lumina_pipeline.defs.run_launcher import HOST_TAG, LAUNCHED_TAG, PROCESS_TAG, process_tags, worker_health
from lumina_pipeline.runner import fail_dead_runs


def health(tags: dict[str, str]) -> WorkerStatus:
    run = dg.DagsterRun(job_name="batch_job", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED, tags=tags)
    return worker_health(run).status


def test_a_run_whose_process_lives_is_running_and_one_whose_process_ended_failed():
    ended = subprocess.Popen(["true"])
    ended.wait()
    assert health(process_tags()) == WorkerStatus.RUNNING
    assert health(process_tags(ended.pid)) == WorkerStatus.FAILED


def test_a_pid_given_to_another_process_since_is_not_the_runs():
    """After a restart pids are handed out from the start: the pid lives, as another process."""
    assert health({**process_tags(), PROCESS_TAG: "an-earlier-boot:12345"}) == WorkerStatus.FAILED


def test_a_run_the_daemon_started_on_a_machine_replaced_since_is_failed():
    elsewhere = {**process_tags(), HOST_TAG: f"{socket.gethostname()}-before"}
    assert health(elsewhere) == WorkerStatus.RUNNING  # a `lumina run` there: not known here
    assert health({**elsewhere, LAUNCHED_TAG: "true"}) == WorkerStatus.FAILED
    assert health({}) == WorkerStatus.RUNNING  # not a run of Lumina's processes


def test_lumina_run_fails_the_dead_runs_of_this_machine_naming_whose_process_died():
    ended = subprocess.Popen(["true"])
    ended.wait()
    with dg.instance_for_test() as instance:
        runs = {process: instance.create_run_for_job(
            dg.GraphDefinition("nothing").to_job(), status=dg.DagsterRunStatus.STARTED, tags=tags)
            for process, tags in [("`lumina run`", process_tags(ended.pid)),
                                  ("run worker", {**process_tags(ended.pid), LAUNCHED_TAG: "true"}),
                                  ("alive", process_tags())]}

        fail_dead_runs(instance)

        for process, run in runs.items():
            failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            assert [entry.message for entry in failure] == (
                [] if process == "alive" else [f"its {process} process {ended.pid} is gone"])
