"""Duplicate groups and bursts, one path for both: the catalog's rows, the previous result, replace, listing."""

import codecs
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Connection, text

from lumina_pipeline.analysis.bursts import SELECTION_METHOD
from lumina_pipeline.analysis.continuity import (
    PREVIOUS_MEMBERS_SCHEMA,
    PREVIOUS_SCHEMA,
    REMEMBERED_SCHEMA,
    Previous,
    Settled,
)
from lumina_pipeline.analysis.duplicates import HASHES
from lumina_pipeline.analysis.files import shown
from lumina_pipeline.storage.fields import as_text
from lumina_pipeline.storage.frames import copy_into, read_frame, stage

FILE_NAME = "substring(encode(path, 'escape') FROM '[^/]*$')"  # an images row's file name: its path's last part

# the fields (storage/fields.py) the rules read, as text (duration_seconds then parsed as a number)
READ_FIELDS = ("captured_at", "captured_at_source", "capture_offset", "duration_seconds", "content_identifier",
               "camera_make", "camera_model", "camera_serial")
CATALOG_ROWS_SCHEMA = {
    "id": pl.Int64,
    "source_root": pl.String,
    "path": pl.String,  # non-ASCII bytes escaped: for folder rules and tie-breaks, not display
    "checksum": pl.String,
    "size_bytes": pl.Int64,
    "kind": pl.String,
    "status": pl.String,
    "pixels": pl.Int64,
    "quality_score": pl.Int64,
    "richness": pl.Int64,
    **{name: pl.Float64 if name == "duration_seconds" else pl.String for name in READ_FIELDS},
    **dict.fromkeys(HASHES, pl.String),
    "stack_id": pl.String,
    "stack_primary": pl.Boolean,  # null outside a stack
    "burst_id": pl.String,
}


@dataclass(frozen=True)
class Grouping:
    """Where one kind of grouping is stored. The SQL fragments call a group `g`, a member's
    image `i` and the chosen image `c`; the settled frames are continuity.Settled's."""

    table: str  # one row per group: id, catalog_id, reviewed, choice, chosen and `columns`
    choice: str  # the chosen image's column (a primary, a best frame)
    chosen: str  # whether a person chose it
    columns: tuple[pl.Expr, ...]  # the kind's own columns, from the settled groups
    kind: str  # the continuity kind of a group g (exact / perceptual / burst)
    members: str  # joins a group g to its members' images i
    member_columns: tuple[str, ...]  # of the settled members, staged with group_id and id
    link: str  # writes the staged `settled_members` (group_id, id, member_columns)
    member_order: str  # of the listed members
    order: str  # of the listed groups
    unlink: str = ""  # clears the catalog's members before its groups are deleted
    on_choice: str = ""  # more SET clauses when a person chooses
    # columns of load_catalog_rows its rule does not read: its own results and later groupings'
    ignores: tuple[str, ...] = ()


DUPLICATES = Grouping(
    table="duplicate_groups", choice="primary_image_id", chosen="primary_chosen",
    columns=(pl.col("similarity_type", "confidence"),),
    kind="g.similarity_type",
    members="JOIN duplicate_members m ON m.group_id = g.id JOIN images i ON i.id = m.image_id",
    member_columns=("similarity_score",),
    link="""INSERT INTO duplicate_members (group_id, image_id, similarity_score)
            SELECT group_id::uuid, id, similarity_score FROM settled_members""",
    member_order="i.id = g.primary_image_id DESC, m.similarity_score DESC, i.path",
    order="count(*) DESC, g.similarity_type, c.path",  # largest first
)
STACKS = Grouping(
    table="stacks", choice="primary_image_id", chosen="primary_chosen",
    columns=(pl.col("kind"),),
    kind="'stack'",
    members="JOIN images i ON i.stack_id = g.id",
    member_columns=(),
    link="UPDATE images SET stack_id = m.group_id::uuid FROM settled_members m WHERE images.id = m.id",
    member_order="i.id = g.primary_image_id DESC, i.path",
    order="c.path",
    unlink="UPDATE images SET stack_id = NULL WHERE catalog_id = :c AND stack_id IS NOT NULL",
    ignores=("stack_id", "stack_primary", "burst_id"),
)
BURSTS = Grouping(
    table="bursts", choice="best_image_id", chosen="best_chosen",
    columns=(pl.col("image_count", "start_time", "end_time", "duration_seconds", "camera_make", "camera_model"),
             SELECTION_METHOD),
    kind="'burst'",
    members="JOIN images i ON i.burst_id = g.id",
    member_columns=("sequence",),
    link="""UPDATE images SET burst_id = m.group_id::uuid, burst_sequence = m.sequence
            FROM settled_members m WHERE images.id = m.id""",
    member_order="i.burst_sequence",
    order="g.start_time",
    unlink="UPDATE images SET burst_id = NULL, burst_sequence = NULL WHERE catalog_id = :c AND burst_id IS NOT NULL",
    on_choice=", selection_method = 'user'",  # SELECTION_METHOD of a person's choice
    ignores=("stack_primary", "burst_id"),
)


