"""The review page: one duplicate group or burst at a time, the keeper picked with the
keyboard, decisions sent to the API. Server-rendered; `static/review.js` adds the keys."""

import hashlib
import uuid
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from lumina_pipeline.api.dependencies import CatalogName, Database, Models
from lumina_pipeline.api.views import burst_view, group_view
from lumina_pipeline.humanize import size
from lumina_pipeline.storage.browse import catalog_summaries, review_queue
from lumina_pipeline.storage.catalogs import get_catalog

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["size"] = size  # as `lumina` says sizes: 950 bytes, 20.5 KB, 2.5 MB
# in the static files' addresses, so that a browser never runs an older review.js with a newer API
templates.env.globals["static_version"] = hashlib.sha256(
    b"".join(path.read_bytes() for path in sorted((Path(__file__).parent / "static").iterdir()))
).hexdigest()[:12]

Kind = Literal["groups", "bursts"]


@router.get("/")
def index(request: Request, session: Database):
    return _page(request, "index.html", {"catalogs": catalog_summaries(session.connection())})


@router.get("/review/{catalog}/{kind}")
def next_to_review(
    session: Database, catalog: CatalogName, kind: Kind, request: Request, after: uuid.UUID | None = None
):
    """The first unreviewed group (or burst) after `after` in review order, wrapping round."""
    queue = review_queue(session.connection(), get_catalog(session, catalog).id, kind)
    start = next((i + 1 for i, (item, _) in enumerate(queue) if item == str(after)), 0)
    waiting = [item for item, reviewed in queue[start:] + queue[:start] if not reviewed and item != str(after)]
    if not waiting:
        context = {"catalog": catalog, "kind": kind, "total": len(queue), "done": sum(r for _, r in queue)}
        return _page(request, "done.html", context)
    return RedirectResponse(f"/review/{catalog}/{kind}/{waiting[0]}", status_code=303)


@router.get("/review/{catalog}/{kind}/{item_id}")
def review_item(
    session: Database, models: Models, catalog: CatalogName, kind: Kind, item_id: uuid.UUID, request: Request
):
    queue = review_queue(session.connection(), get_catalog(session, catalog).id, kind)
    ids = [item for item, _ in queue]
    if str(item_id) not in ids:
        raise HTTPException(404, f"no {kind[:-1]} {item_id} in catalog {catalog!r}")
    if kind == "groups":
        group = group_view(session, models, item_id)
        cards = [
            {"image": m.image, "keep": m.is_primary, "reason": None if m.is_primary else m.reason,
             "score": m.similarity_score}
            for m in group.members
        ]
        title, reviewed = f"{group.similarity_type} duplicates, confidence {group.confidence}", group.reviewed
    else:
        burst = burst_view(session, item_id)
        cards = [{"image": frame, "keep": frame.id == burst.best_image_id} for frame in burst.frames]
        title, reviewed = f"burst of {burst.image_count} frames, {burst.camera}", burst.reviewed
    context = {
        "catalog": catalog,
        "kind": kind,
        "item_id": item_id,
        "title": title,
        "reviewed": reviewed,
        "cards": cards,
        "position": ids.index(str(item_id)) + 1,
        "total": len(queue),
        "done": sum(reviewed for _, reviewed in queue),
        "decision_url": f"/api/{kind}/{item_id}/decision",
        "keeper_field": "primary_image_id" if kind == "groups" else "best_image_id",
        "next_url": f"/review/{catalog}/{kind}?after={item_id}",
    }
    return _page(request, "review.html", context)


def _page(request: Request, template: str, context: dict) -> HTMLResponse:
    """A page as it is now: never kept by the browser, whose Back button would otherwise show a
    decided group as undecided, ready to be decided again."""
    page = templates.TemplateResponse(request, template, context)
    page.headers["Cache-Control"] = "no-store"
    return page


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    """A refusal of a review page, as a page: people read these addresses, not programs."""
    page = _page(request, "error.html", {"detail": detail})
    page.status_code = status
    return page
