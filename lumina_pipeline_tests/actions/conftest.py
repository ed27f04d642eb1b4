"""A reviewed library of each test module's own: a copy of the corpus, cataloged, with every
duplicate group and burst reviewed (the rule's keepers kept), and helpers to look at its files."""

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from lumina_pipeline.actions.runs import file_actions
from lumina_pipeline.storage.browse import removable_files
from lumina_pipeline.storage.decisions import decide
from lumina_pipeline.storage.groups import BURSTS, DUPLICATES
from lumina_pipeline_tests.defs.conftest import Pipeline, embedder, pipeline_for_test  # noqa: F401 (fixture)

SIDECAR = b"Backup (alter Laptop)/iPhone/IMG_0002.xmp"  # the backup Live Photo's, and its copy beside the kept one
KEPT_SIDECAR = b"Phone/2022/IMG_0002.xmp"


def snapshot(folder: Path) -> dict[bytes, tuple[str, int]]:
    """Every file below `folder`: relative path -> (SHA-256, mtime_ns)."""
    top = os.fsencode(folder)
    files = {}
    for parent, _, names in os.walk(top):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as file:
                files[os.path.relpath(path, top)] = (hashlib.file_digest(file, "sha256").hexdigest(),
                                                     os.stat(path).st_mtime_ns)
    return files


def edit_behind_the_catalog(photos: Path, grown: bytes, rewritten: bytes) -> None:
    """Change two files of the library unknown to its catalog: one grows; the other gets other
    bytes of the same size and its mtime back, so that only its checksum tells."""
    with open(photos / os.fsdecode(grown), "ab") as file:
        file.write(b"edited")
    rewrite_behind_the_catalog(photos / os.fsdecode(rewritten))


def rewrite_behind_the_catalog(path: Path) -> None:
    """Give the file at `path` other bytes of its size, and its mtime back."""
    mtime = os.stat(path).st_mtime_ns
    path.write_bytes(bytes(len(path.read_bytes())))
    os.utime(path, ns=(mtime, mtime))


@dataclass
class Library:
    pipeline: Pipeline
    catalog: str
    photos: Path
    quarantine: Path

    def actions(self, **options):
        return file_actions(self.pipeline.engine, self.catalog, os.fsencode(self.quarantine), **options)

    def quarantine_removable(self, **options):
        with self.actions(**options) as actions:
            return actions.quarantine_removable(dry_run=False)

    def undo(self, run_id: str | None = None, **options):
        with self.actions(**options) as actions:
            return actions.undo(run_id)

    def placed(self) -> dict[int, tuple]:
        """Every row of the catalog: id -> where it says its file is, its checksum, status, and
        what people and groupings decided about it (keeper, rating, manual tags, stack, burst,
        keeper of a group, reviewed or not)."""
        rows = self.pipeline.rows(self.catalog, """
            id, source_root, path, checksum, status, kept, rating, stack_id, burst_id,
            id IN (SELECT primary_image_id FROM duplicate_groups) AS group_primary,
            ARRAY(SELECT t.name FROM image_tags it JOIN tags t ON t.id = it.tag_id
                  WHERE it.image_id = images.id AND it.source = 'manual' ORDER BY t.name) AS tags""")
        return {row.pop("id"): (row.pop("source_root"), bytes(row.pop("path")), *row.values()) for row in rows}

    def rows_point_at_their_files(self) -> bool:
        """Each row of a file in the catalog's folders says where the file is."""
        return all(os.path.isfile(os.path.join(os.fsencode(root), path))
                   for root, path, _, status, *_ in self.placed().values() if status not in ("deleted", "quarantined"))

    def removable(self) -> set[bytes]:
        with self.pipeline.engine.connect() as connection:
            return {row.path for row in removable_files(connection, self.pipeline.catalog_id(self.catalog))}

    def quarantined(self) -> dict[bytes, tuple[str, int]]:
        """Every file in the catalog's quarantine, by its path in the library, whatever its run."""
        files = snapshot(self.quarantine / self.catalog)
        return {path.split(b"/", 2)[2]: state for path, state in files.items()}  # <run>/<root index>/<path>


@pytest.fixture(scope="module")
def library(request, corpus, database_url, engine, embedder, tmp_path_factory):  # noqa: F811 (the fixture)
    root = tmp_path_factory.mktemp("library")
    photos = root / "photos"
    shutil.copytree(corpus.photos, photos)  # copy2: the mtimes come along
    for sidecar in (SIDECAR, KEPT_SIDECAR):  # no analysis reads them
        (photos / os.fsdecode(sidecar)).write_text("<x:xmpmeta/>")
    with pipeline_for_test(database_url, engine, embedder, str(root / "thumbnails")) as pipeline:
        catalog = request.module.CATALOG
        pipeline.add_catalog(catalog, str(photos))
        pipeline.catalog_everything(catalog)
        with engine.begin() as connection:
            for grouping in (DUPLICATES, BURSTS):
                ids = connection.execute(text(f"SELECT id FROM {grouping.table} WHERE catalog_id = :c"),
                                         {"c": pipeline.catalog_id(catalog)}).scalars()
                for group_id in ids:
                    decide(connection, grouping, group_id, None, reviewed=True)
        yield Library(pipeline, catalog, photos, root / "quarantine")
