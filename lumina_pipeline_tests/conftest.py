"""Shared fixtures: a copy of the photo corpus and a real, embedded PostgreSQL.

The corpus lives beside the project (`../shared/corpus`, or `$LUMINA_CORPUS`); tests use a
copy made by its own `prepare.py`, never the folder itself.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from lumina_pipeline.storage.database import make_engine, migrate, stop_embedded_server  # noqa: F401 (for tests)

PROJECT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("LUMINA_CORPUS", PROJECT.parent / "shared" / "corpus"))


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
    url = server.get_uri()
    migrate(make_engine(url))
    yield url
    server.cleanup()


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> str:
    """The exported image model, shared by every test (the export takes a few seconds)."""
    return str(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def engine(database_url: str):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
