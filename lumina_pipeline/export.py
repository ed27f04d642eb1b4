"""The catalog as JSON (`lumina export`): the schema is documented in README.md."""

from sqlalchemy.orm import Session

from lumina_pipeline.analysis.files import display_path
from lumina_pipeline.storage.browse import removable_files
from lumina_pipeline.storage.catalogs import get_catalog
from lumina_pipeline.storage.groups import BURSTS, DUPLICATES, STACKS, catalog_groups
from lumina_pipeline.storage.images import catalog_files

METADATA_FIELDS = (
    "camera_make", "camera_model", "lens", "width", "height",
    "display_width", "display_height", "orientation", "latitude", "longitude",
    "duration_seconds", "video_codec",
)


def export_catalog(session: Session, name: str) -> dict:
    connection, catalog_id = session.connection(), get_catalog(session, name).id
    return {
        "catalog": name,
        "files": [_file_record(row) for row in catalog_files(connection, catalog_id)],
        "stacks": [_stack_record(row) for row in catalog_groups(connection, catalog_id, STACKS)],
        "duplicate_groups": grouping_records(session, name, "duplicate_groups"),
        "bursts": grouping_records(session, name, "bursts"),
        "removable": [_removable_record(row) for row in removable_files(connection, catalog_id)],
    }


def grouping_records(session: Session, name: str, key: str) -> list[dict]:
    """A catalog's `duplicate_groups` (largest first) or `bursts` (earliest first), as exported."""
    grouping, record = (DUPLICATES, _group_record) if key == "duplicate_groups" else (BURSTS, _burst_record)
    return [record(row) for row in catalog_groups(session.connection(), get_catalog(session, name).id, grouping)]


def _text(path: bytes | None) -> str | None:
    return None if path is None else display_path(bytes(path))[0]


def _group_record(row: dict) -> dict:
    return {
        "id": row["id"],
        "similarity_type": row["similarity_type"],
        "confidence": row["confidence"],
        "primary": _text(row["chosen_path"]),
        "members": [_text(path) for path in row["paths"]],
        "reviewed": row["reviewed"],
    }


def _stack_record(row: dict) -> dict:
    return {"id": row["id"], "kind": row["kind"], "primary": _text(row["chosen_path"]),
            "members": [_text(path) for path in row["paths"]]}


def _burst_record(row: dict) -> dict:
    return {
        "id": row["id"],
        "camera": " ".join(part for part in (row["camera_make"], row["camera_model"]) if part),
        "start_time": row["start_time"].isoformat(),
        "end_time": row["end_time"].isoformat(),
        "duration_seconds": row["duration_seconds"],
        "best": _text(row["chosen_path"]),
        "members": [_text(path) for path in row["paths"]],
    }


def _removable_record(row: dict) -> dict:
    return {"path": _text(row["path"]), "size_bytes": row["size_bytes"], "reason": row["reason"],
            "keep": _text(row["keep_path"])}


def _file_record(row: dict) -> dict:
    path, path_hex = display_path(bytes(row["path"]))
    dates, metadata = row["dates"] or {}, row["metadata"] or {}
    record = {"path": path, **({"path_hex": path_hex} if path_hex else {})}
    return {
        **record,
        "source_root": row["source_root"],
        "size_bytes": row["size_bytes"],
        "kind": row["kind"],
        "status": row["status"],
        "error": row["error"],
        "checksum": row["checksum"],
        "batch": row["batch"],
        "stack": row["stack"],
        "kept": row["kept"],
        "metadata": {
            "captured_at": dates.get("captured_at"),
            "captured_at_source": dates.get("captured_at_source"),
            "capture_offset": dates.get("offset"),
            **{field: metadata.get(field) for field in METADATA_FIELDS},
            "geohash": row["geohash_8"],
            "geohash_6": row["geohash_6"],
        },
        "quality_score": row["quality_score"],
        "hashes": {"dhash": row["dhash"], "ahash": row["ahash"], "whash": row["whash"]},
    }
