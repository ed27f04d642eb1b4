"""The images table: inventory rows in, analysis results in, rows out for export."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Connection, text

from lumina_pipeline.analysis.files import WALK_SCHEMA
from lumina_pipeline.analysis.inventory import InventoryChanges
from lumina_pipeline.storage import fields
from lumina_pipeline.storage.frames import copy_into, read_frame, rows_as, stage
from lumina_pipeline.storage.tags import MANUAL

FILE_SCHEMA = {"id": pl.Int64, **WALK_SCHEMA}  # a row's file as the walk found it
INVENTORY_SCHEMA = {**FILE_SCHEMA, "batch": pl.String, "kind": pl.String, "status": pl.String}
PENDING_SCHEMA = {**FILE_SCHEMA, "kind": pl.String, "change_stamp": pl.Int64, "checksum": pl.String, "phash": pl.String}
VERIFY_SCHEMA = {**FILE_SCHEMA, "checksum": pl.String}


def load_inventory(connection: Connection, catalog_id: uuid.UUID) -> pl.DataFrame:
    query = """SELECT id, source_root, path, size_bytes, mtime_ns, batch, kind, status
               FROM images WHERE catalog_id = :c"""
    return read_frame(connection, query, {"c": catalog_id}, INVENTORY_SCHEMA)


def apply_inventory(connection: Connection, catalog_id: uuid.UUID, changes: InventoryChanges) -> None:
    """Insert new files, update changed ones, mark vanished ones deleted (caller's transaction).

    Every row changed or marked deleted gets a new `change_stamp`, so that a batch that read
    the row before does not write over it (write_analysis)."""
    copy_into(connection, "images", changes.new.select(
        "source_root", "path", "kind", "size_bytes", "mtime_ns", "batch", "status", "error",
        catalog_id=pl.lit(str(catalog_id)),
    ))
    stage(connection, "changed_files", changes.changed)
    connection.execute(text("""
        UPDATE images SET size_bytes = c.size_bytes, mtime_ns = c.mtime_ns,
                          status = c.status, error = c.error, change_stamp = images.change_stamp + 1,
                          updated_at = now()
        FROM changed_files c WHERE images.id = c.id"""))
    stage(connection, "deleted_files", changes.deleted)
    connection.execute(text("""
        UPDATE images SET status = 'deleted', change_stamp = images.change_stamp + 1, updated_at = now()
        FROM deleted_files d WHERE images.id = d.id"""))


# A file is to be read when it is new or changed (pending), or when another analysis
# version read it (an algorithm or library upgrade): old and new hashes never mix.
TO_READ = """(status = 'pending' OR (kind IN ('image', 'raw', 'video') AND status NOT IN ('deleted', 'quarantined')
              AND analysis_version IS DISTINCT FROM :version))"""
# A file that could not be read (photos._cannot_read: permissions, a share's hiccup) or not in
# time may read now, with neither its size nor its date changed: a batch reading its neighbours
# tries it again, and so do the nightly schedule and `lumina run`, which a person starts. The
# daemon's rescans do not: each would start a batch for a file that stays locked.
UNREADABLE = """(status = 'error' AND (error LIKE 'cannot read file:%' OR error LIKE 'not read and decoded within%'))"""


def pending_files(
    connection: Connection, catalog_id: uuid.UUID, batch: str, version: str, also: Sequence[int] = ()
) -> pl.DataFrame:
    """Files of one batch that are new or changed since they were last read, were read by
    another analysis version or could not be read, and the files `also` asks for (photos
    without a vector); with the row's version (size_bytes, mtime_ns, change_stamp) for write_analysis,
    and the checksum and pHash it was last read with (null: never)."""
    query = f"""SELECT id, source_root, path, size_bytes, mtime_ns, kind, change_stamp, checksum, phash FROM images
                WHERE catalog_id = :c AND batch = :batch AND ({TO_READ} OR {UNREADABLE} OR id = ANY(:also))
                ORDER BY id"""
    params = {"c": catalog_id, "batch": batch, "version": version, "also": list(also)}
    return read_frame(connection, query, params, PENDING_SCHEMA)


def pending_batches(connection: Connection, catalog_id: uuid.UUID, version: str, *, unreadable=False) -> list[str]:
    """The catalog's batches holding a file to read: missing or stale partitions; with
    `unreadable`, also those holding a file that could not be read."""
    to_read = f"({TO_READ} OR {UNREADABLE})" if unreadable else TO_READ
    return list(connection.execute(
        text(f"SELECT DISTINCT batch FROM images WHERE catalog_id = :c AND {to_read} ORDER BY batch"),
        {"c": catalog_id, "version": version},
    ).scalars())


def waiting_batches(connection: Connection, catalog_id: uuid.UUID) -> int | None:
    """How many of the catalog's batches hold a file waiting to be read (`pending`); None
    before its first inventory."""
    walked, waiting = connection.execute(text("""
        SELECT EXISTS (SELECT 1 FROM images WHERE catalog_id = :c),
               (SELECT count(DISTINCT batch) FROM images WHERE catalog_id = :c AND status = 'pending')"""),
        {"c": catalog_id}).one()
    return waiting if walked else None


def write_analysis(
    connection: Connection, analysis: pl.DataFrame, hash_version: str, analysis_version: str
) -> pl.Series:
    """Store one batch's analysis (an `id` column plus photos.ANALYSIS_SCHEMA without the
    thumbnail bytes, plus `thumbnail_path`, plus the `size_bytes`, `mtime_ns` and
    `change_stamp` pending_files gave) in the caller's transaction; return the ids written.

    Only rows still as the batch read them are written: a row the inventory changed or marked
    deleted meanwhile keeps what the inventory gave it (pending, to be read again). A file
    that changed while it was read (status `pending`) gets only its status and reason, and no
    analysis version, so the next batch reads it again."""
    stage(connection, "analysis", analysis)
    unchanged = """images.id = a.id AND images.size_bytes = a.size_bytes
                   AND images.mtime_ns = a.mtime_ns AND images.change_stamp = a.change_stamp"""
    read = connection.execute(
        text(f"""
        UPDATE images SET
            status = a.status, error = a.error, checksum = a.checksum,
            {fields.written("dates")}, {fields.written("metadata")},
            dhash = a.dhash, ahash = a.ahash, whash = a.whash, phash = a.phash,
            hash_version = CASE WHEN a.dhash IS NULL THEN NULL ELSE :hash_version END,
            geohash_4 = left(a.geohash, 4), geohash_6 = left(a.geohash, 6), geohash_8 = a.geohash,
            quality_score = a.quality_score, thumbnail_path = a.thumbnail_path,
            processing_flags = jsonb_strip_nulls(jsonb_build_object('exif_error', a.exif_error)),
            analysis_version = :analysis_version, updated_at = now()
        FROM analysis a WHERE {unchanged} AND a.status <> 'pending'
        RETURNING images.id"""),
        {"hash_version": hash_version, "analysis_version": analysis_version},
    ).scalars().all()
    changed = connection.execute(
        text(f"""UPDATE images SET status = a.status, error = a.error, updated_at = now()
                 FROM analysis a WHERE {unchanged} AND a.status = 'pending' RETURNING images.id""")
    ).scalars().all()
    return pl.Series("id", [*read, *changed], dtype=pl.Int64)


@dataclass(frozen=True, slots=True)
class CatalogFile:
    source_root: str
    path: bytes
    size_bytes: int
    kind: str
    status: str
    error: str | None
    checksum: str | None
    batch: str
    stack: str | None  # its stack's id
    kept: bool
    rating: int | None
    tags: list[str]  # a person's (manual), by name
    fields: dict[str, Any]  # every field of storage/fields.py, None where absent
    quality_score: int | None
    dhash: str | None
    ahash: str | None
    whash: str | None
    phash: str | None
    geohash_6: str | None
    geohash_8: str | None


def catalog_files(connection: Connection, catalog_id: uuid.UUID) -> list[CatalogFile]:
    """Every file of a catalog with what the pipeline knows of it, in path order."""
    every_field = ", ".join(f"'{name}', {fields.field(name)}" for name in fields.FIELDS)
    rows = connection.execute(
        text(f"""SELECT i.source_root, i.path, i.size_bytes, i.kind, i.status, i.error, i.checksum, i.batch,
                        i.stack_id::text AS stack, i.kept, i.rating,
                        ARRAY(SELECT t.name FROM image_tags it JOIN tags t ON t.id = it.tag_id
                              WHERE it.image_id = i.id AND it.source = :manual ORDER BY t.name) AS tags,
                        jsonb_build_object({every_field}) AS fields,
                        i.quality_score, i.dhash, i.ahash, i.whash, i.phash, i.geohash_6, i.geohash_8
                 FROM images i WHERE i.catalog_id = :c ORDER BY i.source_root, i.path"""),
        {"c": catalog_id, "manual": MANUAL},
    )
    return rows_as(CatalogFile, rows)


def status_counts(connection: Connection, catalog_id: uuid.UUID, batch: str | None = None) -> dict[str, int]:
    """Files of the catalog (or of one of its batches) by status."""
    rows = connection.execute(
        text("""SELECT status, count(*) FROM images WHERE catalog_id = :c AND (CAST(:b AS text) IS NULL OR batch = :b)
                GROUP BY status"""),
        {"c": catalog_id, "b": batch},
    )
    return dict(rows.all())


def errors(connection: Connection, catalog_id: uuid.UUID, limit: int) -> list[tuple[bytes, str]]:
    """(path, reason) of the first `limit` files of the catalog that could not be read, by path."""
    rows = connection.execute(
        text("SELECT path, error FROM images WHERE catalog_id = :c AND status = 'error' ORDER BY path LIMIT :n"),
        {"c": catalog_id, "n": limit},
    )
    return [(bytes(path), error) for path, error in rows]


def files_to_verify(connection: Connection, catalog_id: uuid.UUID, share: float) -> pl.DataFrame:
    """The `share` of the catalog's read files whose checksum was verified longest ago."""
    query = """
        WITH readable AS (
            SELECT id, source_root, path, size_bytes, mtime_ns, checksum, verified_at FROM images
            WHERE catalog_id = :c AND checksum IS NOT NULL AND status IN ('ok', 'skipped'))
        SELECT id, source_root, path, size_bytes, mtime_ns, checksum FROM readable
        ORDER BY verified_at NULLS FIRST, id
        LIMIT (SELECT ceil(count(*) * :share) FROM readable)"""
    return read_frame(connection, query, {"c": catalog_id, "share": share}, VERIFY_SCHEMA)


