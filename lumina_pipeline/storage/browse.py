"""What the images API reads: images by filters in keyset pages, one image with its group,
burst and tags, duplicate groups and bursts with their members, and review progress."""

import os
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, LargeBinary, Row, text

from lumina_pipeline.analysis.files import shown
from lumina_pipeline.storage.fields import as_text, field, selected
from lumina_pipeline.storage.frames import rows_as

Listed = TypeVar("Listed")


@dataclass(frozen=True, slots=True)
class ImageRow:
    """An image as the API summarizes it: its columns and the fields it shows."""

    id: int
    catalog_id: uuid.UUID
    source_root: str
    path: bytes
    kind: str
    status: str
    size_bytes: int
    checksum: str | None
    quality_score: int | None
    rating: int | None
    description: str | None
    burst_id: uuid.UUID | None
    burst_sequence: int | None
    kept: bool
    thumbnail_path: str | None
    dhash: str | None
    ahash: str | None
    whash: str | None
    phash: str | None
    captured_at: str | None
    camera_make: str | None
    camera_model: str | None
    duration_seconds: float | None
    width: int | None  # as displayed (EXIF orientation applied)
    height: int | None
    stack: dict[str, Any] | None  # id, kind and files (id, kind, path escaped), the primary first


@dataclass(frozen=True, slots=True)
class ImageDetailRow(ImageRow):
    error: str | None
    hash_version: str | None
    geohash_8: str | None
    dates: dict[str, Any] | None  # as stored (storage/fields.py)
    metadata: dict[str, Any] | None
    is_best_frame: bool | None  # None outside a burst


SUMMARY = f"""
    i.id, i.catalog_id, i.source_root, i.path, i.kind, i.status, i.size_bytes, i.checksum, i.quality_score,
    i.rating, i.description, i.burst_id, i.burst_sequence, i.kept, i.thumbnail_path, i.dhash, i.ahash, i.whash,
    i.phash,
    {selected(("captured_at", "camera_make", "camera_model", "duration_seconds"))},
    coalesce({field("display_width")}, {field("width")}) AS width,
    coalesce({field("display_height")}, {field("height")}) AS height,
    (SELECT jsonb_build_object('id', s.id, 'kind', s.kind, 'files', jsonb_agg(
                jsonb_build_object('id', f.id, 'kind', f.kind, 'path', encode(f.path, 'escape'))
                ORDER BY f.id <> s.primary_image_id, f.path))
     FROM stacks s JOIN images f ON f.stack_id = s.id WHERE s.id = i.stack_id GROUP BY s.id) AS stack"""


@dataclass(frozen=True)
class ImageFilters:
    status: str | None = None
    kind: str | None = None
    camera: str | None = None  # part of "make model", any case
    captured_from: date | None = None  # inclusive, the camera's local date
    captured_to: date | None = None  # inclusive
    tag: str | None = None
    tag_source: str | None = None  # manual / model / openclip / ollama / combined
    geohash: str | None = None  # prefix
    in_group: bool | None = None
    in_burst: bool | None = None


def find_images(
    connection: Connection, catalog_id: uuid.UUID, filters: ImageFilters, after: int, limit: int
) -> list[ImageRow]:
    """Images matching every filter given, by id, those after `after` (keyset pages)."""
    rows = connection.execute(text(f"""
        SELECT {SUMMARY} FROM images i
        WHERE i.catalog_id = :c AND i.id > :after
          AND (CAST(:status AS text) IS NULL OR i.status = :status)
          AND (CAST(:kind AS text) IS NULL OR i.kind = :kind)
          AND (CAST(:camera AS text) IS NULL OR strpos(
                lower(concat_ws(' ', {as_text("camera_make")}, {as_text("camera_model")})), lower(:camera)) > 0)
          AND (CAST(:captured_from AS text) IS NULL OR {as_text("captured_at")} >= :captured_from)
          AND (CAST(:captured_to AS text) IS NULL OR left({as_text("captured_at")}, 10) <= :captured_to)
          AND (CAST(:tag AS text) IS NULL AND CAST(:tag_source AS text) IS NULL OR EXISTS (
                SELECT 1 FROM image_tags it JOIN tags t ON t.id = it.tag_id
                WHERE it.image_id = i.id AND (CAST(:tag AS text) IS NULL OR t.name = :tag)
                  AND (CAST(:tag_source AS text) IS NULL OR it.source = :tag_source)))
          AND (CAST(:geohash AS text) IS NULL OR starts_with(i.geohash_8, :geohash))
          AND (CAST(:in_group AS boolean) IS NULL
               OR :in_group = EXISTS (SELECT 1 FROM duplicate_members m WHERE m.image_id = i.id))
          AND (CAST(:in_burst AS boolean) IS NULL OR :in_burst = (i.burst_id IS NOT NULL))
        ORDER BY i.id LIMIT :limit"""), {
        **asdict(filters),
        "captured_from": str(filters.captured_from) if filters.captured_from else None,
        "captured_to": str(filters.captured_to) if filters.captured_to else None,  # a whole day, up to 9999-12-31
        "c": catalog_id, "after": after, "limit": limit,
    })
    return rows_as(ImageRow, rows)


