"""`lumina run` at scale, on a generated library: its peak memory at 1,000 and at 10,000
photos (ten batches per worker) and which process peaked; a no-change `lumina run` of the
larger against a bare walk of its folders, and one after 50 new photos; 4,000 photos on one
core and on two, each against a bare loop of the same per-file work on as many cores, in a home
of their own (a library as a first `lumina run` catalogs it); and what launching a batch run
costs."""

import ctypes
import json
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import numpy as np
from PIL import Image

from benchmarks.foundation import bare_walk, timed
from lumina_pipeline import home
from lumina_pipeline.analysis.embedding import stack_inputs
from lumina_pipeline.analysis.photos import ANALYSIS_SCHEMA, analyze_file
from lumina_pipeline.defs.run_launcher import keep_connections_open
from lumina_pipeline.models import load_image_model
from lumina_pipeline.models.efficientnet import exported_network
from lumina_pipeline.runner import NOTHING_TO_REGROUP
from lumina_pipeline.sample import camera_exif
from lumina_pipeline.storage.database import stop_embedded_server

SMALL, LARGE = 1_000, 10_000  # LARGE: ten batches per worker of two, so that what a worker keeps shows
PER_FOLDER = 500
ROUNDS = 3
NEW = 50  # photos added to the larger library after its no-change runs
FULL_BATCH = 500  # the default batch size
CORES_FOLDERS = 8  # 4,000 photos: four batches of 500 per worker on two cores
EMBED_BATCH = 16  # the Embedder's batch_size
MODEL_INPUT = list(ANALYSIS_SCHEMA).index("model_input")
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def make_library(folder: Path, count: int) -> None:
    """`count` photo-like 640 x 480 JPEGs (smooth colour fields with sensor noise, a camera's
    EXIF), PER_FOLDER to a folder, the same on every run."""
    rng = np.random.default_rng(14)
    for index in range(count):
        subfolder = folder / f"{index // PER_FOLDER:03d}"
        subfolder.mkdir(parents=True, exist_ok=True)
        field = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).resize((640, 480))
        pixels = np.asarray(field, dtype=np.float32) + rng.normal(0, 12, (480, 640, 3))
        taken = datetime(2022, 1, 1) + timedelta(minutes=7 * index)
        exif = camera_exif("Bench", "Scale", taken, "0", (48.1, 11.6))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            subfolder / f"IMG_{index:05d}.jpg", quality=90, exif=exif
        )


class Peak(NamedTuple):
    """The peak RSS in bytes of a command itself and of its largest descendant (a batch worker;
    the database server it may start is not one), each its high-water mark as last seen while
    it ran. Not the rusage of the command: that counts, from before its exec, the peak of this
    process, which an earlier part of `make bench` may have raised."""

    command: int
    child: int

    @property
    def largest(self) -> int:
        return max(self.command, self.child)

    def which(self) -> str:
        return "`lumina run` itself" if self.command >= self.child else "a batch worker"


def lumina(env: dict, *args: str) -> tuple[float, Peak, str]:
    """Run `lumina ARGS`: its wall time, its processes' peak RSS and its output. Its processes'
    CPU time counts in this one's RUSAGE_CHILDREN once it ended, those it leaves behind included."""
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1)  # its orphans are this process's to wait for
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen([sys.executable, "-m", "lumina_pipeline.cli", *args], env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
        command = child = 0
        seen: set[int] = set()
        while not (ended := os.wait4(process.pid, os.WNOHANG))[0]:
            command = max(command, peak_rss(process.pid))
            below = descendants(process.pid)
            seen.update(below)
            child = max([child, *map(peak_rss, below)])
            time.sleep(0.2)
        _, status, _ = ended
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        reap(seen)
        output.seek(0)
        text = output.read()
    if process.returncode:
        raise RuntimeError(f"lumina {' '.join(args)} failed:\n{text[-3000:]}")
    return seconds, Peak(command, child), text


def reap(pids: set[int], seconds: float = 5.0) -> None:
    """Wait, up to `seconds`, for those of `pids` that the command left to this process (their
    subreaper) to end: the forkserver of `lumina run`'s batch workers ends right after it. The
    database server it may have started lives on."""
    deadline = time.monotonic() + seconds
    while pids and time.monotonic() < deadline:
        for pid in list(pids):
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    pids.discard(pid)
            except ChildProcessError:  # not this process's: its own parent waited for it
                pids.discard(pid)
        time.sleep(0.01)


def peak_rss(pid: int) -> int:
    """The peak RSS in bytes of a running process so far (VmHWM), 0 once it has ended."""
    with suppress(OSError):  # ended and reaped
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):  # a process that ended but is not yet reaped has none
                return int(line.split()[1]) * 1024  # in kB
    return 0


