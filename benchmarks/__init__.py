"""Benchmarks of the issues' performance targets (`make bench`)."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lumina_pipeline.storage.database import make_engine, migrate


@contextmanager
def scratch_database() -> Iterator[tuple[Path, str]]:
    """A temporary folder and an embedded PostgreSQL migrated to head, both removed after."""
    import pgserver

    root = Path(tempfile.mkdtemp(prefix="lumina-bench-"))
    server = pgserver.get_server(root / "pg", cleanup_mode="stop")
    try:
        migrate(make_engine(server.get_uri()))
        yield root, server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)