def get_image(connection: Connection, image_id: int) -> ImageDetailRow | None:
    rows = connection.execute(text(f"""
        SELECT {SUMMARY}, i.error, i.hash_version, i.geohash_8, i.dates, i.metadata,
               (SELECT b.best_image_id IS NOT DISTINCT FROM i.id FROM bursts b WHERE b.id = i.burst_id) AS is_best_frame
        FROM images i WHERE i.id = :i"""), {"i": image_id})
    return next(iter(rows_as(ImageDetailRow, rows)), None)


@dataclass(frozen=True, slots=True)
class Membership:
    group_id: uuid.UUID
    similarity_type: Literal["exact", "perceptual"]
    is_primary: bool
    reviewed: bool


def membership(connection: Connection, image_id: int) -> Membership | None:
    """The duplicate group an image is a member of, if any."""
    rows = connection.execute(text("""
        SELECT g.id AS group_id, g.similarity_type, g.primary_image_id IS NOT DISTINCT FROM m.image_id AS is_primary,
               g.reviewed
        FROM duplicate_members m JOIN duplicate_groups g ON g.id = m.group_id WHERE m.image_id = :i"""),
        {"i": image_id})
    return next(iter(rows_as(Membership, rows)), None)


@dataclass(frozen=True, slots=True)
class ImageTag:
    name: str
    source: str
    confidence: float | None


def image_tags(connection: Connection, image_id: int) -> list[ImageTag]:
    return rows_as(ImageTag, connection.execute(text("""
        SELECT t.name, it.source, it.confidence FROM image_tags it JOIN tags t ON t.id = it.tag_id
        WHERE it.image_id = :i ORDER BY it.source, t.name"""), {"i": image_id}))


# One row per group (or burst), filtered from outside: the catalog and id are grouping
# columns, so PostgreSQL applies those filters before it counts members.
GROUPS = """
    SELECT g.id, g.catalog_id, g.similarity_type, g.confidence, g.reviewed, g.primary_chosen,
           g.primary_image_id, count(*) AS member_count
    FROM duplicate_groups g JOIN duplicate_members m ON m.group_id = g.id
    GROUP BY g.id, g.catalog_id"""
BURSTS = """
    SELECT b.id, b.catalog_id, b.image_count, b.start_time, b.end_time, b.duration_seconds, b.camera_make,
           b.camera_model, b.best_image_id, b.selection_method, b.reviewed, b.best_chosen
    FROM bursts b"""


@dataclass(frozen=True, slots=True)
class GroupRow:
    id: uuid.UUID
    catalog_id: uuid.UUID
    similarity_type: Literal["exact", "perceptual"]
    confidence: int
    reviewed: bool
    primary_chosen: bool
    primary_image_id: int | None
    member_count: int


@dataclass(frozen=True, slots=True)
class BurstRow:
    id: uuid.UUID
    catalog_id: uuid.UUID
    image_count: int
    start_time: datetime | None
    end_time: datetime | None
    duration_seconds: float | None
    camera_make: str | None
    camera_model: str | None
    best_image_id: int | None
    selection_method: str | None
    reviewed: bool
    best_chosen: bool


