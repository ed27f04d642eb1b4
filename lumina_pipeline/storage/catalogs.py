"""The catalogs table: named sets of source folders."""

import re
import unicodedata
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.inventory import SMALLEST_BATCH
from lumina_pipeline.storage.models import Catalog

CATALOG_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# The first key of Lumina's advisory locks (PostgreSQL's two-key form), so that they never meet
# another application's locks in a shared database; the second is the catalog's.
CATALOG_LOCK_SPACE = 0x4C554D  # "LUM"
# One quarantine, undo or purge of a catalog at a time (actions/runs.py); not the catalog lock:
# inventories go on during a run.
ACTIONS_LOCK_SPACE = CATALOG_LOCK_SPACE + 1
# A catalog's inventories hold theirs from before the walk until they have written what they
# found, so that a walk older than the rows is never written over them; not the catalog lock,
# so decisions and regroupings go on meanwhile.
INVENTORY_LOCK_SPACE = CATALOG_LOCK_SPACE + 2
VECTOR_INDEX_LOCK_SPACE = CATALOG_LOCK_SPACE + 3  # one process at a time indexes a vector table
RUN_LOCK_SPACE = CATALOG_LOCK_SPACE + 4  # one `lumina run` of a catalog at a time
BATCH_LOCK_SPACE = CATALOG_LOCK_SPACE + 5  # one run at a time reads a batch
# One organize run at a time into a tree, whatever its catalog: two would write a place's
# temporary copy (actions/files.py) in turn.
TREE_LOCK_SPACE = CATALOG_LOCK_SPACE + 6
# One batch or inventory of a catalog at a time writes its rows and hands people's marks from
# file to file (decisions.follow_moved_files, hand_over_deleted_files), which may take them
# from another batch's rows.
MARKS_LOCK_SPACE = CATALOG_LOCK_SPACE + 7


class CatalogError(ValueError):
    """A catalog request that cannot be carried out, with a message for the user."""


def slugify(text: str) -> str:
    """A catalog name for a folder's name, accents dropped ("Été" -> "ete"); for a name with no
    Latin letter or digit ("家族"), "photos-" and a number of its own."""
    latin = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9_-]+", "-", latin).strip("-_")[:63].rstrip("-_")
    return slug or f"photos-{zlib.crc32(text.encode()):08x}"


