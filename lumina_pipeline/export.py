"""The catalog as JSON (`lumina export`): the schema is documented in README.md."""

from sqlalchemy.orm import Session

from lumina_pipeline.analysis.files import display_path
from lumina_pipeline.storage.catalogs import get_catalog
from lumina_pipeline.storage.images import catalog_files

METADATA_FIELDS = (
    "camera_make", "camera_model", "lens", "width", "height",
    "display_width", "display_height", "orientation", "latitude", "longitude",
)


def export_catalog(session: Session, name: str) -> dict:
    catalog = get_catalog(session, name)
    files = [_file_record(row) for row in catalog_files(session.connection(), catalog.id)]
    return {"catalog": name, "files": files, "duplicate_groups": [], "bursts": []}


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
