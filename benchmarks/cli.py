"""The CLI's responsiveness: `lumina --help`, `catalog list`, `duplicates`, `bursts` and
`export` of the cataloged photo corpus (target < 1.5 s each), against `python -c pass` of
the same run (the interpreter's own start-up)."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lumina_pipeline.storage.database import stop_embedded_server
from lumina_pipeline_tests.conftest import CORPUS

COMMANDS = [["--help"], ["catalog", "list"], ["duplicates", "corpus"], ["bursts", "corpus"], ["export", "corpus"]]
ROUNDS = 3


def timed(env: dict, *command: str) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def run() -> None:
    if not (CORPUS / "prepare.py").exists():
        print(f"\n== lumina CLI: skipped, no photo corpus at {CORPUS} ==")
        return
    with tempfile.TemporaryDirectory(prefix="lumina-bench-cli-") as folder:
        root = Path(folder)
        subprocess.run(
            [sys.executable, str(CORPUS / "prepare.py"), str(root / "corpus")], check=True, capture_output=True
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LUMINA_", "DAGSTER_"))}
        env["LUMINA_HOME"] = str(root / "home")
        lumina = [sys.executable, "-m", "lumina_pipeline.cli"]
        try:
            timed(env, *lumina, "run", "--photos", str(root / "corpus" / "photos"), "corpus")
            bare = min(timed(env, sys.executable, "-c", "pass") for _ in range(ROUNDS))
            print(f"\n== lumina CLI on the cataloged corpus, best of {ROUNDS} (target < 1.5 s each) ==")
            print(f"  python -c pass {bare:.2f} s")
            for command in COMMANDS:
                best = min(timed(env, *lumina, *command) for _ in range(ROUNDS))
                print(f"  lumina {' '.join(command):<18} {best:.2f} s = {best / bare:.0f}x python -c pass")
        finally:
            stop_embedded_server(root / "home" / "pgdata")
