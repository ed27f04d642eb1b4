"""`make soak`: the daemon on a living library, with faults, then a check against a clean run.

A copy of the photo corpus is cataloged by the real daemon (sensors, run queue, run
monitoring) while this script, for `--seconds` (default 600), adds, modifies, deletes and
swaps files, rates photos through the API as a person would (the stars of the photo shown,
sent a moment later), kills random run workers with -9 and restarts the database once. Then
the churn stops, the daemon is given time to settle, and the catalog must equal `lumina run`
of the final folder into a fresh catalog: every file with its status and checksum, every
duplicate group and burst. No run may be left in progress, and every rating must be on the
photo it was given to (each photo's stars are a function of its checksum, so stars on
another photo show). Prints what it did and the differences; exits 1 if there are any. Not
part of `make test`: it takes the better part of half an hour.
"""

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.api.app import ApiSettings, create_app
from lumina_pipeline.runner import unchanged_inventory
from lumina_pipeline.storage.catalogs import get_catalog
from lumina_pipeline.storage.database import make_engine
from lumina_pipeline_tests.conftest import CORPUS, PROJECT, prepared_env, stop_embedded_server

BIN = Path(sys.executable).parent
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".heic", ".tif", ".tiff"}
IN_PROGRESS = "('QUEUED', 'NOT_STARTED', 'STARTING', 'STARTED', 'CANCELING')"
STARS = "get_byte(decode(checksum, 'hex'), 0) % 5 + 1"  # a photo's stars here, from its content


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="how long the churn lasts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--settle-seconds", type=float, default=900.0, help="the longest wait for the daemon to catch up"
    )
    args = parser.parse_args()
    random.seed(args.seed)
    work = Path(tempfile.mkdtemp(prefix="lumina-soak-"))
    subprocess.run([sys.executable, str(CORPUS / "prepare.py"), str(work / "corpus")], check=True, capture_output=True)
    library, spare = work / "corpus" / "photos", _photos(work / "corpus" / "photos")
    env = prepared_env(work / "home")
    _lumina(env, "catalog", "add", "soak", str(library))
    engine = make_engine(env["LUMINA_DATABASE_URL"])
    daemon = _start_daemon(env, work / "daemon.log")
    settings = ApiSettings(database_url=env["LUMINA_DATABASE_URL"], thumbnail_dir=str(work / "home" / "thumbnails"),
                           model_cache=str(work / "models"))
    try:
        with TestClient(create_app(settings), base_url="http://127.0.0.1") as api:
            figures = _churn(library, spare, env, engine, api, args.seconds)
        settled = _settle(engine, args.settle_seconds)
    finally:
        _stop(daemon, env["LUMINA_HOME"])
    final = work / "final" / "photos"
    shutil.copytree(library, final, symlinks=True)
    _lumina(env, "run", "--photos", str(final), "clean")
    differences = _differences(_export(env, "soak"), _export(env, "clean"))
    stuck = _count(engine, f"SELECT count(*) FROM runs WHERE status IN {IN_PROGRESS}")
    misplaced = _count(engine, f"SELECT count(*) FROM images WHERE status = 'ok' AND rating <> {STARS}")
    rated = _count(engine, "SELECT count(*) FROM images WHERE status = 'ok' AND rating IS NOT NULL")
    runs = dict(_rows(engine, "SELECT status, count(*) FROM runs GROUP BY status"))
    stop_embedded_server(work / "home" / "pgdata")
    print(json.dumps({**figures, "settled_in_seconds": settled, "runs_by_status": runs,
                      "runs_left_in_progress": stuck, "photos_rated": rated, "ratings_on_another_photo": misplaced,
                      "differences": len(differences)}, indent=1))
    for line in differences[:50]:
        print("  ", line)
    failed = bool(differences or stuck or misplaced or settled is None)
    if failed:
        print(f"kept for a look (daemon log, library, home): {work}")
    else:
        shutil.rmtree(work)
    return int(failed)


def _lumina(env: dict[str, str], *args: str) -> str:
    command = [sys.executable, "-m", "lumina_pipeline.cli", *args]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=PROJECT).stdout


