"""The file-action journal (`file_actions`, DESIGN.md): every operation on a person's file is
written here before it happens and updated after, with the images row it concerns, so that a
killed run can be finished and any run undone (actions/runs.py)."""

import uuid
from collections.abc import Sequence

import polars as pl
from sqlalchemy import Connection, LargeBinary, Row, text

from lumina_pipeline.storage.browse import KEPT_SHOTS, removable_files
from lumina_pipeline.storage.frames import copy_into, read_frame, stage
from lumina_pipeline.storage.images import VERIFY_SCHEMA

UNFINISHED = ["planned", "undoing", "purging"]  # states a killed run leaves behind
NOT_UNDONE = "not undone: "  # the reason of an operation an undo left as it was
REMOVABLE_SCHEMA = {**VERIFY_SCHEMA, "status": pl.String}  # a file as cataloged, to check before it is touched
# ... and the file kept in its place, and the stack it goes or stays with
WITH_KEEPER_SCHEMA = {**REMOVABLE_SCHEMA, "keep_id": pl.Int64, "stack_id": pl.String}


def files_to_quarantine(connection: Connection, catalog_id: uuid.UUID) -> pl.DataFrame:
    """The catalog's removable files (storage/browse.py) still in their folders, with their keepers."""
    removable = removable_files(connection, catalog_id)
    query = """SELECT i.id, i.source_root, i.path, i.size_bytes, i.mtime_ns, i.checksum, i.status,
                      r.keep_id, CAST(i.stack_id AS text) AS stack_id
               FROM unnest(CAST(:ids AS bigint[]), CAST(:keeps AS bigint[])) AS r(id, keep_id)
               JOIN images i ON i.id = r.id
               WHERE i.status NOT IN ('deleted', 'quarantined') ORDER BY i.source_root, i.path"""
    params = {"ids": [row.id for row in removable], "keeps": [row.keep_id for row in removable]}
    return read_frame(connection, query, params, WITH_KEEPER_SCHEMA)


def keepers(connection: Connection, image_ids: Sequence[int]) -> dict[int, Row]:
    """The rows of the files kept in place of removable copies: id -> where and as what."""
    rows = connection.execute(text("""SELECT id, source_root, path, size_bytes, mtime_ns, checksum, status FROM images
                                      WHERE id = ANY(:ids)""").columns(path=LargeBinary), {"ids": list(image_ids)})
    return {row.id: row for row in rows}


def kept_images(connection: Connection, catalog_id: uuid.UUID, image_ids: Sequence[int]) -> set[int]:
    """Those of `image_ids` that are kept now: a group's primary, a burst's best frame, a file a
    person keeps, or a file of a stack holding one."""
    rows = connection.execute(text(f"SELECT id FROM images WHERE id = ANY(:ids) AND id IN ({KEPT_SHOTS})"),
                              {"c": catalog_id, "ids": list(image_ids)})
    return set(rows.scalars())


def cataloged(connection: Connection, catalog_id: uuid.UUID, paths: Sequence[bytes]) -> set[bytes]:
    """Of the files at `paths`, those the catalog holds in their folders."""
    rows = connection.execute(text("""
        SELECT whole FROM (SELECT convert_to(source_root || '/', 'UTF8') || path AS whole FROM images
                           WHERE catalog_id = :c AND status NOT IN ('deleted', 'quarantined')) listed
        WHERE whole = ANY(:paths)"""), {"c": catalog_id, "paths": list(paths)})
    return {bytes(path) for path in rows.scalars()}


def placed(connection: Connection, catalog_id: uuid.UUID, targets: Sequence[bytes]) -> dict[bytes, str]:
    """Of `targets`, those a run of the catalog put there and did not take back: their checksums."""
    rows = connection.execute(text("""SELECT target, checksum FROM file_actions
                                      WHERE catalog_id = :c AND state = 'done' AND target = ANY(:targets)"""),
                              {"c": catalog_id, "targets": list(targets)})
    return {bytes(target): checksum for target, checksum in rows}


