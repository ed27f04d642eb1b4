"""The run launcher of Lumina's Dagster instance (named in dagster.yaml): each run in a new
process forked from one that has already imported the libraries runs use, a health check of run
workers for run monitoring, and the tags that tell which process executes a run."""

import gc
import os
import signal
import socket
import threading

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._serdes import ConfigurableClass
from dagster._serdes.config_class import ConfigurableClassData
from dagster._utils.interrupts import capture_interrupts

from lumina_pipeline.forkserver import preloaded_forkserver

# On runs executed by a process of this machine (a run worker, or `lumina run`): which one.
PID_TAG, HOST_TAG = "lumina/pid", "lumina/host"


def process_tags(pid: int | None = None) -> dict[str, str]:
    """Tags for a run executed by process `pid` of this machine (default: this one), so that it
    can be failed once the process died."""
    return {PID_TAG: str(pid or os.getpid()), HOST_TAG: socket.gethostname()}


def process_exists(pid: int) -> bool:
    """Whether process `pid` exists on this machine. A pid the system reused since makes a dead
    run look alive, never the other way round, so no live run is ever failed."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def keep_connections_open(instance: dg.DagsterInstance) -> None:
    """Have the instance keep its database connections open, as Dagster's webserver does: by
    default it opens one per query, about a hundred per run (0.1 s of a batch run)."""
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=10)  # 0: no timeout


def worker_pid(run: dg.DagsterRun) -> int | None:
    """The process of this machine that executes `run`, or None where that is unknown."""
    return int(run.tags[PID_TAG]) if run.tags.get(HOST_TAG) == socket.gethostname() else None


class LocalRunLauncher(RunLauncher, ConfigurableClass):
    """Executes each run in a process of its own on this machine, as Dagster's default launcher
    does, but forked from a forkserver that imported the heavy libraries once: a batch run's
    process is ready in about a second instead of four, which on a 500-photo batch is the
    difference between a tenth of the run and a twentieth.

    The run process executes Dagster's own run worker body (`dagster api execute_run`). A
    thread of the launching process waits for it and fails its run at once if it died without
    ending it; run monitoring (dagster.yaml) fails, through `check_run_worker_health`, the runs
    whose process died with the launcher (the daemon killed, the machine restarted).

    Terminating a run (from any process of this machine, as the webserver's Terminate button)
    kills its process and marks it cancelled, as Dagster's Kubernetes launcher deletes its pod:
    an interrupt would not do, since a step with a retry policy (the batch step) retries after
    one. What a killed run wrote is one transaction or journaled, so nothing is half-done."""

    def __init__(self, inst_data: ConfigurableClassData | None = None):
        self._inst_data = inst_data
        self._forkserver = preloaded_forkserver()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: dict) -> "LocalRunLauncher":
        return cls(inst_data=inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        process = self._forkserver.Process(target=execute_run, args=(run.run_id, self._instance.get_ref()),
                                           name=f"dagster run {run.run_id}")
        process.start()
        self._instance.add_run_tags(run.run_id, process_tags(process.pid))
        threading.Thread(target=self._fail_if_it_dies, args=(run.run_id, process), daemon=True).start()

    def _fail_if_it_dies(self, run_id: str, process) -> None:
        process.join()
        run = self._instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            self._instance.report_run_failed(run, f"run worker process {process.pid} ended with code "
                                                  f"{process.exitcode} before its run")

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        pid = worker_pid(run) if run else None
        if run is None or run.is_finished or pid is None:
            return False
        self._instance.report_run_canceling(run)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self._instance.report_run_canceled(run, f"its run process {pid} was stopped")
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        pid = worker_pid(run)
        if pid is None:  # not known here; run monitoring would fail a run with any status but RUNNING
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker unknown on this machine, not checked")
        if process_exists(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone")


def execute_run(run_id: str, instance_ref) -> None:
    """A run process: Dagster's run worker body, as `dagster api execute_run` executes it."""
    # Here, not at the top: Dagster's CLI costs `lumina run`, which imports this module, 0.15 s
    # (the forkserver has it imported already).
    from dagster._cli.api import _execute_run_command_body

    gc.freeze()  # the forkserver's modules live as long as the process: no collection need scan them
    with capture_interrupts(), dg.DagsterInstance.from_ref(instance_ref) as instance:
        keep_connections_open(instance)
        _execute_run_command_body(run_id, instance, lambda event: None, set_exit_code_on_failure=False)