def mark_verified(connection: Connection, ids: pl.Series) -> None:
    stage(connection, "verified", ids.to_frame("id"))
    connection.execute(text("UPDATE images SET verified_at = now() FROM verified v WHERE images.id = v.id"))


def unfinished_images(connection: Connection, catalog_id: uuid.UUID) -> dict[str, int]:
    """Photos and videos read as ok but missing metadata or hashes (a video's come from its
    poster frame), and files not read yet."""
    return dict(connection.execute(text("""
        SELECT count(*) FILTER (WHERE status = 'ok' AND kind IN ('image', 'raw', 'video')
                                AND (metadata IS NULL OR dhash IS NULL OR checksum IS NULL)) AS incomplete,
               count(*) FILTER (WHERE status = 'pending') AS pending
        FROM images WHERE catalog_id = :c"""), {"c": catalog_id}).one()._mapping)


def orphaned_references(connection: Connection, catalog_id: uuid.UUID) -> int:
    """Group members and burst frames whose file the inventory no longer lists."""
    return connection.execute(text("""
        SELECT count(*) FROM images i
        WHERE i.catalog_id = :c AND i.status IN ('deleted', 'pending', 'ignored')
          AND (i.burst_id IS NOT NULL OR EXISTS (SELECT 1 FROM duplicate_members m WHERE m.image_id = i.id))"""),
        {"c": catalog_id}).scalar_one()
