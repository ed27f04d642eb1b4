"""The file-action target: applying a plan on one filesystem runs at >= 50% of a bare loop doing
the same moves (`os.rename`) or copies (`shutil.copy2`), over the same files.

A journaled apply does more than the bare loop, by design: before a move it checks the file's
size, mtime and SHA-256 against the catalog (reading the whole file, which a rename does not),
and a copy is fsynced and read back to verify its SHA-256 before it takes its name. So each is
also compared with the least loop those guarantees allow (hash + rename; copy + fsync + hash),
which shows the engine's own cost: the journal, the kept check, the bookkeeping. The journal's
database writes alone (the plan before, the outcomes after, a chunk at a time, no file
touched) are timed too: on one filesystem they cost more than the bare renames."""

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from benchmarks import scratch_database
from lumina_pipeline.actions.runs import CHUNK, QUARANTINE, file_actions
from lumina_pipeline.analysis.plans import plan_quarantine
from lumina_pipeline.storage import journal
from lumina_pipeline.storage.catalogs import add_catalog
from lumina_pipeline.storage.database import make_engine
from lumina_pipeline.storage.frames import copy_into, read_frame
from lumina_pipeline.storage.journal import REMOVABLE_SCHEMA

FILES = 1000
FILE_BYTES = 256 * 1024  # a small JPEG; a camera's is 10-20 times larger, which only widens the gap to rename
ROUNDS = 3


def library(root: Path, url: str) -> pl.DataFrame:
    """FILES photos in 10 folders, cataloged: their rows as files_to_quarantine gives them."""
    rng = np.random.default_rng(0)
    photos = root / "photos"
    rows = []
    for index in range(FILES):
        path = f"{index % 10:02d}/IMG_{index:05d}.JPG".encode()
        content = rng.bytes(FILE_BYTES)
        (photos / os.fsdecode(path)).parent.mkdir(parents=True, exist_ok=True)
        (photos / os.fsdecode(path)).write_bytes(content)
        stat = os.stat(photos / os.fsdecode(path))
        rows.append((str(photos), path, stat.st_size, stat.st_mtime_ns, hashlib.sha256(content).hexdigest()))
    frame = pl.DataFrame(rows, schema=["source_root", "path", "size_bytes", "mtime_ns", "checksum"], orient="row")
    with Session(make_engine(url)) as session, session.begin():
        catalog = add_catalog(session, "bench", [str(photos)])
        copy_into(session.connection(), "images", frame.with_columns(
            catalog_id=pl.lit(str(catalog.id)), kind=pl.lit("image"), batch=pl.lit("00000"), status=pl.lit("ok")))
        query = "SELECT id, source_root, path, size_bytes, mtime_ns, checksum, status FROM images ORDER BY path"
        return read_frame(session.connection(), query, {}, REMOVABLE_SCHEMA)


def best_of(step: Callable[[], object], reset: Callable[[], object]) -> float:
    """The fastest of ROUNDS runs of `step`, each followed by the untimed `reset`. Each starts
    with no dirty page left to write back, so that none pays for the write-back of the step before."""
    times = []
    for _ in range(ROUNDS):
        os.sync()
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
        reset()
    return min(times)


def moves(pairs: list[tuple[bytes, bytes]], *, hashed: bool) -> None:
    for source, target in pairs:
        if hashed:
            with open(source, "rb") as file:
                hashlib.file_digest(file, "sha256")
        os.rename(source, target)


def copies(pairs: list[tuple[bytes, bytes]], *, verified: bool) -> None:
    for source, target in pairs:
        if not verified:
            shutil.copy2(source, target)
            continue
        with open(source, "rb") as reading, open(target, "wb") as writing:
            shutil.copyfileobj(reading, writing, 1 << 20)
            writing.flush()
            os.fsync(writing.fileno())
        with open(target, "rb") as file:
            hashlib.file_digest(file, "sha256")