def write_plan(connection: Connection, catalog_id: uuid.UUID, run_id: str, action: str, plan: pl.DataFrame) -> None:
    """Journal a run's operations as `planned`, before any file is touched (caller's transaction)."""
    copy_into(connection, "file_actions", plan.with_columns(
        run_id=pl.lit(run_id), catalog_id=pl.lit(str(catalog_id)), action=pl.lit(action), state=pl.lit("planned")
    ))


def entries(connection: Connection, catalog_id: uuid.UUID, states: list[str], run_id: str | None = None) -> list[Row]:
    """The catalog's journal entries in `states` (of one run, when given), in the order written."""
    return list(connection.execute(text("""
        SELECT id, run_id, image_id, keep_image_id, action, operation, source, target, size_bytes, mtime_ns, checksum,
               state
        FROM file_actions
        WHERE catalog_id = :c AND state = ANY(:states) AND (CAST(:run AS text) IS NULL OR run_id = :run)
        ORDER BY id""").columns(source=LargeBinary, target=LargeBinary),  # bytes, as os functions take them
        {"c": catalog_id, "states": states, "run": run_id}))


def partners_back(connection: Connection, image_ids: Sequence[int]) -> dict[int, bytes]:
    """Of `image_ids` (files in quarantine), those whose stack has a file in its folder again
    (put back by hand): the path of one."""
    rows = connection.execute(text("""
        SELECT DISTINCT ON (i.id) i.id, convert_to(p.source_root || '/', 'UTF8') || p.path AS path
        FROM images i JOIN images p ON p.stack_id = i.stack_id AND p.id <> i.id
        WHERE i.id = ANY(:ids) AND p.status NOT IN ('quarantined', 'deleted') ORDER BY i.id, p.path
        """).columns(path=LargeBinary), {"ids": list(image_ids)})
    return {row.id: row.path for row in rows}


def quarantined_by(connection: Connection, catalog_id: uuid.UUID, image_ids: Sequence[int]) -> list[Row]:
    """The done quarantine entries of `image_ids`: id, image_id and target."""
    return list(connection.execute(text("""
        SELECT id, image_id, target FROM file_actions
        WHERE catalog_id = :c AND image_id = ANY(:ids) AND action = 'quarantine' AND state = 'done'
        """).columns(target=LargeBinary), {"c": catalog_id, "ids": list(image_ids)}))


def runs_to_undo(connection: Connection, catalog_id: uuid.UUID) -> list[str]:
    """The runs of the catalog that still have something to undo, newest first, before those
    whose undo was tried and left some (a copy whose original changed stays, on purpose), which
    come next, newest first."""
    return list(connection.execute(text(f"""
        SELECT run_id FROM file_actions WHERE catalog_id = :c AND state = 'done' GROUP BY run_id
        ORDER BY bool_or(coalesce(reason, '') LIKE '{NOT_UNDONE}%'), max(created_at) DESC, run_id DESC"""),
        {"c": catalog_id}).scalars())


def latest_undone_run(connection: Connection, catalog_id: uuid.UUID) -> str | None:
    """The run of the catalog whose files were put back last."""
    return connection.execute(text("""
        SELECT run_id FROM file_actions WHERE catalog_id = :c AND state = 'undone'
        ORDER BY updated_at DESC, id DESC LIMIT 1"""), {"c": catalog_id}).scalar()


def start_undo(connection: Connection, catalog_id: uuid.UUID, run_id: str) -> None:
    connection.execute(text("""UPDATE file_actions SET state = 'undoing', reason = NULL, updated_at = now()
                               WHERE catalog_id = :c AND run_id = :r AND state = 'done'"""),
                       {"c": catalog_id, "r": run_id})