LISTINGS: dict[type, str] = {GroupRow: GROUPS, BurstRow: BURSTS}


def find_listed(
    connection: Connection, kind: type[Listed], catalog_id: uuid.UUID, reviewed: bool | None, after: str, limit: int
) -> list[Listed]:
    """Duplicate groups (`kind` GroupRow) or bursts (BurstRow) by id, those after `after`
    (keyset pages)."""
    return rows_as(kind, connection.execute(text(f"""SELECT * FROM ({LISTINGS[kind]}) listed
        WHERE catalog_id = :c AND id::text > :after AND (CAST(:reviewed AS boolean) IS NULL OR reviewed = :reviewed)
        ORDER BY id LIMIT :limit"""), {"c": catalog_id, "after": after, "reviewed": reviewed, "limit": limit}))


def get_listed(connection: Connection, kind: type[Listed], row_id: uuid.UUID) -> Listed | None:
    """One duplicate group (GroupRow) or burst (BurstRow) by id."""
    rows = connection.execute(text(f"SELECT * FROM ({LISTINGS[kind]}) listed WHERE id = :i"), {"i": row_id})
    return next(iter(rows_as(kind, rows)), None)


@dataclass(frozen=True, slots=True)
class MemberRow(ImageRow):
    similarity_score: int


def group_members(connection: Connection, group_id: uuid.UUID) -> list[MemberRow]:
    """Members with their similarity score, by score."""
    return rows_as(MemberRow, connection.execute(text(f"""
        SELECT {SUMMARY}, m.similarity_score FROM images i JOIN duplicate_members m ON m.image_id = i.id
        WHERE m.group_id = :g ORDER BY m.similarity_score DESC, i.id"""), {"g": group_id}))


def burst_frames(connection: Connection, burst_id: uuid.UUID) -> list[ImageRow]:
    rows = connection.execute(text(f"SELECT {SUMMARY} FROM images i WHERE i.burst_id = :b ORDER BY i.burst_sequence"),
                              {"b": burst_id})
    return rows_as(ImageRow, rows)


# largest groups first: they free the most
REVIEW_ORDER = {"groups": (GROUPS, "member_count DESC, id"), "bursts": (BURSTS, "start_time, id")}


def review_queue(connection: Connection, catalog_id: uuid.UUID, kind: str) -> list[tuple[str, bool]]:
    """Every group (or burst) of a catalog, in the order the review page shows them: (id, reviewed)."""
    listing, order = REVIEW_ORDER[kind]
    query = f"SELECT id::text AS id, reviewed FROM ({listing}) listed WHERE catalog_id = :c ORDER BY {order}"
    return [(id_, reviewed) for id_, reviewed in connection.execute(text(query), {"c": catalog_id})]


# The catalog :c's kept files: group primaries, best frames of bursts, files a person keeps.
KEPT = """
    SELECT primary_image_id AS id FROM duplicate_groups WHERE catalog_id = :c AND primary_image_id IS NOT NULL
    UNION SELECT best_image_id FROM bursts WHERE catalog_id = :c AND best_image_id IS NOT NULL
    UNION SELECT id FROM images WHERE catalog_id = :c AND kept"""
# ... and the files of their stacks: what no file action may take away (journal, organize).
KEPT_SHOTS = f"""
    WITH kept AS ({KEPT})
    SELECT id FROM kept
    UNION SELECT i.id FROM images i JOIN images k ON k.stack_id = i.stack_id WHERE k.id IN (SELECT id FROM kept)"""


GONE = "('quarantined', 'deleted')"  # statuses of files no longer where the groups found them


@dataclass(frozen=True, slots=True)
class RemovableFile:
    id: int
    source_root: str
    path: bytes
    size_bytes: int
    reason: Literal["duplicate", "burst"]
    decided_by: uuid.UUID  # the reviewed group or burst
    keep_path: bytes  # of the file kept in its place (for a stack's other file, its copy that stays)
    keep_root: str  # its source folder
    keep_id: int