def readable_path(escaped: str) -> str:
    """A `load_catalog_rows` path as a person reads it (UTF-8 names as text). PostgreSQL's
    escape format writes only `\\\\` and `\\ooo`, which Python's escape decoding reads alike."""
    return shown(codecs.escape_decode(escaped.encode())[0])


def load_catalog_rows(connection: Connection, catalog_id: uuid.UUID) -> pl.DataFrame:
    """Every read file of a catalog (not deleted, quarantined, ignored or pending) and its
    sidecars, in one query, with the stack and burst each belongs to as last stored."""
    query = f"""
        SELECT i.id, i.source_root, encode(i.path, 'escape'), i.checksum, i.size_bytes, i.kind, i.status,
               CAST({as_text("width")} AS bigint) * CAST({as_text("height")} AS bigint), i.quality_score,
               (SELECT count(*) FROM jsonb_object_keys(coalesce(i.metadata, '{{}}'))
                 ) + (SELECT count(*) FROM jsonb_object_keys(coalesce(i.dates, '{{}}'))),
               {", ".join(as_text(name) for name in READ_FIELDS)},
               i.dhash, i.ahash, i.whash, i.phash, i.stack_id::text, s.primary_image_id = i.id, i.burst_id::text
        FROM images i LEFT JOIN stacks s ON s.id = i.stack_id
        WHERE i.catalog_id = :c AND (i.checksum IS NOT NULL OR i.kind = 'sidecar')
          AND i.status NOT IN ('deleted', 'ignored', 'pending', 'quarantined')"""
    return read_frame(connection, query, {"c": catalog_id}, CATALOG_ROWS_SCHEMA)


def load_previous(connection: Connection, catalog_id: uuid.UUID, grouping: Grouping) -> Previous:
    """The catalog's stored groups of a kind (`grouping`), their members as grouped (a file
    edited since has another checksum in its row, not in the group people decided on), and
    the decisions remembered on those gone before them, for continuity.settle."""
    params = {"c": catalog_id}
    groups = read_frame(connection, f"""
        SELECT id::text, reviewed, CASE WHEN {grouping.chosen} THEN {grouping.choice} END,
               member_checksums[array_position(member_ids, {grouping.choice})],
               (SELECT {FILE_NAME} FROM images WHERE id = {grouping.choice})
        FROM {grouping.table} g WHERE catalog_id = :c""", params, PREVIOUS_SCHEMA)
    members = read_frame(connection, f"""
        SELECT g.id::text, {grouping.kind}, unnest(g.member_checksums), unnest(g.member_ids) FROM {grouping.table} g
        WHERE g.catalog_id = :c""", params, PREVIOUS_MEMBERS_SCHEMA)
    remembered = read_frame(connection, f"""
        SELECT {", ".join(REMEMBERED_SCHEMA)} FROM remembered_decisions
        WHERE catalog_id = :c AND grouping = :grouping""", {**params, "grouping": grouping.table}, REMEMBERED_SCHEMA)
    return Previous(groups, members, remembered)


def input_digest(rows: pl.DataFrame, grouping: Grouping, settings: str) -> str:
    """What a regrouping of a kind reads: the catalog's rows (load_catalog_rows) but the columns
    its rule ignores, and its `settings` (rule and code version). Equal digests, equal results."""
    hashes = rows.drop(grouping.ignores).sort("id").hash_rows(seed=0)  # stable within a polars version
    return hashlib.sha256(settings.encode() + hashes.to_numpy().tobytes()).hexdigest()