def _start_daemon(env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [str(BIN / "dagster-daemon"), "run", "-w", str(PROJECT / "workspace.yaml")]
    return subprocess.Popen(command, env=env, cwd=PROJECT, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(daemon: subprocess.Popen, home: str) -> None:
    os.killpg(daemon.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        daemon.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):  # code servers and runs the daemon started
        os.killpg(daemon.pid, signal.SIGKILL)
    for pid in _run_workers(home):  # a run started just before the stop has a session of its own
        _kill_with_children(pid)


def _photos(folder: Path) -> list[bytes]:
    """The corpus's readable photos' bytes: what files are added and overwritten with."""
    return [
        p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.suffix.lower() in PHOTO_SUFFIXES and p.stat().st_size > 1000
    ]


def _churn(library: Path, spare: list[bytes], env: dict[str, str], engine, api: TestClient,
           seconds: float) -> dict[str, int]:
    done = {"added": 0, "modified": 0, "deleted": 0, "swapped": 0, "rated": 0, "runs_killed": 0,
            "database_restarts": 0, "ratings_refused_as_read_again": 0}
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        time.sleep(random.uniform(1.0, 5.0))
        files = [p for p in library.rglob("*") if p.is_file() and not p.is_symlink()]
        action = random.choices(["added", "modified", "deleted", "swapped", "rated", "runs_killed"],
                                [4, 3, 2, 2, 2, 2])[0]
        if not done["database_restarts"] and elapsed > seconds / 2:
            action = "database_restarts"
        if action == "added":
            target = library / "churn" / f"new-{done['added']:04}.jpg"
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(random.choice(spare))
        elif action == "modified":
            random.choice(files).write_bytes(random.choice(spare))
        elif action == "deleted":
            random.choice(files).unlink()
        elif action == "swapped":
            first, second = random.sample(files, 2)
            first.rename(library / "swap.tmp")
            second.rename(first)
            (library / "swap.tmp").rename(second)
        elif action == "rated":
            with contextlib.suppress(Exception):  # the database may be restarting
                shown = _rows(engine, f"""SELECT id, checksum, {STARS} FROM images
                                         WHERE status = 'ok' AND rating IS NULL ORDER BY random() LIMIT 5""")
                time.sleep(random.uniform(0.0, 2.0))  # a look at them, while batches may read them again
                for image_id, checksum, stars in shown:
                    answer = api.put(f"/api/images/{image_id}/rating", json={"rating": stars, "checksum": checksum})
                    done["ratings_refused_as_read_again"] += answer.status_code == 409
        elif action == "runs_killed":
            workers = _wait_for_run_workers(env["LUMINA_HOME"], seconds=15)
            if not workers:
                continue
            _kill_with_children(random.choice(workers))
        elif action == "database_restarts":
            pgdata = Path(env["LUMINA_HOME"]) / "pgdata"
            stop_embedded_server(pgdata)
            time.sleep(3)
            start = "import sys; from pathlib import Path; from lumina_pipeline.storage.database import " \
                    "start_embedded_server; start_embedded_server(Path(sys.argv[1]))"
            subprocess.run([sys.executable, "-c", start, str(pgdata)], check=True, capture_output=True)
        done[action] += 1
    return done


def _wait_for_run_workers(home: str, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while not (workers := _run_workers(home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return workers


def _run_workers(home: str) -> list[int]:
    """Run workers the soak's daemon started: the children of its run launcher's forkserver
    (which carry the forkserver's command line), each executing one run: killing one is a run
    dying in the middle. The forkserver is told by the LUMINA_HOME it started with, so that no
    other program's forkserver loses its children."""
    table = _processes()
    forked = {pid for pid, (_, command) in table.items() if b"multiprocessing.forkserver" in command}
    servers = {pid for pid in forked if table[pid][0] not in forked and _home_of(pid) == os.fsencode(home)}
    return [pid for pid, (parent, _) in table.items() if parent in servers]


def _home_of(pid: int) -> bytes | None:
    """The LUMINA_HOME process `pid` started with, if any."""
    with contextlib.suppress(OSError):
        for variable in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if variable.startswith(b"LUMINA_HOME="):
                return variable.removeprefix(b"LUMINA_HOME=")
    return None


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid: (parent pid, command line) of every process of this machine."""
    table = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if entry.name.isdigit():
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                table[int(entry.name)] = (parent, (entry / "cmdline").read_bytes())
    return table


def _kill_with_children(pid: int) -> None:
    table = _processes()
    family, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, (parent, _) in table.items() if parent in frontier]
        family += frontier
    for member in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def _settle(engine, limit: float) -> float | None:
    """Seconds until `lumina run soak` would have nothing to do (its folders as last
    inventoried, no file left to read, each grouping made from what the catalog holds) and no
    run is in progress, three polls in a row; None if that never happened."""
    started, calm = time.monotonic(), 0
    while time.monotonic() - started < limit:
        time.sleep(10)
        with contextlib.suppress(Exception), Session(engine) as session:  # the database may still be coming back
            settled = unchanged_inventory(session.connection(), get_catalog(session, "soak")) is not None
            busy = _count(engine, f"SELECT count(*) FROM runs WHERE status IN {IN_PROGRESS}")
            calm = calm + 1 if settled and not busy else 0
            if calm == 3:
                return round(time.monotonic() - started, 1)
    return None


def _export(env: dict[str, str], catalog: str) -> dict:
    return json.loads(_lumina(env, "export", catalog))


def _differences(soaked: dict, clean: dict) -> list[str]:
    """What the soaked catalog says differently from the clean one (ids and roots aside: a stack,
    group or burst keeps its id while it lasts, so the soaked one's ids tell its history)."""
    def files(document):
        return {f["path"]: {k: v for k, v in f.items() if k not in ("source_root", "batch", "stack", "rating")}
                for f in document["files"] if f["status"] != "deleted"}

    def grouped(document, key):
        return sorted(sorted(g["members"]) for g in document[key])

    ours, theirs = files(soaked), files(clean)
    found = [f"{path}: {ours.get(path)} != {theirs.get(path)}" for path in sorted(ours.keys() | theirs.keys())
             if ours.get(path) != theirs.get(path)]
    for key in ("stacks", "duplicate_groups", "bursts"):
        if grouped(soaked, key) != grouped(clean, key):
            found.append(f"{key}: {grouped(soaked, key)} != {grouped(clean, key)}")
    return found


def _rows(engine, sql: str) -> list:
    with engine.connect() as connection:
        return connection.execute(text(sql)).all()


def _count(engine, sql: str) -> int:
    return _rows(engine, sql)[0][0]


if __name__ == "__main__":
    sys.exit(main())