def descendants(pid: int) -> list[int]:
    """The processes a running process started (by any of its threads), theirs, and so on, that
    still run."""
    listed = ""
    for thread in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):  # the thread or the process ended meanwhile
            listed += (thread / "children").read_text()
    children = [int(child) for child in listed.split()]
    return children + [below for child in children for below in descendants(child)]


@contextmanager
def on_cores(cores: set[int], database_pid: int) -> Iterator[None]:
    """This process, the processes it starts and the database server's new connections on
    `cores` only."""
    everywhere = os.sched_getaffinity(0)
    for pid in (0, database_pid):
        os.sched_setaffinity(pid, cores)
    try:
        yield
    finally:
        for pid in (0, database_pid):
            os.sched_setaffinity(pid, everywhere)


def cpu_seconds(database_pid: int) -> float:
    """The CPU time of the processes this one started and waited for, and of the database
    server with its connections that ended: other people's processes on the machine slow the
    wall clock, not this."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # /proc/PID/stat after the command's name: utime, stime, cutime, cstime are fields 12-15
    ticks = Path(f"/proc/{database_pid}/stat").read_text().rsplit(")", 1)[1].split()[11:15]
    return children.ru_utime + children.ru_stime + sum(map(int, ticks)) / os.sysconf("SC_CLK_TCK")


def lumina_rate(env: dict, name: str, photos: int, workers: int) -> float:
    """Photos per second of the first `lumina run` of catalog `name` (the whole command:
    start-up, inventory, its batches in `workers` worker processes, grouping)."""
    return photos / lumina(env | {"LUMINA_BATCHES_PER_CATALOG": str(workers)}, "run", name)[0]


def bare_rate(paths: list[bytes], workers: int, models: Path, threads: int | None = None) -> tuple[float, float]:
    """Photos per second of the per-file work alone (read, SHA-256, reduced decode, EXIF,
    hashes, quality, thumbnail, embedding: analysis/ and the model called directly) in a pool of
    `workers` processes, each with `threads` model threads (default: those `lumina run` gives its
    workers), and the CPU seconds of that work. The clock starts once every process is up and
    has its model."""
    from lumina_pipeline.runner import threads_per_worker

    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(workers + 1)
    chunks = [paths[start : start + EMBED_BATCH] for start in range(0, len(paths), EMBED_BATCH)]
    pool = context.Pool(workers, _bare_worker, (models, threads or threads_per_worker(workers), ready))
    try:
        ready.wait()
        started = time.perf_counter()
        cpu = pool.map(partial(bare_work, models=models), chunks, chunksize=1)
        return len(paths) / (time.perf_counter() - started), sum(cpu)
    finally:
        # ended by closing, not by the SIGTERM of the pool's `with`: once this process ran a
        # Dagster run with SIGINT ignored (`make bench &` in a script), it and the workers it
        # starts ignore SIGTERM too (dagster._utils.interrupts maps SIGTERM to SIGINT's handler)
        pool.close()
        pool.join()


def _bare_worker(models: Path, threads: int, ready) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    # as warm as a worker after its first files: onnxruntime sets up on its first inference of a size
    load_image_model(models).embed(np.zeros((EMBED_BATCH, 224, 224, 3), np.uint8), EMBED_BATCH)
    ready.wait()


def bare_work(paths: list[bytes], models: Path) -> float:
    started = time.process_time()  # of the whole process, the model's threads included
    rows = [analyze_file(path, "image", model_inputs=True) for path in paths]
    load_image_model(models).embed(stack_inputs([row[MODEL_INPUT] for row in rows]), EMBED_BATCH)
    return time.process_time() - started


@dataclass(frozen=True)
class Throughput:
    lumina: float  # photos per second
    lumina_cpu: float  # seconds
    bare: float
    bare_cpu: float


def both_cores(env: dict, library: Path, models: Path) -> dict[int, Throughput]:
    """Per core count (1, 2): photos per second of `lumina run` (one worker per core) and of the
    bare loop, everything including the database on those cores; then the CPU seconds of each
    (the bare loop's without its start-up, as on its clock). In a home of their own, which holds
    nothing else."""
    folders = [library / f"{n:03d}" for n in range(CORES_FOLDERS)]
    paths = sorted(os.fsencode(path) for folder in folders for path in folder.iterdir())
    env = env | {"LUMINA_HOME": str(library.parent / "cores-home")}
    rates = {}
    try:
        for cores in (1, 2):
            lumina(env, "catalog", "add", f"cores{cores}", *map(str, folders), "--batch-size", str(FULL_BATCH))
            database_pid = int((library.parent / "cores-home" / "pgdata" / "postmaster.pid").read_text().split()[0])
            with on_cores(set(sorted(os.sched_getaffinity(0))[:cores]), database_pid):
                before = cpu_seconds(database_pid)
                ours = lumina_rate(env, f"cores{cores}", len(paths), workers=cores)
                rates[cores] = Throughput(ours, cpu_seconds(database_pid) - before, *bare_rate(paths, cores, models))
    finally:
        stop_embedded_server(library.parent / "cores-home" / "pgdata")
    return rates


def launch_costs(name: str) -> None:
    """In a prepared `lumina` environment, as the daemon launches runs (by the instance's run
    launcher, each in a process of its own): the inventory of catalog `name`, which also brings
    the launcher's forkserver up, as a daemon's first run does, then its first batch; then two
    batches in one new batch worker, one after the other, as `lumina run` hands them out. Prints
    as JSON the daemon's batch run (Launched), then (wall, body) seconds of each worker's."""
    from lumina_pipeline.runner import batch_workers, execute_batch

    home.prepare(create=True)
    instance = dg.DagsterInstance.get()  # one, as the daemon's: its launcher waits on each run process
    keep_connections_open(instance)
    launched_as_by_the_daemon(instance, "inventory_job", name)  # the launcher's forkserver up, as in a daemon
    first = dg.MultiPartitionKey({"catalog": name, "batch": "00000"})
    costs: list = [launched_as_by_the_daemon(instance, "batch_job", str(first))]
    with batch_workers(1) as worker:
        for batch in ("00001", "00002"):
            started = time.perf_counter()
            figures = worker.submit(execute_batch, name, batch).result()
            costs.append((time.perf_counter() - started, figures.read["elapsed_seconds"]))
    print(json.dumps(costs))


class Launched(NamedTuple):
    """Seconds of a run launched as the daemon launches one."""

    wall: float  # from its launch until its launcher saw it end
    body: float  # in the asset's body: the `metadata` materialization's elapsed_seconds, 0 without one
    to_body: float  # from its launch until that body started: what runs before its first file read


def launched_as_by_the_daemon(instance: dg.DagsterInstance, job_name: str, partition_key: str) -> Launched:
    """A run launched by the instance's run launcher, as the daemon launches one."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    code_location = ReconstructableRepository.for_module("lumina_pipeline.definitions", "defs")
    job = code_location.get_reconstructable_job(job_name)
    definition = job.get_definition()
    run = instance.create_run_for_job(definition, run_config=definition.get_run_config_for_partition_key(partition_key),
                                      tags=definition.get_tags_for_partition_key(partition_key, None),
                                      job_code_origin=job.get_python_origin())
    launched_at, started = time.time(), time.perf_counter()
    instance.launch_run(run.run_id, workspace=None)  # type: ignore[arg-type]  (this launcher needs none)
    while not (finished := instance.get_run_by_id(run.run_id)) or not finished.is_finished:
        time.sleep(0.01)
    wall = time.perf_counter() - started
    assert finished.status == dg.DagsterRunStatus.SUCCESS
    read = instance.get_latest_materialization_event(dg.AssetKey("metadata"))
    if not read or read.run_id != run.run_id or not read.asset_materialization:
        return Launched(wall, 0.0, 0.0)
    body = read.asset_materialization.metadata["elapsed_seconds"]
    assert isinstance(body, dg.FloatMetadataValue) and body.value is not None
    return Launched(wall, body.value, read.timestamp - body.value - launched_at)  # the event is the body's end


def launch(env: dict, library: Path) -> tuple[Launched, tuple[float, float], tuple[float, float]]:
    """A batch run the daemon's launcher starts, and (wall, body) seconds of one in a new
    `lumina run` worker, then of one in the same worker."""
    lumina(env, "catalog", "add", "launch", *(str(library / f"{n:03d}") for n in range(3)),
           "--batch-size", str(FULL_BATCH))
    measure = "from benchmarks.scale import launch_costs; launch_costs('launch')"
    output = subprocess.run([sys.executable, "-c", measure], env=env, check=True, capture_output=True, text=True)
    daemon, cold, warm = json.loads(output.stdout.strip().splitlines()[-1])
    return Launched(*daemon), tuple(cold), tuple(warm)


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="lumina-bench-scale-") as folder:
        root = Path(folder)
        library = root / "library"
        make_library(library, LARGE)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LUMINA_", "DAGSTER_"))}
        env.update(LUMINA_HOME=str(root / "home"), LUMINA_MODEL_CACHE=str(root / "models"))
        exported_network(root / "models")  # exported here, so that no measured run imports torch
        small_folders = [str(library / f"{n:03d}") for n in range(SMALL // PER_FOLDER)]
        try:
            lumina(env, "catalog", "add", "small", *small_folders, "--batch-size", str(FULL_BATCH))
            lumina(env, "catalog", "add", "large", str(library), "--batch-size", str(FULL_BATCH))
            peaks = {count: lumina(env, "run", name)[1] for count, name in ((SMALL, "small"), (LARGE, "large"))}
            walk = min(timed(bare_walk, str(library)) for _ in range(ROUNDS))
            again = [lumina(env, "run", "large") for _ in range(ROUNDS)]
            make_library(library / "new", NEW)  # copies of the first photos under new names
            added = lumina(env, "run", "large")
            rates = both_cores(env, library, root / "models")
            daemon, (cold, cold_body), (warm, warm_body) = launch(env, library)
        finally:
            stop_embedded_server(root / "home" / "pgdata")
    seconds, _, output = min(again)
    idle = NOTHING_TO_REGROUP in output and "\nbatch " not in output
    inside = float(re.findall(r" in ([\d.]+) s\n", output)[-1])  # the command's own last line
    added_seconds, _, added_output = added
    read = sum(int(files) for files in re.findall(r"^batch \S+ \(\d+/\d+\): (\d+) files? read", added_output, re.M))
    regrouped = NOTHING_TO_REGROUP not in added_output
    print(f"\n== lumina run at scale: generated 640 x 480 JPEGs with EXIF, batches of {FULL_BATCH} ==")
    for count, peak in peaks.items():
        print(f"  peak RSS of the first run of {count:,} photos: {peak.largest / 1e9:.2f} GB, {peak.which()} "
              f"(`lumina run` itself {peak.command / 1e9:.2f} GB)")
    print(f"  {LARGE:,} / {SMALL:,} photos = {peaks[LARGE].largest / peaks[SMALL].largest:.2f}x "
          "(target <= 1.5x, and < 2 GB)")
    print(f"  no-change run of the {LARGE:,} photos {seconds:.2f} s (best of {ROUNDS}; {inside:.2f} s after "
          f"start-up; {'no' if idle else 'SOME'} batch or regrouping run), bare os.scandir walk with stat {walk:.3f} s")
    print(f"  no-change run / bare walk = {seconds / walk:.0f}x, = the walk + {seconds - walk:.2f} s "
          "(target: the walk + under 2 s)")
    print(f"  {NEW} new photos: {added_seconds:.1f} s, {read} read, "
          f"{'one regrouping' if regrouped else 'NO regrouping'} (target: the {NEW} read, one regrouping)")
    photos = CORES_FOLDERS * PER_FOLDER
    print(f"\n== {photos:,} photos on 1 and 2 cores: a first lumina run (inventory, batches of {FULL_BATCH} in a "
          "worker per core, grouping; its own database, on the same cores) and a bare loop of the same "
          "per-file work ==")
    for cores, rate in rates.items():
        print(f"  {cores} core{'s' if cores > 1 else ''}: lumina run {rate.lumina:.1f} photos/s, bare loop "
              f"{rate.bare:.1f} photos/s: lumina / bare = {rate.lumina / rate.bare:.0%} (target >= 85%); "
              f"in CPU time per photo, bare / lumina = {rate.bare_cpu / rate.lumina_cpu:.0%}")
    print(f"  lumina run on 2 cores / on 1 = {rates[2].lumina / rates[1].lumina:.2f}x (target >= 1.7x; "
          f"the bare loop {rates[2].bare / rates[1].bare:.2f}x)")
    print(f"\n== launching a batch run of {FULL_BATCH} photos: what it spends outside the asset body ==")
    print(f"  launched as the daemon launches it (a process forked from the launcher's forkserver, Lumina's "
          f"imports, instance, resources with the model session, the run's start): from its launch to the body, "
          f"before its first file read, {daemon.to_body:.2f} s = {daemon.to_body / daemon.wall:.1%} of "
          f"{daemon.wall:.1f} s "
          f"(target < 5%); with the run's end, all outside the body {daemon.wall - daemon.body:.2f} s = "
          f"{(daemon.wall - daemon.body) / daemon.wall:.1%}")
    print(f"  in a new `lumina run` worker (process start, imports, code location, model session): "
          f"{cold - cold_body:.2f} s = {(cold - cold_body) / cold:.1%} of {cold:.1f} s, once per worker")
    print(f"  the same worker's next batch, as in a lumina run: {warm - warm_body:.2f} s = "
          f"{(warm - warm_body) / warm:.1%} of {warm:.1f} s (target < 5%)")
