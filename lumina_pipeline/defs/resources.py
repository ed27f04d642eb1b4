"""Resources: the catalog database and the thumbnail store, bound from the environment."""

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from lumina_pipeline.storage.database import make_engine


class CatalogDatabase(dg.ConfigurableResource):
    """The PostgreSQL holding the catalog tables; one engine per run process."""

    url: str
    _engine: Engine | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = make_engine(self.url)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits together at the end of the block, or not at all."""
        with Session(self._engine) as session, session.begin():
            yield session


class ThumbnailStore(dg.ConfigurableResource):
    """JPEG thumbnails on disk, one per distinct content: `<root>/<catalog>/<sha[:2]>/<sha>.jpg`."""

    root: str

    def save_all(self, catalog: str, checksums: Sequence[str | None], jpegs: Sequence[bytes | None]) -> list[str | None]:
        """Write each thumbnail (atomically, so a killed run leaves no half file); return
        the paths relative to the store root, None where there is no thumbnail."""
        return [self._save(catalog, checksum, jpeg) if jpeg else None for checksum, jpeg in zip(checksums, jpegs)]

    def _save(self, catalog: str, checksum: str, jpeg: bytes) -> str:
        relative = Path(catalog) / checksum[:2] / f"{checksum}.jpg"
        target = Path(self.root) / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(jpeg)
            partial.replace(target)
        return relative.as_posix()


class FolderWatch(dg.ConfigurableResource):
    """How long one tick of the folder-change sensor may walk before the rest of the walk
    waits for the next tick (Dagster cancels a tick at 60 s)."""

    tick_budget_seconds: float = 40.0


@dg.definitions
def resources() -> dg.Definitions:
    # `lumina` sets both variables (embedded server and `$LUMINA_HOME/thumbnails` by default).
    return dg.Definitions(
        resources={
            "database": CatalogDatabase(url=dg.EnvVar("LUMINA_DATABASE_URL")),
            "thumbnails": ThumbnailStore(root=dg.EnvVar("LUMINA_THUMBNAIL_DIR")),
            "folder_watch": FolderWatch(),
        }
    )
