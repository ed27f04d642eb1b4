"""The FastAPI app of `lumina serve`: the images API under /api and the review page, over
the catalog database through the storage layer's queries."""

import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from lumina_pipeline.api import groups, images, review
from lumina_pipeline.search import SearchModels
from lumina_pipeline.storage.catalogs import CatalogError
from lumina_pipeline.storage.database import make_engine

HERE = Path(__file__).parent
TOKEN_COOKIE = "lumina_token"


@dataclass(frozen=True)
class ApiSettings:
    database_url: str
    thumbnail_dir: str
    model_cache: str
    clip_model: str = ""
    token: str = ""  # when set, every request must carry it


def create_app(settings: ApiSettings) -> FastAPI:
    app = FastAPI(
        title="Lumina",
        summary="Your photo catalogs: images, duplicate groups, bursts, search, and the decisions you make on them.",
        version="1",
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.models = SearchModels(Path(settings.model_cache), settings.clip_model)
    app.include_router(images.router)
    app.include_router(groups.router)
    app.include_router(review.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(CatalogError, _not_found)
    if settings.token:
        app.middleware("http")(_token_check(settings.token))
    return app


async def _not_found(request: Request, error: CatalogError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=404)


def _token_check(token: str):
    """Require the token as `Authorization: Bearer`, as the review page's cookie, or once as
    `?token=` (which sets that cookie, so a link opens the page in a browser)."""

    async def check(request: Request, call_next):
        offered = (
            request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            or request.cookies.get(TOKEN_COOKIE, "")
            or request.query_params.get("token", "")
        )
        if not secrets.compare_digest(offered.encode(), token.encode()):
            return JSONResponse({"detail": "a valid token is required (Authorization: Bearer <token>)"}, 401)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    return check
