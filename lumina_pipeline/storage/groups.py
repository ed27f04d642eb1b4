"""Duplicate groups and bursts: the catalog's rows in, the previous result, atomic replace."""

import codecs
import uuid

import polars as pl
from sqlalchemy import Connection, text

from lumina_pipeline.analysis.continuity import PREVIOUS_MEMBERS_SCHEMA, PREVIOUS_SCHEMA
from lumina_pipeline.analysis.files import display_path
from lumina_pipeline.storage.frames import copy_into, read_frame, stage

CATALOG_ROWS_SCHEMA = {
    "id": pl.Int64,
    "path": pl.String,  # non-ASCII bytes escaped: for folder rules and tie-breaks, not display
    "checksum": pl.String,
    "size_bytes": pl.Int64,
    "kind": pl.String,
    "status": pl.String,
    "pixels": pl.Int64,
    "quality_score": pl.Int64,
    "richness": pl.Int64,
    "captured_at": pl.String,
    "captured_at_source": pl.String,
    "camera_make": pl.String,
    "camera_model": pl.String,
    "camera_serial": pl.String,
    "dhash": pl.String,
    "ahash": pl.String,
    "whash": pl.String,
}


def readable_path(escaped: str) -> str:
    """A `load_catalog_rows` path as a person reads it (UTF-8 names as text). PostgreSQL's
    escape format writes only `\\\\` and `\\ooo`, which Python's escape decoding reads alike."""
    return display_path(codecs.escape_decode(escaped.encode())[0])[0]


def load_catalog_rows(connection: Connection, catalog_id: uuid.UUID) -> pl.DataFrame:
    """Every read file of a catalog (not deleted, ignored or pending), in one query."""
    query = """
        SELECT id, encode(path, 'escape'), checksum, size_bytes, kind, status,
               (metadata->>'width')::bigint * (metadata->>'height')::bigint, quality_score,
               (SELECT count(*) FROM jsonb_object_keys(coalesce(metadata, '{}'))
                 ) + (SELECT count(*) FROM jsonb_object_keys(coalesce(dates, '{}'))),
               dates->>'captured_at', dates->>'captured_at_source', metadata->>'camera_make',
               metadata->>'camera_model', metadata->>'camera_serial', dhash, ahash, whash
        FROM images
        WHERE catalog_id = %(catalog)s AND checksum IS NOT NULL
          AND status NOT IN ('deleted', 'ignored', 'pending')"""
    return read_frame(connection, query, {"catalog": str(catalog_id)}, CATALOG_ROWS_SCHEMA)


def load_previous_groups(connection: Connection, catalog_id: uuid.UUID) -> tuple[pl.DataFrame, pl.DataFrame]:
    params = {"catalog": str(catalog_id)}
    groups = read_frame(connection, """
        SELECT g.id::text, g.reviewed, CASE WHEN g.primary_chosen THEN g.primary_image_id END, i.checksum
        FROM duplicate_groups g LEFT JOIN images i ON i.id = g.primary_image_id
        WHERE g.catalog_id = %(catalog)s""", params, PREVIOUS_SCHEMA)
    members = read_frame(connection, """
        SELECT g.id::text, g.similarity_type, i.checksum
        FROM duplicate_groups g JOIN duplicate_members m ON m.group_id = g.id JOIN images i ON i.id = m.image_id
        WHERE g.catalog_id = %(catalog)s""", params, PREVIOUS_MEMBERS_SCHEMA)
    return groups, members


def load_previous_bursts(connection: Connection, catalog_id: uuid.UUID) -> tuple[pl.DataFrame, pl.DataFrame]:
    params = {"catalog": str(catalog_id)}
    bursts = read_frame(connection, """
        SELECT b.id::text, b.reviewed, CASE WHEN b.best_chosen THEN b.best_image_id END, i.checksum
        FROM bursts b LEFT JOIN images i ON i.id = b.best_image_id
        WHERE b.catalog_id = %(catalog)s""", params, PREVIOUS_SCHEMA)
    frames = read_frame(connection, """
        SELECT burst_id::text, 'burst', checksum FROM images
        WHERE catalog_id = %(catalog)s AND burst_id IS NOT NULL""", params, PREVIOUS_MEMBERS_SCHEMA)
    return bursts, frames


def replace_groups(connection: Connection, catalog_id: uuid.UUID, groups: pl.DataFrame, members: pl.DataFrame) -> None:
    """Swap the catalog's groups for new ones (caller's transaction: all or nothing).

    `groups`: id, primary_image_id, similarity_type, confidence, reviewed, primary_chosen;
    `members`: group_id, image_id, similarity_score.
    """
    connection.execute(text("DELETE FROM duplicate_groups WHERE catalog_id = :c"), {"c": catalog_id})
    copy_into(connection, "duplicate_groups", groups.with_columns(catalog_id=pl.lit(str(catalog_id))))
    copy_into(connection, "duplicate_members", members)


def replace_bursts(connection: Connection, catalog_id: uuid.UUID, bursts: pl.DataFrame, frames: pl.DataFrame) -> None:
    """Swap the catalog's bursts for new ones and number their frames on the images.

    `bursts`: the bursts table's columns but catalog_id; `frames`: id, burst_id, burst_sequence.
    """
    params = {"c": catalog_id}
    connection.execute(
        text("UPDATE images SET burst_id = NULL, burst_sequence = NULL WHERE catalog_id = :c AND burst_id IS NOT NULL"),
        params,
    )
    connection.execute(text("DELETE FROM bursts WHERE catalog_id = :c"), params)
    copy_into(connection, "bursts", bursts.with_columns(catalog_id=pl.lit(str(catalog_id))))
    stage(connection, "burst_frames", frames)
    connection.execute(text("""
        UPDATE images SET burst_id = f.burst_id::uuid, burst_sequence = f.burst_sequence
        FROM burst_frames f WHERE images.id = f.id"""))


def catalog_groups(connection: Connection, catalog_id: uuid.UUID) -> list[dict]:
    """Groups with their primary's path and members' paths (primary first), largest first."""
    rows = connection.execute(text("""
        SELECT g.id::text AS id, g.similarity_type, g.confidence, g.reviewed, p.path AS primary_path,
               array_agg(i.path ORDER BY i.id = g.primary_image_id DESC, m.similarity_score DESC, i.path) AS paths
        FROM duplicate_groups g
        JOIN duplicate_members m ON m.group_id = g.id
        JOIN images i ON i.id = m.image_id
        LEFT JOIN images p ON p.id = g.primary_image_id
        WHERE g.catalog_id = :c
        GROUP BY g.id, p.path
        ORDER BY count(*) DESC, g.similarity_type, p.path"""), {"c": catalog_id})
    return [dict(row._mapping) for row in rows]


def catalog_bursts(connection: Connection, catalog_id: uuid.UUID) -> list[dict]:
    """Bursts with their best frame's path and frames' paths in capture order."""
    rows = connection.execute(text("""
        SELECT b.id::text AS id, b.camera_make, b.camera_model, b.start_time, b.end_time,
               b.duration_seconds, b.reviewed, best.path AS best_path,
               array_agg(i.path ORDER BY i.burst_sequence) AS paths
        FROM bursts b
        JOIN images i ON i.burst_id = b.id
        LEFT JOIN images best ON best.id = b.best_image_id
        WHERE b.catalog_id = :c
        GROUP BY b.id, best.path
        ORDER BY b.start_time"""), {"c": catalog_id})
    return [dict(row._mapping) for row in rows]
