"""The run launcher of Lumina's Dagster instance (named in dagster.yaml): each run in a new
process forked from one that has already imported the libraries runs use, a health check of run
workers for run monitoring, and the tags that tell which process executes a run."""

import contextlib
import gc
import os
import signal
import socket
import threading
import time
from pathlib import Path

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._serdes import ConfigurableClass
from dagster._serdes.config_class import ConfigurableClassData
from dagster._utils.interrupts import capture_interrupts

from lumina_pipeline.forkserver import preloaded_forkserver

# On runs executed by a process of this machine (a run worker, or `lumina run`): which one,
# and (on Linux) the boot and start time that tell it from a later process given its pid.
PID_TAG, HOST_TAG, PROCESS_TAG = "lumina/pid", "lumina/host", "lumina/process"
LAUNCHED_TAG = "lumina/launched_by_daemon"  # on runs this launcher started, in the daemon's process
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
CANCEL_POLL_SECONDS = 2.0  # how often a run process asks whether its run was terminated elsewhere
STOPPED_ITSELF = 130  # the exit code of a run process that stopped itself (128 + SIGINT, as on Ctrl-C)


def process_tags(pid: int | None = None) -> dict[str, str]:
    """Tags for a run executed by process `pid` of this machine (default: this one), so that it
    can be failed once the process died."""
    pid = pid or os.getpid()
    identity = _identity(pid)
    return {PID_TAG: str(pid), HOST_TAG: socket.gethostname(), **({PROCESS_TAG: identity} if identity else {})}


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def worker_alive(run: dg.DagsterRun) -> bool | None:
    """Whether the process that executes `run` lives; None where that cannot be known here.

    A run this launcher started on another machine is dead: one daemon serves an instance,
    and its runs' processes are on its machine, so another name is a daemon since replaced
    (a container made anew). A run of `lumina run` elsewhere cannot be checked. Here, a
    process recorded with its boot and start time is alive only as the same process: after a
    restart, pids are handed out again from the start."""
    if run.tags.get(HOST_TAG) != socket.gethostname():
        return False if run.tags.get(LAUNCHED_TAG) else None
    pid = int(run.tags[PID_TAG])
    recorded = run.tags.get(PROCESS_TAG)
    return _identity(pid) == recorded if recorded else process_exists(pid)


def _identity(pid: int) -> str | None:
    """'<boot id>:<start time>' of process `pid`, None where /proc does not tell (not Linux, gone)."""
    try:
        boot, stat = BOOT_ID.read_text().strip(), Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{boot}:{stat.rpartition(')')[2].split()[19]}"  # field 22, starttime; the name may hold spaces


def keep_connections_open(instance: dg.DagsterInstance) -> None:
    """Have the instance keep its database connections open, as Dagster's webserver does: by
    default it opens one per query, about a hundred per run (0.1 s of a batch run)."""
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=10)  # 0: no timeout


