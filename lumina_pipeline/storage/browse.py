"""What the images API reads: images by filters in keyset pages, one image with its group,
burst and tags, duplicate groups and bursts with their members, and review progress."""

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Connection, exists, func, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import aliased

from lumina_pipeline.storage.models import DuplicateMember, Image, ImageTag, Stack, Tag

_file = aliased(Image)
# An image's stack as JSON (null outside one): id, kind and files, the primary first.
STACK = (
    select(func.jsonb_build_object("id", Stack.id, "kind", Stack.kind, "files", func.jsonb_agg(aggregate_order_by(
        func.jsonb_build_object("id", _file.id, "kind", _file.kind, "path", func.encode(_file.path, "escape")),
        _file.id != Stack.primary_image_id, _file.path,
    ))))
    .join(_file, _file.stack_id == Stack.id)
    .where(Stack.id == Image.stack_id)
    .group_by(Stack.id)
    .scalar_subquery()
    .label("stack")
)
SUMMARY_COLUMNS = (
    Image.id, Image.catalog_id, Image.source_root, Image.path, Image.kind, Image.status, Image.size_bytes,
    Image.checksum, Image.quality_score, Image.rating, Image.dates, Image.image_metadata.label("image_metadata"),
    Image.burst_id, Image.burst_sequence, Image.kept, Image.thumbnail_path, Image.description, STACK,
)


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
) -> list[dict]:
    """Images matching every filter given, by id, those after `after` (keyset pages)."""
    captured = Image.dates["captured_at"].astext
    camera = func.lower(func.concat_ws(" ", Image.image_metadata["camera_make"].astext,
                                       Image.image_metadata["camera_model"].astext))
    in_group = exists().where(DuplicateMember.image_id == Image.id)
    tagged = exists().where(
        ImageTag.image_id == Image.id,
        ImageTag.tag_id == Tag.id,
        *([Tag.name == filters.tag] if filters.tag is not None else []),
        *([ImageTag.source == filters.tag_source] if filters.tag_source is not None else []),
    )
    conditions = [
        (filters.status is not None, Image.status == filters.status),
        (filters.kind is not None, Image.kind == filters.kind),
        (filters.camera is not None, func.strpos(camera, func.lower(filters.camera or "")) > 0),
        (filters.captured_from is not None, captured >= str(filters.captured_from)),
        (filters.captured_to is not None, captured < str((filters.captured_to or date.min) + timedelta(days=1))),
        (filters.tag is not None or filters.tag_source is not None, tagged),
        (filters.geohash is not None, Image.geohash_8.startswith(filters.geohash or "", autoescape=True)),
        (filters.in_group is not None, in_group if filters.in_group else ~in_group),
        (filters.in_burst is not None, Image.burst_id.isnot(None) if filters.in_burst else Image.burst_id.is_(None)),
    ]
    query = (
        select(*SUMMARY_COLUMNS)
        .where(Image.catalog_id == catalog_id, Image.id > after, *(clause for given, clause in conditions if given))
        .order_by(Image.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def get_image(connection: Connection, image_id: int) -> dict | None:
    columns = (*SUMMARY_COLUMNS, Image.dhash, Image.ahash, Image.whash, Image.hash_version, Image.error,
               Image.geohash_8, Image.mtime_ns, Image.batch)
    row = connection.execute(select(*columns).where(Image.id == image_id)).first()
    return None if row is None else dict(row._mapping)


def image_tags(connection: Connection, image_id: int) -> list[dict]:
    rows = connection.execute(
        select(Tag.name, ImageTag.source, ImageTag.confidence)
        .join(Tag, Tag.id == ImageTag.tag_id)
        .where(ImageTag.image_id == image_id)
        .order_by(ImageTag.source, Tag.name)
    )
    return [dict(row._mapping) for row in rows]


def group_of_image(connection: Connection, image_id: int) -> uuid.UUID | None:
    return connection.execute(
        select(DuplicateMember.group_id).where(DuplicateMember.image_id == image_id)
    ).scalar()


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


def find_groups(
    connection: Connection, catalog_id: uuid.UUID, reviewed: bool | None, after: str, limit: int
) -> list[dict]:
    """Duplicate groups by id, those after `after` (keyset pages)."""
    return _page(connection, GROUPS, catalog_id, reviewed, after, limit)


def find_bursts(
    connection: Connection, catalog_id: uuid.UUID, reviewed: bool | None, after: str, limit: int
) -> list[dict]:
    return _page(connection, BURSTS, catalog_id, reviewed, after, limit)


def get_group(connection: Connection, group_id: uuid.UUID) -> dict | None:
    return _one(connection, GROUPS, group_id)


def get_burst(connection: Connection, burst_id: uuid.UUID) -> dict | None:
    return _one(connection, BURSTS, burst_id)


def _page(
    connection: Connection, listing: str, catalog_id: uuid.UUID, reviewed: bool | None, after: str, limit: int
) -> list[dict]:
    rows = connection.execute(text(f"""SELECT * FROM ({listing}) listed
        WHERE catalog_id = :c AND id::text > :after AND (CAST(:reviewed AS boolean) IS NULL OR reviewed = :reviewed)
        ORDER BY id LIMIT :limit"""),
        {"c": catalog_id, "after": after, "reviewed": reviewed, "limit": limit},
    )
    return [dict(row._mapping) for row in rows]


def _one(connection: Connection, listing: str, row_id: uuid.UUID) -> dict | None:
    row = connection.execute(text(f"SELECT * FROM ({listing}) listed WHERE id = :i"), {"i": row_id}).first()
    return None if row is None else dict(row._mapping)


def group_members(connection: Connection, group_id: uuid.UUID) -> list[dict]:
    """Members with their similarity score, the primary first, then by score."""
    rows = connection.execute(
        select(*SUMMARY_COLUMNS, Image.dhash, Image.ahash, Image.whash, DuplicateMember.similarity_score)
        .join(DuplicateMember, DuplicateMember.image_id == Image.id)
        .where(DuplicateMember.group_id == group_id)
        .order_by(DuplicateMember.similarity_score.desc(), Image.id)
    )
    return [dict(row._mapping) for row in rows]


def burst_frames(connection: Connection, burst_id: uuid.UUID) -> list[dict]:
    rows = connection.execute(select(*SUMMARY_COLUMNS).where(Image.burst_id == burst_id).order_by(Image.burst_sequence))
    return [dict(row._mapping) for row in rows]


REVIEW_ORDER = {
    # largest groups first: they free the most
    "groups": f"""SELECT id::text AS id, reviewed FROM ({GROUPS}) listed WHERE catalog_id = :c
                  ORDER BY member_count DESC, id""",
    "bursts": f"""SELECT id::text AS id, reviewed FROM ({BURSTS}) listed WHERE catalog_id = :c
                  ORDER BY start_time, id""",
}


def review_queue(connection: Connection, catalog_id: uuid.UUID, kind: str) -> list[dict]:
    """Every group (or burst) of a catalog, in the order the review page shows them."""
    return [dict(row._mapping) for row in connection.execute(text(REVIEW_ORDER[kind]), {"c": catalog_id})]


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


def removable_files(connection: Connection, catalog_id: uuid.UUID) -> list[dict]:
    """Files a person has reviewed away: members of reviewed duplicate groups other than the
    primary, and frames of reviewed bursts other than the best; never a file kept anywhere
    (a burst's extra frame can be a group's primary; a file a person keeps), each listed once. A stack goes or stays
    whole: a removable primary brings its stack's other files (RAW, video, sidecars), and no
    file is listed while a file of its stack is kept. Nothing is deleted."""
    rows = connection.execute(text(f"""
        WITH left_over AS (
            SELECT i.id, i.source_root, i.path, i.size_bytes, 'duplicate' AS reason, g.id AS decided_by,
                   keep.path AS keep_path
            FROM duplicate_groups g JOIN duplicate_members m ON m.group_id = g.id JOIN images i ON i.id = m.image_id
            JOIN images keep ON keep.id = g.primary_image_id
            WHERE g.catalog_id = :c AND g.reviewed AND i.id <> g.primary_image_id
            UNION ALL
            SELECT i.id, i.source_root, i.path, i.size_bytes, 'burst', b.id, keep.path
            FROM bursts b JOIN images i ON i.burst_id = b.id JOIN images keep ON keep.id = b.best_image_id
            WHERE b.catalog_id = :c AND b.reviewed AND i.id <> b.best_image_id
        ),
        kept AS ({KEPT}),
        candidates AS (
            SELECT * FROM left_over WHERE id NOT IN (SELECT id FROM kept)
            UNION ALL
            SELECT mate.id, mate.source_root, mate.path, mate.size_bytes, l.reason, l.decided_by, l.keep_path
            FROM left_over l JOIN stacks s ON s.primary_image_id = l.id JOIN images mate ON mate.stack_id = s.id
            WHERE mate.id <> l.id AND mate.id NOT IN (SELECT id FROM kept)
        ),
        whole AS (
            SELECT c.* FROM candidates c JOIN images i ON i.id = c.id
            WHERE i.stack_id IS NULL OR NOT EXISTS (
                SELECT 1 FROM images mate
                WHERE mate.stack_id = i.stack_id AND mate.id NOT IN (SELECT id FROM candidates))
        )
        SELECT * FROM (SELECT DISTINCT ON (id) * FROM whole ORDER BY id, reason DESC) once
        ORDER BY path"""), {"c": catalog_id})
    return [dict(row._mapping) for row in rows]


def catalog_summaries(connection: Connection) -> list[dict]:
    rows = connection.execute(text("""
        SELECT c.id, c.name, c.source_directories,
               (SELECT count(*) FROM images i WHERE i.catalog_id = c.id AND i.status <> 'deleted') AS files,
               (SELECT count(*) FROM duplicate_groups g WHERE g.catalog_id = c.id) AS duplicate_groups,
               (SELECT count(*) FROM duplicate_groups g WHERE g.catalog_id = c.id AND g.reviewed) AS groups_reviewed,
               (SELECT count(*) FROM bursts b WHERE b.catalog_id = c.id) AS bursts,
               (SELECT count(*) FROM bursts b WHERE b.catalog_id = c.id AND b.reviewed) AS bursts_reviewed
        FROM catalogs c ORDER BY c.name"""))
    return [dict(row._mapping) for row in rows]