# The files people reviewed away (`leaving`) and the other files of their stacks (`mates`); of
# those, the ones with a copy that stays (`candidates`), and the ones whose whole stack can go
# (`whole`): see removable_files.
REVIEWED_AWAY = f"""
        WITH left_over AS (
            SELECT i.id, i.source_root, i.path, i.size_bytes, 'duplicate' AS reason, g.id AS decided_by,
                   keep.path AS keep_path, keep.source_root AS keep_root, keep.id AS keep_id
            FROM duplicate_groups g JOIN duplicate_members m ON m.group_id = g.id JOIN images i ON i.id = m.image_id
            JOIN images keep ON keep.id = g.primary_image_id
            WHERE g.catalog_id = :c AND g.reviewed AND i.id <> g.primary_image_id
              AND i.status NOT IN {GONE} AND keep.status NOT IN {GONE}
            UNION ALL
            SELECT i.id, i.source_root, i.path, i.size_bytes, 'burst', b.id, keep.path, keep.source_root, keep.id
            FROM bursts b JOIN images i ON i.burst_id = b.id JOIN images keep ON keep.id = b.best_image_id
            WHERE b.catalog_id = :c AND b.reviewed AND i.id <> b.best_image_id
              AND i.status NOT IN {GONE} AND keep.status NOT IN {GONE}
        ),
        kept AS ({KEPT}),
        leaving AS (SELECT * FROM left_over WHERE id NOT IN (SELECT id FROM kept)),
        mates AS (
            SELECT mate.id, mate.source_root, mate.path, mate.size_bytes, mate.kind, mate.checksum, l.reason,
                   l.decided_by, keep.stack_id AS keep_stack
            FROM leaving l JOIN stacks s ON s.primary_image_id = l.id JOIN images mate ON mate.stack_id = s.id
            JOIN images keep ON keep.id = l.keep_id
            WHERE mate.id <> l.id AND mate.id NOT IN (SELECT id FROM kept) AND mate.status NOT IN {GONE}
        ),
        candidates AS (
            SELECT * FROM leaving
            UNION ALL
            SELECT mate.id, mate.source_root, mate.path, mate.size_bytes, mate.reason, mate.decided_by,
                   copy.path, copy.source_root, copy.id
            FROM mates mate CROSS JOIN LATERAL (
                SELECT other.id, other.path, other.source_root FROM images other
                WHERE other.catalog_id = :c AND other.status NOT IN {GONE}
                  AND other.id NOT IN (SELECT id FROM leaving) AND other.id NOT IN (SELECT id FROM mates)
                  AND (other.checksum = mate.checksum OR mate.checksum IS NULL AND mate.kind = 'sidecar'
                       AND other.kind = 'sidecar' AND other.size_bytes = mate.size_bytes
                       AND other.stack_id = mate.keep_stack)
                ORDER BY COALESCE(other.stack_id = mate.keep_stack, false) DESC, other.id LIMIT 1) copy
        ),
        whole AS (
            SELECT c.* FROM candidates c JOIN images i ON i.id = c.id
            WHERE i.stack_id IS NULL OR NOT EXISTS (
                SELECT 1 FROM images mate
                WHERE mate.stack_id = i.stack_id AND mate.status <> 'quarantined'  -- one moved by hand may be kept
                  AND mate.id NOT IN (SELECT id FROM candidates))
        )"""


def removable_files(connection: Connection, catalog_id: uuid.UUID) -> list[RemovableFile]:
    """Files a person has reviewed away: members of reviewed duplicate groups other than the
    primary, and frames of reviewed bursts other than the best, they and their keeper still in
    their folders (a regrouping not yet done after a quarantine or a deletion); never a file kept anywhere
    (a burst's extra frame can be a group's primary; a file a person keeps), each listed once. A stack goes or stays
    whole: a removable primary brings its stack's other files (RAW, video, sidecars), each only
    where a copy of it stays (its keeper: the same checksum, or for a sidecar, which no analysis
    reads, one of the same size in the keeper's stack, its content compared when it is
    quarantined: another photo's sidecar holds no edits of this one), and no file is listed
    while a file of its stack is kept or has no copy that stays. Nothing is deleted."""
    rows = connection.execute(text(f"""{REVIEWED_AWAY}
        SELECT * FROM (
            SELECT DISTINCT ON (w.id) w.* FROM whole w JOIN images i ON i.id = w.id JOIN images k ON k.id = w.keep_id
            -- of a file's keepers (a copy in an exact group and a near one), the one with its bytes:
            -- the one quarantine checks is still there as cataloged before it moves the copy
            ORDER BY w.id, w.reason DESC, k.checksum = i.checksum DESC NULLS LAST, w.keep_id) once
        ORDER BY path"""), {"c": catalog_id})
    return rows_as(RemovableFile, rows)


