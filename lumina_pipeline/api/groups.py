"""Duplicate groups and bursts with their members, the decisions people make on them, and
the files those decisions leave removable (listed, never deleted)."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.files import display_path, shown
from lumina_pipeline.api import schemas
from lumina_pipeline.api.dependencies import CatalogName, Database, Limit, Models
from lumina_pipeline.api.views import burst_fields, burst_view, group_view, or_404
from lumina_pipeline.storage.browse import BurstRow, GroupRow, RemovableFile, find_listed, removable_files
from lumina_pipeline.storage.catalogs import get_catalog
from lumina_pipeline.storage.decisions import Accepted, GroupChanged, accept_suggestions, decide
from lumina_pipeline.storage.groups import BURSTS, DUPLICATES, Grouping
from lumina_pipeline.storage.models import Burst, DuplicateGroup

router = APIRouter(prefix="/api", responses={404: {"model": schemas.Problem}})

Reviewed = Annotated[bool | None, Query(description="only reviewed (true) or unreviewed (false) ones")]
After = Annotated[uuid.UUID | None, Query(description="the last id of the previous page")]


@router.get("/catalogs/{catalog}/groups", response_model=schemas.GroupPage)
def list_groups(
    session: Database, catalog: CatalogName, reviewed: Reviewed = None, after: After = None, limit: Limit = 100
):
    catalog_id = get_catalog(session, catalog).id
    rows = find_listed(session.connection(), GroupRow, catalog_id, reviewed, str(after or ""), limit + 1)
    items = [schemas.Group.model_validate(row, from_attributes=True) for row in rows[:limit]]
    return schemas.GroupPage(items=items, next_after=items[-1].id if len(rows) > limit else None)


@router.get("/groups/{group_id}", response_model=schemas.GroupDetail)
def group_detail(session: Database, models: Models, group_id: uuid.UUID):
    return group_view(session, models, group_id)


@router.post("/groups/{group_id}/decision", response_model=schemas.GroupDetail)
def decide_on_group(session: Database, models: Models, group_id: uuid.UUID, decision: schemas.GroupDecision):
    """Keep `primary_image_id` (a member), and the members in `keep` too (or all of them:
    not duplicates), and mark the group reviewed (or not). The review survives re-runs of
    `duplicate_groups` while the group's members stay; kept files stay kept. The left-over
    files' manual tags and best rating go to the keeper."""
    or_404(session.get(DuplicateGroup, group_id), f"duplicate group {group_id}")
    _decide(session, DUPLICATES, group_id, decision.primary_image_id, decision, f"a member of group {group_id}")
    return group_view(session, models, group_id)


@router.get("/catalogs/{catalog}/bursts", response_model=schemas.BurstPage)
def list_bursts(
    session: Database, catalog: CatalogName, reviewed: Reviewed = None, after: After = None, limit: Limit = 100
):
    catalog_id = get_catalog(session, catalog).id
    rows = find_listed(session.connection(), BurstRow, catalog_id, reviewed, str(after or ""), limit + 1)
    items = [schemas.Burst(**burst_fields(row)) for row in rows[:limit]]
    return schemas.BurstPage(items=items, next_after=items[-1].id if len(rows) > limit else None)


@router.get("/bursts/{burst_id}", response_model=schemas.BurstDetail)
def burst_detail(session: Database, burst_id: uuid.UUID):
    return burst_view(session, burst_id)


@router.post("/bursts/{burst_id}/decision", response_model=schemas.BurstDetail)
def decide_on_burst(session: Database, burst_id: uuid.UUID, decision: schemas.BurstDecision):
    """Keep `best_image_id` (a frame), and the frames in `keep` too (or all of them), and mark
    the burst reviewed (or not)."""
    or_404(session.get(Burst, burst_id), f"burst {burst_id}")
    _decide(session, BURSTS, burst_id, decision.best_image_id, decision, f"a frame of burst {burst_id}")
    return burst_view(session, burst_id)


def _decide(session: Session, grouping: Grouping, group_id: uuid.UUID, keeper: int | None,
            decision: schemas.Decision, members: str) -> None:
    """Record a person's decision on a group, or 422 when it names an image outside it (`members`),
    or 409 when the group's members are no longer those the decision was made on."""
    try:
        decided = decide(session.connection(), grouping, group_id, keeper, decision.reviewed, decision.keep,
                         decision.keep_all, decision.members)
    except GroupChanged as error:
        raise HTTPException(409, str(error)) from None
    if not decided:
        named = sorted({image for image in (keeper, *(decision.keep or ())) if image is not None})
        raise HTTPException(422, f"not every image of {named} is {members}")
    session.commit()


Which = Annotated[Literal["exact", "alike"], Query(description="exact groups, or those `min_confidence` alike")]
MinConfidence = Annotated[int, Query(ge=0, le=100, description="with `alike`: the least confidence taken")]


@router.get("/catalogs/{catalog}/accept", response_model=Accepted)
def accept_preview(session: Database, catalog: CatalogName, groups: Which, min_confidence: MinConfidence = 95):
    """What accepting the suggested keepers would take: the count to show before confirming."""
    return _accept(session, catalog, groups, min_confidence, apply=False)


Seen = Annotated[str, Query(max_length=64, description="`seen` of the preview the person confirmed")]


@router.post("/catalogs/{catalog}/accept", response_model=Accepted, responses={409: {"model": schemas.Problem}})
def accept(session: Database, catalog: CatalogName, groups: Which, seen: Seen, min_confidence: MinConfidence = 95):
    """Mark every unreviewed exact group, or every one at least `min_confidence` alike,
    reviewed with its suggested keeper, in one action: exactly those the preview counted
    (`seen`), else 409 and nothing changes."""
    try:
        accepted = _accept(session, catalog, groups, min_confidence, apply=True, seen=seen)
    except GroupChanged as error:
        raise HTTPException(409, str(error)) from None
    session.commit()
    return accepted


def _accept(session: Session, catalog: str, groups: str, min_confidence: int, apply: bool,
            seen: str | None = None) -> Accepted:
    exact = groups == "exact"
    return accept_suggestions(session.connection(), get_catalog(session, catalog).id, exact=exact,
                              min_confidence=None if exact else min_confidence, apply=apply, seen=seen)


@router.get("/catalogs/{catalog}/removable", response_model=schemas.Removable)
def removable(session: Database, catalog: CatalogName):
    """The files your reviews leave removable: the other members of reviewed duplicate groups
    and the other frames of reviewed bursts. Lumina never deletes them itself."""
    rows = removable_files(session.connection(), get_catalog(session, catalog).id)
    files = [removable_file(row) for row in rows]
    return schemas.Removable(files=files, total_bytes=sum(f.size_bytes for f in files))


def removable_file(row: RemovableFile) -> schemas.RemovableFile:
    path, path_hex = display_path(row.path)
    return schemas.RemovableFile(image_id=row.id, path=path, path_hex=path_hex, source_root=row.source_root,
                                 size_bytes=row.size_bytes, reason=row.reason, decided_by=row.decided_by,
                                 keep=shown(row.keep_path), keep_source_root=row.keep_root)