def start_purge(connection: Connection, catalog_id: uuid.UUID, older_than_days: float) -> None:
    """Mark for deletion the files of quarantine runs started more than `older_than_days` ago."""
    connection.execute(text("""
        UPDATE file_actions SET state = 'purging', updated_at = now()
        WHERE catalog_id = :c AND action = 'quarantine' AND state = 'done'
          AND created_at < now() - make_interval(secs => :days * 86400)"""),
        {"c": catalog_id, "days": older_than_days})


def record(connection: Connection, outcomes: list[tuple[int, str, str | None]]) -> None:
    """Store each entry's new (state, reason), and its image's status: a done operation gives
    it `status_after`, an undone one its `status_before` again, a purged file is deleted while its
    row still says it is quarantined (caller's transaction). A moved file's row follows it where
    it now lies in one of the catalog's folders (`follow_moves`). The change stamp keeps a batch
    that read the row from writing over it."""
    stage(connection, "outcomes", pl.DataFrame(
        outcomes, schema={"id": pl.Int64, "state": pl.String, "reason": pl.String}, orient="row"
    ))
    connection.execute(text("""
        WITH updated AS (
            UPDATE file_actions a SET state = o.state, reason = o.reason, updated_at = now()
            FROM outcomes o WHERE a.id = o.id
            RETURNING a.image_id, a.state, a.status_before, a.status_after)
        UPDATE images SET status = CASE u.state WHEN 'done' THEN u.status_after
                                                WHEN 'undone' THEN u.status_before ELSE 'deleted' END,
                          change_stamp = images.change_stamp + 1, updated_at = now()
        FROM updated u
        WHERE images.id = u.image_id AND u.status_after IS NOT NULL AND u.state IN ('done', 'undone', 'purged')
          -- a purged file's row, unless a rescan gave it to another file put in its place by hand
          AND (u.state <> 'purged' OR images.status = u.status_after)"""))
    follow_moves(connection)


# Where each moved file of the staged outcomes now lies (its target once done, its source once
# undone), as a row's (root, path): the catalog's folder holding it and the rest. A place outside
# every folder (the quarantine) has no row: the row keeps its place, and the journal knows where the file is.
MOVED_PLACES = """
    SELECT a.image_id, a.catalog_id, a.status_before, r.root,
           substring(p.place FROM octet_length(convert_to(r.root, 'UTF8')) + 2) AS path
    FROM outcomes o JOIN file_actions a ON a.id = o.id JOIN catalogs c ON c.id = a.catalog_id
    CROSS JOIN LATERAL (SELECT CASE a.state WHEN 'done' THEN a.target ELSE a.source END AS place) p
    CROSS JOIN LATERAL (SELECT root FROM unnest(c.source_directories) root
                        WHERE position(convert_to(root || '/', 'UTF8') IN p.place) = 1
                        ORDER BY length(root) DESC LIMIT 1) r
    WHERE a.operation = 'move' AND a.state IN ('done', 'undone')"""


def follow_moves(connection: Connection) -> None:
    """Point the rows of the files `record` saw moved (organize into the catalog's tree, undo
    back out of it) at where they are now. Another row of that place told of a file gone from it,
    since no file is ever moved over another: it goes, for the place is unique. A rescan between a
    kill and the run that finished it marked the moved file deleted from its old place: it is back."""
    connection.execute(text(f"""
        DELETE FROM images i USING ({MOVED_PLACES}) m
        WHERE i.catalog_id = m.catalog_id AND i.source_root = m.root AND i.path = m.path AND i.id <> m.image_id"""))
    connection.execute(text(f"""
        UPDATE images SET source_root = m.root, path = m.path,
                          status = CASE images.status WHEN 'deleted' THEN m.status_before ELSE images.status END,
                          change_stamp = images.change_stamp + 1, updated_at = now()
        FROM ({MOVED_PLACES}) m
        WHERE images.id = m.image_id
          AND ((images.source_root, images.path) IS DISTINCT FROM (m.root, m.path) OR images.status = 'deleted')"""))
