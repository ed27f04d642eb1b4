"""The run launcher of Lumina's Dagster instance (named in dagster.yaml): Dagster's default one
plus a run worker health check, and the tags `lumina run` puts on the runs it executes."""

import json
import os
import socket

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

# On runs that `lumina run` executes in its own process: which process, on which machine.
PID_TAG, HOST_TAG = "lumina/pid", "lumina/host"


def process_tags() -> dict[str, str]:
    """Tags for runs executed in this process, so that they can be failed once it died."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


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


def worker_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The process on this machine that executes `run`, or None where that is unknown: the one
    `lumina run` tagged it with, or, for a run a code server reached over a unix socket started
    (the daemon's own, from workspace.yaml), the run worker Dagster logged as "Started process
    for run (pid: ...)", the first engine event of the run that carries a pid."""
    if run.tags.get(HOST_TAG) == socket.gethostname():
        return int(run.tags[PID_TAG])
    if "socket" not in json.loads(run.tags.get(GRPC_INFO_TAG, "{}")):
        return None
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event  # present on every engine event
        pid = event.engine_event_data.metadata.get("pid") if event else None
        if isinstance(pid, dg.TextMetadataValue) and pid.text is not None:  # Dagster logs it as text
            return int(pid.text)
    return None


class LocalRunLauncher(dg.DefaultRunLauncher):
    """Dagster's default launcher (each run a subprocess of a code server on this machine) plus
    the run worker health check it lacks, written here because Dagster has none for it.

    With it, the daemon's run monitoring (dagster.yaml) fails a STARTED run whose worker is
    gone. The code server itself fails a run whose worker died while the server lives; this
    covers a worker that died with its code server (the daemon killed with its processes, a
    restart of the machine) and `lumina run` processes that died.
    """

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        pid = worker_pid(self._instance, run)
        if pid is None:  # not known here; run monitoring would fail a run with any status but RUNNING
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker unknown on this machine, not checked")
        if process_exists(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone")
