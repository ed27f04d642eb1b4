"""The catalog as JSON (`lumina export`): the schema is documented in README.md."""

from sqlalchemy.orm import Session

from lumina_pipeline.analysis.files import display_path, shown
from lumina_pipeline.humanize import camera_name
from lumina_pipeline.storage.browse import RemovableFile, removable_files
from lumina_pipeline.storage.catalogs import get_catalog
from lumina_pipeline.storage.groups import BURSTS, DUPLICATES, STACKS, ListedGroup, catalog_groups
from lumina_pipeline.storage.images import CatalogFile, catalog_files

METADATA_FIELDS = (  # of storage/fields.py
    "captured_at", "captured_at_source", "capture_offset", "camera_make", "camera_model", "lens", "width", "height",
    "display_width", "display_height", "orientation", "latitude", "longitude", "duration_seconds", "video_codec",
)


def export_catalog(session: Session, name: str) -> dict:
    connection, catalog_id = session.connection(), get_catalog(session, name).id
    return {
        "catalog": name,
        "files": [_file_record(row) for row in catalog_files(connection, catalog_id)],
        "stacks": [_stack_record(group) for group in catalog_groups(connection, catalog_id, STACKS)],
        "duplicate_groups": grouping_records(session, name, "duplicate_groups"),
        "bursts": grouping_records(session, name, "bursts"),
        "removable": [_removable_record(row) for row in removable_files(connection, catalog_id)],
    }


def grouping_records(session: Session, name: str, key: str) -> list[dict]:
    """A catalog's `duplicate_groups` (largest first) or `bursts` (earliest first), as exported."""
    grouping, record = (DUPLICATES, _group_record) if key == "duplicate_groups" else (BURSTS, _burst_record)
    return [record(group) for group in catalog_groups(session.connection(), get_catalog(session, name).id, grouping)]


def _text(path: bytes | None) -> str | None:
    return None if path is None else shown(bytes(path))


def _members(group: ListedGroup) -> list[str | None]:
    return [_text(path) for path in group.paths]


def _group_record(group: ListedGroup) -> dict:
    return {"id": group.id, "similarity_type": group.row["similarity_type"], "confidence": group.row["confidence"],
            "primary": _text(group.chosen_path), "members": _members(group), "reviewed": group.reviewed}


def _stack_record(group: ListedGroup) -> dict:
    return {"id": group.id, "kind": group.row["kind"], "primary": _text(group.chosen_path), "members": _members(group)}


def _burst_record(group: ListedGroup) -> dict:
    burst = group.row
    return {
        "id": group.id,
        "camera": camera_name(burst["camera_make"], burst["camera_model"]),
        "start_time": burst["start_time"].isoformat(),
        "end_time": burst["end_time"].isoformat(),
        "duration_seconds": burst["duration_seconds"],
        "best": _text(group.chosen_path),
        "members": _members(group),
        "reviewed": group.reviewed,
    }


def _path(path: bytes) -> dict:
    text, path_hex = display_path(bytes(path))
    return {"path": text, **({"path_hex": path_hex} if path_hex else {})}


def _removable_record(row: RemovableFile) -> dict:
    return {"source_root": row.source_root, **_path(row.path), "size_bytes": row.size_bytes, "reason": row.reason,
            "keep_source_root": row.keep_root, "keep": _text(row.keep_path)}


def _file_record(row: CatalogFile) -> dict:
    return {
        **_path(row.path),
        "source_root": row.source_root,
        "size_bytes": row.size_bytes,
        "kind": row.kind,
        "status": row.status,
        "error": row.error,
        "checksum": row.checksum,
        "batch": row.batch,
        "stack": row.stack,
        "kept": row.kept,
        "rating": row.rating,
        "tags": row.tags,
        "metadata": {
            **{name: row.fields[name] for name in METADATA_FIELDS},
            "geohash": row.geohash_8,
            "geohash_6": row.geohash_6,
        },
        "quality_score": row.quality_score,
        "hashes": {"dhash": row.dhash, "ahash": row.ahash, "whash": row.whash, "phash": row.phash},
    }