class LocalRunLauncher(RunLauncher, ConfigurableClass):
    """Executes each run in a process of its own on this machine, as Dagster's default launcher
    does, but forked from a forkserver that imported the heavy libraries once: a batch run's
    process is ready in about a second instead of four, which on a 500-photo batch is the
    difference between a tenth of the run and a twentieth.

    The run process executes Dagster's own run worker body (`dagster api execute_run`). A
    thread of the launching process waits for it and ends its run at once if it died without
    ending it (failed, or canceled when it was terminated); run monitoring (dagster.yaml) fails,
    through `check_run_worker_health`, the runs whose process died with the launcher (the daemon
    killed, the machine restarted).

    Terminating a run (the webserver's Terminate button) kills its process and marks it
    cancelled, as Dagster's Kubernetes launcher deletes its pod: an interrupt would not do, since
    a step with a retry policy (the batch step) retries after one. What a killed run wrote is one
    transaction or journaled, so nothing is half-done. From another machine than the run's (a
    webserver in a container of its own) the run is marked canceling, and its process, which
    asks every CANCEL_POLL_SECONDS, stops itself the same way."""

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
        self._instance.add_run_tags(run.run_id, {**process_tags(process.pid), LAUNCHED_TAG: "true"})
        threading.Thread(target=self._end_run_if_it_dies, args=(run.run_id, process), daemon=True,
                         name=f"watching run {run.run_id}").start()

    def _end_run_if_it_dies(self, run_id: str, process) -> None:
        process.join()
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return
        if run.status != dg.DagsterRunStatus.CANCELING:
            self._instance.report_run_failed(run, f"run worker process {process.pid} ended with code "
                                                  f"{process.exitcode} before its run")
        elif process.exitcode == STOPPED_ITSELF:  # else Terminate killed it here, and marks it canceled
            self._instance.report_run_canceled(run, f"its run process {process.pid} stopped itself")

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished or PID_TAG not in run.tags:
            return False
        if run.tags[HOST_TAG] != socket.gethostname():
            if not run.tags.get(LAUNCHED_TAG):
                return False  # a `lumina run` of another machine is stopped there
            self._instance.report_run_canceling(run)  # its process stops itself (stop_when_canceled)
            return True
        if not worker_alive(run):
            return False  # never a process that only has the pid of a dead run's
        pid = int(run.tags[PID_TAG])
        self._instance.report_run_canceling(run)
        with contextlib.suppress(ProcessLookupError):  # it may have seen the cancel and stopped itself
            os.kill(pid, signal.SIGKILL)
        if not self._instance.get_run_by_id(run_id).is_finished:  # type: ignore[union-attr]
            self._instance.report_run_canceled(run, f"its run process {pid} was stopped")
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        return worker_health(run)


def worker_health(run: dg.DagsterRun) -> CheckRunHealthResult:
    """What run monitoring learns of a STARTED run's process (worker_alive)."""
    if PID_TAG not in run.tags:  # not started by a process of Lumina's
        return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker unknown, not checked")
    alive = worker_alive(run)
    if alive is None:  # run monitoring would fail a run with any status but RUNNING
        return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker on another machine, not checked")
    if alive:
        return CheckRunHealthResult(WorkerStatus.RUNNING)
    return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {run.tags[PID_TAG]} is gone")


def execute_run(run_id: str, instance_ref) -> None:
    """A run process: Dagster's run worker body, as `dagster api execute_run` executes it."""
    # Here, not at the top: Dagster's CLI costs `lumina run`, which imports this module, 0.15 s
    # (the forkserver has it imported already).
    from dagster._cli.api import _execute_run_command_body

    gc.freeze()  # the forkserver's modules live as long as the process: no collection need scan them
    with capture_interrupts(), dg.DagsterInstance.from_ref(instance_ref) as instance:
        keep_connections_open(instance)
        threading.Thread(target=stop_when_canceled, args=(instance, run_id), daemon=True,
                         name=f"stopping run {run_id} when canceled").start()
        _execute_run_command_body(run_id, instance, lambda event: None, set_exit_code_on_failure=False)


def stop_when_canceled(instance: dg.DagsterInstance, run_id: str) -> None:
    """Kill this run process once its run is canceling (terminated from another machine, which
    cannot kill it) or was marked canceled (Dagster's "force" option), as the launcher kills it
    when terminated on this machine. The launcher's watch over the process, seeing it exit with
    STOPPED_ITSELF, then marks the run canceled (or, where the daemon that launched it is gone,
    run monitoring's cancel timeout)."""
    while True:
        time.sleep(CANCEL_POLL_SECONDS)
        try:
            run = instance.get_run_by_id(run_id)
        except Exception:  # the database restarting: ask again
            continue
        if run is not None and run.status in (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED):
            os._exit(STOPPED_ITSELF)  # at once, as a kill: nothing of the run's goes on
        if run is None or run.is_finished:
            return
