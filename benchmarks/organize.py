"""The organize target: a 10,000-file plan in < 2 s (the pure planner, on generated rows).

The library is a camera's life: names from a counter that wraps every 1,000 shots (so that
names meet in the busy days' folders), one shot in ten a RAW+JPEG stack with a sidecar, one
file in twenty without a capture time, some exact copies and reviewed-away files. It is
planned twice: into an empty tree, and again once half of it is in place."""

import os
import time

import numpy as np
import polars as pl

from lumina_pipeline.analysis.organize import (
    DEFAULT_TEMPLATE,
    EXISTING_SCHEMA,
    FILES_SCHEMA,
    OrganizePlan,
    figures,
    plan_organize,
    target_folders,
)

FILES = 10_000
ROUNDS = 3
TREE = b"/tidy"


def library() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for shot in range(int(FILES / 1.2)):  # a stack is 3 files, one shot in ten
        day = int(rng.integers(0, 400))  # 10,000 files over 400 days: names meet within a day
        date = f"2020-{1 + day // 31 % 12:02d}-{1 + day % 28:02d}"
        taken = None if rng.random() < 0.05 else f"{date}T10:00:{shot % 60:02d}"
        stem, stack = f"IMG_{shot % 1000:04d}", f"stack-{shot}" if shot % 10 == 0 else None
        names = [".JPG", ".CR2", ".CR2.xmp"] if stack else [".JPG"]
        for number, extension in enumerate(names):
            checksum = f"{shot % 4000 if shot % 50 == 0 else shot:032d}{number:032d}"  # later shots repeat earlier ones
            rows.append((len(rows), "/photos", f"{day:03d}/{stem}{extension}".encode(),
                         "sidecar" if extension.endswith("xmp") else "image", 1000 + shot, 10**18 + shot, checksum,
                         "ok", taken if number == 0 else None, stack, stack and number == 0, False, shot % 20 == 0))
    return pl.DataFrame(rows[:FILES], schema=FILES_SCHEMA, orient="row")


def planned(files: pl.DataFrame, existing: pl.DataFrame) -> tuple[float, OrganizePlan]:
    """The fastest of ROUNDS plans (with the folders to look into, as actions/organize.py asks)."""
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        target_folders(files, DEFAULT_TEMPLATE, TREE)
        plan = plan_organize(files, existing, DEFAULT_TEMPLATE, TREE, move=False)
        times.append(time.perf_counter() - started)
    return min(times), plan


def run() -> None:
    files = library()
    into_empty, first = planned(files, pl.DataFrame(schema=EXISTING_SCHEMA))
    half = first.plan[::2].select("target", "size_bytes", "mtime_ns").rows()
    copied = pl.DataFrame([(os.path.dirname(target)[len(TREE) + 1:].decode(), os.path.basename(target), size, mtime)
                           for target, size, mtime in half], schema=EXISTING_SCHEMA, orient="row")
    again, second = planned(files, copied)
    numbers = figures(first)
    print(f"\n== organize plan: {FILES} files, best of {ROUNDS} (target: < 2 s) ==")
    print(f"  into an empty tree: {into_empty:.3f} s ({numbers['files']} to copy, {numbers['renamed']} renamed, "
          f"{numbers['undated']} undated, left out {numbers['left_out']})")
    print(f"  half of it in place: {again:.3f} s ({len(second.plan)} to copy, {len(second.in_place)} in place)")
