"""What the routers show and share: an image's summary, a duplicate group or burst with its
members, and the one-row existence checks that answer 404 before a decision is made."""

import posixpath
import uuid
from typing import Literal, TypeVar

from fastapi import HTTPException
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.files import display_path
from lumina_pipeline.analysis.hashing import hamming_distance
from lumina_pipeline.api import schemas
from lumina_pipeline.search import SearchModels
from lumina_pipeline.storage.browse import burst_frames, get_burst, get_group, group_members
from lumina_pipeline.storage.embeddings import similarities_to
from lumina_pipeline.storage.groups import readable_path

Found = TypeVar("Found")


def or_404(found: Found | None, what: str) -> Found:
    """`found`, or a 404 `no <what>` when it is None. Before a decision, `session.get` of the
    row is the existence check: one row by key, where a view also gathers members and more."""
    if found is None:
        raise HTTPException(404, f"no {what}")
    return found


STORED = ("id", "catalog_id", "source_root", "kind", "status", "size_bytes", "checksum", "quality_score", "rating",
          "description", "burst_id", "burst_sequence", "kept")  # the summary's fields shown as the row has them


def summary(row: dict) -> schemas.ImageSummary:
    path, path_hex = display_path(bytes(row["path"]))
    metadata, dates = row["image_metadata"] or {}, row["dates"] or {}
    return schemas.ImageSummary(
        **{key: row[key] for key in STORED},
        path=path,
        path_hex=path_hex,
        folder=posixpath.dirname(path),
        captured_at=dates.get("captured_at"),
        camera=camera_name(metadata.get("camera_make"), metadata.get("camera_model")) or None,
        width=metadata.get("display_width", metadata.get("width")),
        height=metadata.get("display_height", metadata.get("height")),
        stack=_stack(row["stack"]),
        duration_seconds=metadata.get("duration_seconds"),
        thumbnail_url=f"/api/images/{row['id']}/thumbnail" if row["thumbnail_path"] else None,
        file_url=f"/api/images/{row['id']}/file",
    )


BADGES: dict[str, Literal["RAW+JPEG", "LIVE"]] = {"raw_jpeg": "RAW+JPEG", "live_photo": "LIVE"}


def _stack(stack: dict | None) -> schemas.StackSummary | None:
    if stack is None:
        return None
    files = [
        schemas.StackFile(id=f["id"], path=readable_path(f["path"]), kind=f["kind"],
                          file_url=f"/api/images/{f['id']}/file")
        for f in stack["files"]
    ]
    return schemas.StackSummary(id=stack["id"], kind=stack["kind"], badge=BADGES[stack["kind"]], files=files)


def camera_name(make: str | None, model: str | None) -> str:
    """'Canon EOS 40D', not 'Canon Canon EOS 40D': many models repeat their make."""
    make, model = (make or "").strip(), (model or "").strip()
    return model if make and model.lower().startswith(make.lower().split()[0]) else f"{make} {model}".strip()


def group_view(session: Session, models: SearchModels, group_id: uuid.UUID) -> schemas.GroupDetail:
    connection = session.connection()
    group = or_404(get_group(connection, group_id), f"duplicate group {group_id}")
    members = group_members(connection, group_id)
    primary = next((m for m in members if m["id"] == group["primary_image_id"]), members[0])
    similarity = similarities_to(connection, models.table, primary["id"], [m["id"] for m in members])
    return schemas.GroupDetail(
        **group,
        members=[
            schemas.GroupMember(
                image=summary(member),
                similarity_score=member["similarity_score"],
                is_primary=member["id"] == group["primary_image_id"],
                reason=_reason(member, primary, similarity.get(member["id"])),
            )
            for member in sorted(members, key=lambda m: m["id"] != primary["id"])
        ],
    )


def _reason(member: dict, primary: dict, embedding_similarity: float | None) -> schemas.MemberReason:
    def distance(name: str) -> int | None:
        return hamming_distance(member[name], primary[name]) if member[name] and primary[name] else None

    return schemas.MemberReason(
        same_checksum=member["checksum"] == primary["checksum"],
        dhash_distance=distance("dhash"), ahash_distance=distance("ahash"), whash_distance=distance("whash"),
        embedding_similarity=embedding_similarity,
    )


def burst_view(session: Session, burst_id: uuid.UUID) -> schemas.BurstDetail:
    burst = or_404(get_burst(session.connection(), burst_id), f"burst {burst_id}")
    frames = [summary(row) for row in burst_frames(session.connection(), burst_id)]
    return schemas.BurstDetail(**burst_fields(burst), frames=frames)


def burst_fields(row: dict) -> dict:
    """A burst row as the API shows it: one `camera` for make and model."""
    camera = camera_name(row["camera_make"], row["camera_model"])
    return {key: value for key, value in row.items() if key not in ("camera_make", "camera_model")} | {"camera": camera}