def last_regrouping(connection: Connection, catalog_id: uuid.UUID, grouping: Grouping) -> dict:
    """What the catalog's last regrouping of a kind read ("read", its input_digest) and found
    ("figures"), as replace stored them with its groups; empty before the first."""
    last = connection.execute(
        text("SELECT groupings -> :kind FROM catalogs WHERE id = :c"), {"kind": grouping.table, "c": catalog_id}
    ).scalar_one()
    return last or {}


def replace(
    connection: Connection, catalog_id: uuid.UUID, grouping: Grouping, settled: Settled, read: str, figures: dict
) -> None:
    """Swap the catalog's groups of a kind, and its remembered decisions, for the settled ones,
    and record what was read (input_digest) and found (caller's transaction: all or nothing)."""
    params = {"c": catalog_id}
    connection.execute(
        text("UPDATE catalogs SET groupings = groupings || jsonb_build_object(:kind, CAST(:last AS jsonb))"
             " WHERE id = :c"),
        {**params, "kind": grouping.table, "last": json.dumps({"read": read, "figures": figures})},
    )
    if grouping.unlink:
        connection.execute(text(grouping.unlink), params)
    connection.execute(text(f"DELETE FROM {grouping.table} WHERE catalog_id = :c"), params)
    as_grouped = settled.members.sort("id").group_by("group_id").agg(  # as PostgreSQL array literals
        member_ids=pl.format("{{{}}}", pl.col("id").cast(pl.String).str.join(",")),
        member_checksums=pl.format("{{{}}}", pl.col("checksum").fill_null("NULL").str.join(",")),
    )
    groups = settled.groups.join(as_grouped, on="group_id").select(
        *grouping.columns, "member_ids", "member_checksums", id="group_id", catalog_id=pl.lit(str(catalog_id)),
        reviewed="reviewed", **{grouping.choice: "choice", grouping.chosen: "chosen"},
    )
    copy_into(connection, grouping.table, groups)
    connection.execute(text("DELETE FROM remembered_decisions WHERE catalog_id = :c AND grouping = :grouping"),
                       {**params, "grouping": grouping.table})
    remembered = settled.remembered.with_columns(catalog_id=pl.lit(str(catalog_id)), grouping=pl.lit(grouping.table))
    copy_into(connection, "remembered_decisions", remembered)
    stage(connection, "settled_members", settled.members.select("group_id", "id", *grouping.member_columns))
    connection.execute(text(grouping.link))


@dataclass(frozen=True, slots=True)
class ListedGroup:
    id: str
    reviewed: bool
    chosen_path: bytes | None  # of its primary or best frame
    paths: list[bytes]  # its members', duplicates primary first, bursts in capture order
    row: dict[str, Any]  # its table's row, with the kind's own columns


def catalog_groups(connection: Connection, catalog_id: uuid.UUID, grouping: Grouping) -> list[ListedGroup]:
    """The catalog's groups of a kind, in the kind's order."""
    rows = connection.execute(text(f"""
        SELECT g.*, c.path AS chosen_path, array_agg(i.path ORDER BY {grouping.member_order}) AS paths
        FROM {grouping.table} g {grouping.members} LEFT JOIN images c ON c.id = g.{grouping.choice}
        WHERE g.catalog_id = :c
        GROUP BY g.id, c.path
        ORDER BY {grouping.order}"""), {"c": catalog_id})
    return [ListedGroup(str(row.id), row.reviewed, row.chosen_path and bytes(row.chosen_path),
                        [bytes(path) for path in row.paths], dict(row._mapping)) for row in rows]


def groups_holding_one_shot_twice(connection: Connection, catalog_id: uuid.UUID) -> int:
    """Duplicate groups in which two members are files of one stack (never right)."""
    return connection.execute(text("""
        SELECT count(DISTINCT group_id) FROM (
            SELECT m.group_id FROM duplicate_groups g
            JOIN duplicate_members m ON m.group_id = g.id JOIN images i ON i.id = m.image_id
            WHERE g.catalog_id = :c AND i.stack_id IS NOT NULL
            GROUP BY m.group_id, i.stack_id HAVING count(*) > 1) twice"""), {"c": catalog_id}).scalar_one()
