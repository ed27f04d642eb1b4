"""Shared fixtures: a copy of the photo corpus and a real, embedded PostgreSQL.

The corpus lives beside the project (`../shared/corpus`, or `$LUMINA_CORPUS`); tests use a
copy made by its own `prepare.py`, never the folder itself.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lumina_pipeline.storage.database import make_engine, migrate, stop_embedded_server  # noqa: F401 (for tests)

PROJECT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("LUMINA_CORPUS", PROJECT.parent / "shared" / "corpus"))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """One xdist worker more than cores (`-n auto`): the slowest test files mostly wait for
    daemons, sensors and processes, and the extra worker uses the time they leave (on two
    cores the suite took 740 s with two workers, 617 s with three, and as long with four)."""
    return len(os.sched_getaffinity(0)) + 1


# The test files of a minute or more (on two cores; mostly waiting for daemons and processes),
# longest first: xdist hands files out in this order (`--no-loadscope-reorder`), the others after
# them. Started late, the longest ran alone for its last minute while the other workers had
# nothing left to do.
LONGEST_FIRST = ("test_run_monitoring.py", "test_cli.py", "defs/test_celery.py", "defs/test_concurrency.py",
                 "defs/test_embeddings.py", "defs/test_captions.py", "actions/test_organize.py",
                 "defs/test_groups.py", "test_deployment.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(Path(__file__).parent).as_posix()
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: files keep their tests' order, and the rest their order


@dataclass(frozen=True)
class Corpus:
    photos: Path
    manifest: dict

    def files(self, **where) -> list[dict]:
        return [f for f in self.manifest["files"] if all(f.get(k) == v for k, v in where.items())]

    def real_path(self, record: dict) -> bytes:
        relative = bytes.fromhex(record["path_hex"]) if "path_hex" in record else record["path"].encode()
        return os.fsencode(self.photos) + b"/" + relative


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    if not (CORPUS / "prepare.py").exists():
        if os.environ.get("CI"):
            pytest.fail(f"the photo corpus is missing at {CORPUS}")
        pytest.skip(f"no photo corpus at {CORPUS} (set LUMINA_CORPUS)")
    destination = tmp_path_factory.mktemp("corpus")
    subprocess.run([sys.executable, str(CORPUS / "prepare.py"), str(destination)], check=True, capture_output=True)
    manifest = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
    return Corpus(destination / "photos", manifest)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real PostgreSQL + pgvector (pgserver) for the whole test run, migrated to head."""
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    # commits need not outlive a crash of the machine running the tests: none waits for its disk write
    server.psql("ALTER SYSTEM SET synchronous_commit = off; SELECT pg_reload_conf();")
    url = server.get_uri()
    migrate(make_engine(url))
    yield url
    server.cleanup()


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Iterator[str]:
    """The exported models, shared by every test, every `lumina` process of `lumina_env` and
    every xdist worker (an export takes seconds; the first export has a test of its own). Two
    workers exporting at once each write a file of their own, then rename it."""
    session_root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        session_root = session_root.parent  # a worker's folder is inside the session's
    cache = str(session_root / "models")
    os.environ["LUMINA_MODEL_CACHE"] = cache
    yield cache
    del os.environ["LUMINA_MODEL_CACHE"]


def lumina_env(home: Path, **settings: str) -> dict[str, str]:
    """The environment of a person's `lumina` command on `home`: this process's, without the
    Lumina and Dagster variables that tests set in it, but with its exported models (under
    pytest, the session's)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LUMINA_", "DAGSTER_")) or k == "LUMINA_MODEL_CACHE"}
    return env | {"LUMINA_HOME": str(home), **settings}


def prepared_env(home: Path, **settings: str) -> dict[str, str]:
    """`lumina_env` plus what `lumina` gives the processes it starts (database URL,
    DAGSTER_HOME, ...); the home's embedded database is left running, as `lumina` leaves it."""
    env = lumina_env(home, **settings)
    prepared = subprocess.run(
        [sys.executable, "-c", "import json, os; from lumina_pipeline import home; home.prepare(create=True); "
         "print(json.dumps({k: v for k, v in os.environ.items() if k.startswith(('LUMINA_', 'DAGSTER_'))}))"],
        env=env, check=True, capture_output=True, text=True,
    )
    return env | json.loads(prepared.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def engine(database_url: str):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
