"""`lumina run` at scale: its peak memory on a library of 1,000 and of 4,000 photos (many
batches each), and a no-change `lumina run` of the larger against a bare walk of its folders."""

import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.foundation import bare_walk, timed
from lumina_pipeline.models.efficientnet import exported_network
from lumina_pipeline.sample import camera_exif
from lumina_pipeline.storage.database import stop_embedded_server

SMALL, LARGE = 1_000, 4_000
PER_FOLDER = 500
BATCH_SIZE = 250  # many batches per run, so that whatever a run keeps from batch to batch shows
ROUNDS = 3


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


def lumina(env: dict, *args: str) -> tuple[float, int, str]:
    """Run `lumina ARGS`: its wall time, its peak RSS in bytes (the command's process alone:
    the database server it may start is not its child) and its output."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen([sys.executable, "-m", "lumina_pipeline.cli", *args], env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, for its rusage
        seconds = time.perf_counter() - started
        output.seek(0)
        text = output.read()
    if process.returncode:
        raise RuntimeError(f"lumina {' '.join(args)} failed:\n{text[-3000:]}")
    return seconds, usage.ru_maxrss * 1024, text  # Linux counts ru_maxrss in KB


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
            lumina(env, "catalog", "add", "small", *small_folders, "--batch-size", str(BATCH_SIZE))
            lumina(env, "catalog", "add", "large", str(library), "--batch-size", str(BATCH_SIZE))
            peaks = {count: lumina(env, "run", name)[1] for count, name in ((SMALL, "small"), (LARGE, "large"))}
            walk = min(timed(bare_walk, str(library)) for _ in range(ROUNDS))
            again = [lumina(env, "run", "large") for _ in range(ROUNDS)]
        finally:
            stop_embedded_server(root / "home" / "pgdata")
    seconds, _, output = min(again)
    idle = "groupings: nothing they read changed" in output and "\nbatch " not in output
    inside = float(re.findall(r" in ([\d.]+) s\n", output)[-1])  # the command's own last line
    print(f"\n== lumina run at scale: generated 640 x 480 JPEGs with EXIF, batches of {BATCH_SIZE} ==")
    print(f"  peak RSS of the first run: {SMALL:,} photos {peaks[SMALL] / 1e9:.2f} GB, "
          f"{LARGE:,} photos {peaks[LARGE] / 1e9:.2f} GB")
    print(f"  {LARGE:,} / {SMALL:,} photos = {peaks[LARGE] / peaks[SMALL]:.2f}x (target <= 1.5x, and < 2 GB)")
    print(f"  no-change run of the {LARGE:,} photos {seconds:.2f} s (best of {ROUNDS}; {inside:.2f} s after "
          f"start-up; {'no' if idle else 'SOME'} batch or regrouping run), bare os.scandir walk with stat {walk:.3f} s")
    print(f"  no-change run / bare walk = {seconds / walk:.0f}x, = the walk + {seconds - walk:.2f} s "
          "(target: the walk + under 2 s)")
