"""What the routers show and share: an image's summary, a duplicate group or burst with its
members, and the one-row existence checks that answer 404 before a decision is made."""

import posixpath
import uuid
from dataclasses import asdict
from typing import Any, Literal, TypeVar

from fastapi import HTTPException
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.files import display_path
from lumina_pipeline.analysis.hashing import hamming_distance
from lumina_pipeline.api import schemas
from lumina_pipeline.humanize import camera_name
from lumina_pipeline.search import SearchModels
from lumina_pipeline.storage.browse import BurstRow, GroupRow, ImageRow, burst_frames, get_listed, group_members
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
          "description", "burst_id", "burst_sequence", "kept", "captured_at", "width", "height", "duration_seconds")


def summary(row: ImageRow) -> schemas.ImageSummary:
    path, path_hex = display_path(row.path)
    return schemas.ImageSummary(
        **{name: getattr(row, name) for name in STORED},  # the summary's fields shown as the row has them
        path=path,
        path_hex=path_hex,
        folder=posixpath.dirname(path),
        camera=camera_name(row.camera_make, row.camera_model) or None,
        stack=_stack(row.stack),
        thumbnail_url=f"/api/images/{row.id}/thumbnail" if row.thumbnail_path else None,
        file_url=f"/api/images/{row.id}/file",
    )


BADGES: dict[str, Literal["RAW+JPEG", "LIVE", "SIDECAR"]] = {
    "raw_jpeg": "RAW+JPEG", "live_photo": "LIVE", "with_sidecar": "SIDECAR"}


def _stack(stack: dict | None) -> schemas.StackSummary | None:
    if stack is None:
        return None
    files = [
        schemas.StackFile(id=f["id"], path=readable_path(f["path"]), kind=f["kind"],
                          file_url=f"/api/images/{f['id']}/file")
        for f in stack["files"]
    ]
    return schemas.StackSummary(id=stack["id"], kind=stack["kind"], badge=BADGES[stack["kind"]], files=files)


def group_view(session: Session, models: SearchModels, group_id: uuid.UUID) -> schemas.GroupDetail:
    connection = session.connection()
    group = or_404(get_listed(connection, GroupRow, group_id), f"duplicate group {group_id}")
    members = group_members(connection, group_id)
    primary = next((m for m in members if m.id == group.primary_image_id), members[0])
    similarity = similarities_to(connection, models.table, primary.id, [m.id for m in members])
    return schemas.GroupDetail(
        **asdict(group),
        members=[
            schemas.GroupMember(
                image=summary(member),
                similarity_score=member.similarity_score,
                is_primary=member.id == group.primary_image_id,
                reason=_reason(member, primary, similarity.get(member.id)),
            )
            for member in sorted(members, key=lambda m: m.id != primary.id)
        ],
    )


def _reason(member: ImageRow, primary: ImageRow, embedding_similarity: float | None) -> schemas.MemberReason:
    def distance(name: str) -> int | None:
        ours, theirs = getattr(member, name), getattr(primary, name)
        return hamming_distance(ours, theirs) if ours and theirs else None

    return schemas.MemberReason(
        same_checksum=member.checksum == primary.checksum,
        **{f"{name}_distance": distance(name) for name in ("dhash", "ahash", "whash", "phash")},
        embedding_similarity=embedding_similarity,
    )


def burst_view(session: Session, burst_id: uuid.UUID) -> schemas.BurstDetail:
    burst = or_404(get_listed(session.connection(), BurstRow, burst_id), f"burst {burst_id}")
    frames = [summary(row) for row in burst_frames(session.connection(), burst_id)]
    return schemas.BurstDetail(**burst_fields(burst), frames=frames)


def burst_fields(row: BurstRow) -> dict[str, Any]:
    """A burst as the API shows it: one `camera` for make and model."""
    shown = asdict(row)
    shown["camera"] = camera_name(shown.pop("camera_make"), shown.pop("camera_model"))
    return shown