def add_catalog(
    session: Session, name: str, source_directories: list[str], batch_size: int = SMALLEST_BATCH
) -> Catalog:
    """Register a catalog; `source_directories` must be absolute paths of existing folders."""
    if not CATALOG_NAME.match(name):
        raise CatalogError(
            f"bad catalog name {name!r}: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    if session.scalar(select(Catalog).where(Catalog.name == name)):
        raise CatalogError(f"catalog {name!r} already exists")
    if batch_size < 1:
        raise CatalogError("batch size must be at least 1")
    catalog = Catalog(name=name, source_directories=source_directories, batch_size=batch_size)
    session.add(catalog)
    session.flush()
    return catalog


def add_source_directory(connection: Connection, catalog_id: uuid.UUID, folder: str) -> None:
    """Make `folder` (absolute) one of the catalog's source folders, unless it is one already."""
    connection.execute(text("""
        UPDATE catalogs SET source_directories = array_append(source_directories, :folder), updated_at = now()
        WHERE id = :c AND NOT :folder = ANY(source_directories)"""), {"c": catalog_id, "folder": folder})


def drop_emptied_source_directory(connection: Connection, catalog_id: uuid.UUID, folder: str) -> None:
    """Make `folder` no longer one of the catalog's source folders once none of its files is
    there (the organized tree, after an undo took every file moved into it back out)."""
    connection.execute(text("""
        UPDATE catalogs SET source_directories = array_remove(source_directories, :folder), updated_at = now()
        WHERE id = :c AND :folder = ANY(source_directories) AND cardinality(source_directories) > 1
          AND NOT EXISTS (SELECT 1 FROM images WHERE catalog_id = :c AND source_root = :folder
                                                 AND status <> 'deleted')"""),
        {"c": catalog_id, "folder": folder})


def partition_grid(session: Session) -> tuple[int, int]:
    """How many catalogs there are and the most batches one of them has: the two sides of
    Dagster's catalog x batch partitions."""
    catalogs = session.scalar(text("SELECT count(*) FROM catalogs"))
    batches = session.scalar(text("SELECT coalesce(max(n), 0) FROM (SELECT count(DISTINCT batch) AS n FROM images "
                                  "GROUP BY catalog_id) per_catalog"))
    return int(catalogs or 0), int(batches or 0)


def get_catalog(session: Session, name: str) -> Catalog:
    catalog = session.scalar(select(Catalog).where(Catalog.name == name))
    if catalog is None:
        raise CatalogError(f"no catalog named {name!r} (see `lumina catalog list`)")
    return catalog


def list_catalogs(session: Session) -> list[Catalog]:
    return list(session.scalars(select(Catalog).order_by(Catalog.name)))


def remove_catalog(session: Session, name: str) -> None:
    """Delete a catalog and, by cascade, every row that belongs to it, and the captions of
    contents no other catalog holds (captions are kept by content, for all catalogs). Not while
    its quarantine holds files or a file action is unfinished: without the journal, nothing
    could put them back."""
    catalog_id = ensure_nothing_held(session, name)
    session.execute(text("DELETE FROM catalogs WHERE id = :c"), {"c": catalog_id})
    session.execute(
        text("DELETE FROM captions c WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.checksum = c.checksum)")
    )


def ensure_nothing_held(session: Session, name: str) -> uuid.UUID:
    """The catalog's id, unless its quarantine holds files or a file action is unfinished."""
    catalog_id = get_catalog(session, name).id
    held = session.execute(text("""
        SELECT count(*) FROM file_actions
        WHERE catalog_id = :c
          AND (state IN ('planned', 'undoing', 'purging') OR (action = 'quarantine' AND state = 'done'))"""),
        {"c": catalog_id}).scalar_one()
    if held:
        raise CatalogError(f"catalog {name} has {held} files in quarantine or in an unfinished file action: "
                           f"`lumina undo {name}` puts them back, `lumina quarantine purge {name} --older-than 0` "
                           "deletes those in quarantine; then remove it")
    return catalog_id


def said_by_people(session: Session, name: str) -> dict[str, int]:
    """What people said in a catalog, which removing it forgets: decisions on groups, bursts
    and stacks (and those remembered), files kept, ratings, and the tags they gave (those
    parked too: storage/decisions.py). Refused as remove_catalog refuses."""
    row = session.execute(text("""
        SELECT (SELECT count(*) FROM duplicate_groups WHERE catalog_id = :c AND (reviewed OR primary_chosen))
             + (SELECT count(*) FROM bursts WHERE catalog_id = :c AND (reviewed OR best_chosen))
             + (SELECT count(*) FROM stacks WHERE catalog_id = :c AND primary_chosen)
             + (SELECT count(*) FROM remembered_decisions WHERE catalog_id = :c) AS decision,
               (SELECT count(*) FROM images WHERE catalog_id = :c AND kept)
             + (SELECT count(*) FROM parked_marks WHERE catalog_id = :c AND kept) AS "kept file",
               (SELECT count(*) FROM images WHERE catalog_id = :c AND rating IS NOT NULL)
             + (SELECT count(*) FROM parked_marks WHERE catalog_id = :c AND rating IS NOT NULL) AS rating,
               (SELECT count(*) FROM image_tags t JOIN images i ON i.id = t.image_id
                WHERE i.catalog_id = :c AND t.source = 'manual')
             + (SELECT coalesce(sum(cardinality(tag_ids)), 0) FROM parked_marks WHERE catalog_id = :c) AS tag"""),
        {"c": ensure_nothing_held(session, name)}).one()
    return {kind: count for kind, count in row._asdict().items() if count}


def lock_catalog(connection: Connection, catalog_id: uuid.UUID, space: int = CATALOG_LOCK_SPACE) -> None:
    """Wait for, then hold until the transaction ends, the catalog's lock (of `space`).

    Inventories, regroupings and people's decisions on groups and bursts of one catalog take
    it, whoever started them (CLI, daemon, API), so each reads what the one before wrote.
    Batch analysis does not: its writes are optimistic (storage/images.py)."""
    connection.execute(
        text("SELECT pg_advisory_xact_lock(:space, hashtext(CAST(:catalog AS text)))"),
        {"space": space, "catalog": str(catalog_id)},
    )


@contextmanager
def held_lock(engine: Engine, space: int, key: str, waiting: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Wait for (calling `waiting` first when another holds it), then hold for the block, the
    advisory lock (`space`, `key`), across the transactions of other connections: on a
    connection of its own, in no transaction itself. The process's death releases it too."""
    lock = {"space": space, "key": key}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if not connection.execute(text("SELECT pg_try_advisory_lock(:space, hashtext(:key))"), lock).scalar_one():
            waiting()
            connection.execute(text("SELECT pg_advisory_lock(:space, hashtext(:key))"), lock)
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:space, hashtext(:key))"), lock)


def batch_keys(connection: Connection, catalog_id: uuid.UUID) -> list[str]:
    """Every batch key of the catalog. Batches are ordinals filled in order, so they run from
    the first key to the catalog's highest (one index look-up, however large the catalog)."""
    highest = connection.execute(
        text("SELECT max(batch) FROM images WHERE catalog_id = :c"), {"c": catalog_id}
    ).scalar_one()
    return [] if highest is None else [str(n).zfill(len(highest)) for n in range(int(highest) + 1)]