def removable_total(connection: Connection, catalog_id: uuid.UUID) -> tuple[int, int]:
    """How many files removable_files lists, and their bytes, counted in the database."""
    count, size_bytes = connection.execute(text(f"""{REVIEWED_AWAY}
        SELECT count(*), coalesce(sum(size_bytes), 0) FROM (SELECT DISTINCT ON (id) id, size_bytes FROM whole) once"""),
        {"c": catalog_id}).one()
    return count, int(size_bytes)


def held_back(connection: Connection, catalog_id: uuid.UUID) -> list[tuple[int, str, str]]:
    """The files of reviewed-away shots that stay whole (removable_files), (id, where, why): a file
    of their stack is kept, not reviewed away, or has no copy that stays (a sidecar the kept
    shot lacks)."""
    rows = connection.execute(text(f"""{REVIEWED_AWAY},
        shot AS (SELECT id FROM leaving UNION SELECT id FROM mates)
        SELECT i.id, i.source_root, i.path, blocker.source_root AS blocker_root, blocker.path AS blocker,
               blocker.id = i.id AS itself, blocker.kept,
               blocker.id IN (SELECT id FROM shot) AS reviewed_away
        FROM images i CROSS JOIN LATERAL (
            SELECT mate.id, mate.source_root, mate.path, mate.id IN (SELECT id FROM kept) AS kept FROM images mate
            WHERE mate.stack_id = i.stack_id AND mate.status <> 'quarantined'
              AND mate.id NOT IN (SELECT id FROM candidates)
            ORDER BY mate.id <> i.id, mate.path LIMIT 1) blocker
        WHERE i.id IN (SELECT id FROM shot) AND i.id NOT IN (SELECT id FROM whole)
        ORDER BY i.path""").columns(path=LargeBinary, blocker=LargeBinary), {"c": catalog_id})
    return [(row.id, _where(row.source_root, row.path), _why_held(row)) for row in rows]


def _why_held(row: Row) -> str:
    if row.itself:
        return "the kept shot has no copy of it"
    why = "is kept" if row.kept else "has no copy that stays" if row.reviewed_away else "is not reviewed away"
    return f"its stack stays whole: {_where(row.blocker_root, row.blocker)} {why}"


def _where(source_root: str, path: bytes) -> str:
    return shown(os.path.join(os.fsencode(source_root), path))


@dataclass(frozen=True, slots=True)
class CatalogSummary:
    id: uuid.UUID
    name: str
    source_directories: list[str]
    files: int
    duplicate_groups: int
    groups_reviewed: int
    bursts: int
    bursts_reviewed: int


def catalog_summaries(connection: Connection) -> list[CatalogSummary]:
    rows = connection.execute(text("""
        SELECT c.id, c.name, c.source_directories,
               (SELECT count(*) FROM images i WHERE i.catalog_id = c.id AND i.status <> 'deleted') AS files,
               (SELECT count(*) FROM duplicate_groups g WHERE g.catalog_id = c.id) AS duplicate_groups,
               (SELECT count(*) FROM duplicate_groups g WHERE g.catalog_id = c.id AND g.reviewed) AS groups_reviewed,
               (SELECT count(*) FROM bursts b WHERE b.catalog_id = c.id) AS bursts,
               (SELECT count(*) FROM bursts b WHERE b.catalog_id = c.id AND b.reviewed) AS bursts_reviewed
        FROM catalogs c ORDER BY c.name"""))
    return rows_as(CatalogSummary, rows)