def journal_alone(engine: Engine, quarantine: bytes, run_id: str, plan: pl.DataFrame) -> None:
    """What a journaled move writes to the database, with no file touched: the plan, then each
    chunk's kept check and outcomes, each in its own commit as `Actions.apply` does."""
    with file_actions(engine, "bench", quarantine) as actions:
        connection = actions.connection
        journal.write_plan(connection, actions.catalog_id, run_id, QUARANTINE, plan)
        connection.commit()
        entries = journal.entries(connection, actions.catalog_id, ["planned"], run_id)
        for start in range(0, len(entries), CHUNK):
            chunk = entries[start : start + CHUNK]
            journal.kept_images(connection, actions.catalog_id, [entry.image_id for entry in chunk])
            journal.record(connection, [(entry.id, "done", None) for entry in chunk])
            connection.commit()


def forget_journal(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM file_actions WHERE run_id LIKE 'journal-%'"))
        connection.execute(text("UPDATE images SET status = 'ok'"))


def run() -> None:
    with scratch_database() as (root, url):
        files = library(root, url)
        engine = make_engine(url)
        quarantine = os.fsencode(root / "quarantine")
        plan, _ = plan_quarantine(files, [str(root / "photos")], quarantine + b"/bench/run")
        pairs = list(zip(plan["source"], plan["target"], strict=True))
        for folder in {os.path.dirname(target) for _, target in pairs}:
            os.makedirs(folder, exist_ok=True)  # the bare loops get their folders for free

        def back() -> None:
            for source, target in pairs:
                os.rename(target, source)

        def drop_copies() -> None:
            for _, target in pairs:
                os.unlink(target)

        runs = iter(range(10 * ROUNDS))

        def apply(operation: str) -> None:
            with file_actions(engine, "bench", quarantine) as actions:
                kept_as_is = pl.lit(None if operation == "copy" else "quarantined", dtype=pl.String)
                report = actions.apply(QUARANTINE, f"{operation}-{next(runs)}",
                                       plan.with_columns(operation=pl.lit(operation), status_after=kept_as_is))
            assert report.done == FILES, report.skipped[:3]

        def undo() -> None:
            with file_actions(engine, "bench", quarantine) as actions:
                assert actions.undo().done == FILES

        bare_rename = best_of(lambda: moves(pairs, hashed=False), back)
        hash_rename = best_of(lambda: moves(pairs, hashed=True), back)
        bare_copy = best_of(lambda: copies(pairs, verified=False), drop_copies)
        verified_copy = best_of(lambda: copies(pairs, verified=True), drop_copies)
        applied_move = best_of(lambda: apply("move"), undo)  # undo also drops the emptied folders
        applied_copy = best_of(lambda: apply("copy"), undo)
        moving = plan.with_columns(operation=pl.lit("move"), status_after=pl.lit("quarantined"))
        journal_only = best_of(lambda: journal_alone(engine, quarantine, f"journal-{next(runs)}", moving),
                               lambda: forget_journal(engine))
        engine.dispose()

    megabytes = FILES * FILE_BYTES / 1e6
    print(f"\n== file actions: {FILES} files of {FILE_BYTES // 1024} KB ({megabytes:.0f} MB) on one filesystem, "
          f"best of {ROUNDS} (target: apply >= 50% of the bare loop) ==")
    for name, bare, least, applied in (
        ("move", bare_rename, hash_rename, applied_move),
        ("copy", bare_copy, verified_copy, applied_copy),
    ):
        print(f"  {name}: bare {'os.rename' if name == 'move' else 'shutil.copy2'} loop {bare:.3f} s, "
              f"with the checks ({'SHA-256 + rename' if name == 'move' else 'copy + fsync + SHA-256'}) {least:.3f} s, "
              f"journaled apply {applied:.3f} s")
        print(f"        apply = {bare / applied:.0%} of the bare loop, {least / applied:.0%} of the checked one")
    print(f"  the journal alone (plan and outcomes written, no file touched): {journal_only:.3f} s "
          f"= {journal_only / bare_rename:.1f} x the bare os.rename loop")
