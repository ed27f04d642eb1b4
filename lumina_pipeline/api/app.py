"""The FastAPI app of `lumina serve`: the images API under /api and the review page, over
the catalog database through the storage layer's queries."""

import json
import math
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from swagger_ui_bundle import swagger_ui_path

from lumina_pipeline.api import groups, images, review
from lumina_pipeline.search import SearchModels
from lumina_pipeline.storage.catalogs import CatalogError
from lumina_pipeline.storage.database import make_engine

HERE = Path(__file__).parent
TOKEN_COOKIE = "lumina_token"
LOOPBACK_HOST = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?", re.IGNORECASE)
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


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
        docs_url=None,  # FastAPI's own /docs and /redoc load their scripts from a CDN: blank offline
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.models = SearchModels(Path(settings.model_cache), settings.clip_model)
    for module in (images, groups, review):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    app.get("/docs", include_in_schema=False)(_docs)
    # the decorator: add_exception_handler's typing rejects a handler of one exception class
    app.exception_handler(CatalogError)(_for_people(_not_found))
    app.exception_handler(RequestValidationError)(_for_people(_invalid_request))
    app.exception_handler(HTTPException)(_for_people(http_exception_handler))
    # The middleware added last runs first: the host name (or the token), then the origin.
    app.middleware("http")(_same_origin_writes)
    if settings.token:
        app.middleware("http")(_token_check(settings.token))
    else:
        app.middleware("http")(_loopback_host_only)
    return app


async def _docs(request: Request) -> HTMLResponse:
    """Swagger UI from the files the swagger-ui-bundle package ships, so /docs works without
    internet. URLs under the root path, as FastAPI's own page has them (behind a proxy)."""
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=root + request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{root}/swagger-ui/favicon-32x32.png",
    )


def _for_people(answer_in_json):
    """`answer_in_json`'s refusal, or under /review/ (pages people read) the same as a page."""

    async def answer(request: Request, error: Exception):
        refusal = await answer_in_json(request, error)
        if not request.url.path.startswith("/review/"):
            return refusal
        detail = json.loads(bytes(refusal.body))["detail"]
        return review.error_page(request, refusal.status_code,
                                 detail if isinstance(detail, str) else "no such review page")

    return answer


async def _not_found(request: Request, error: CatalogError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=404)


async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422 answer, except that each error's input is echoed as JSON can carry
    it: `1e400` decodes to infinity (and `NaN` to NaN), which JSON cannot encode, so echoing
    it was a 500."""
    finite = {float: lambda number: number if math.isfinite(number) else str(number)}
    return JSONResponse({"detail": jsonable_encoder(error.errors(), custom_encoder=finite)}, status_code=422)


async def _loopback_host_only(request: Request, call_next):
    """Without a token, answer only to loopback names: a web page whose own domain its owner
    re-points at 127.0.0.1 (DNS rebinding) would otherwise be this server's own origin, and
    read and write the catalog. By hand rather than with Starlette's TrustedHostMiddleware,
    which refuses in plain text where every other refusal of this API is JSON."""
    host = request.headers.get("host", "")
    if not LOOPBACK_HOST.fullmatch(host):
        detail = (f"without a token this server answers only to loopback names (127.0.0.1, localhost, [::1]), "
                  f"not {host!r}; start it with a token to reach it by other names")
        return JSONResponse({"detail": detail}, 400)
    return await call_next(request)


async def _same_origin_writes(request: Request, call_next):
    """Writes only from this server's own pages: browsers send `Origin` with every POST, PUT,
    PATCH and DELETE, and a page of another site can send those to a loopback server too (a
    form, or a fetch without CORS). By hand: Starlette's CORSMiddleware only answers
    preflights and adds headers, it lets such requests through. The scheme is not compared:
    behind a TLS proxy the page is https while this server sees http."""
    origin = request.headers.get("origin")
    if request.method in WRITES and origin is not None:
        if origin.partition("://")[2].lower() != request.headers.get("host", "").lower():
            detail = f"writes are accepted only from this server's own pages, not from {origin!r}"
            return JSONResponse({"detail": detail}, 403)
    return await call_next(request)


def _token_check(token: str):
    """Require the token as `Authorization: Bearer`, as the review page's cookie, or once as
    `?token=` (which sets that cookie, so a link opens the page in a browser)."""

    async def check(request: Request, call_next):
        scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
        offered = [  # any may be right: a cookie left by an earlier token must not refuse a new link
            credentials if scheme.lower() == "bearer" else "",  # RFC 7235: the scheme is case-insensitive
            request.cookies.get(TOKEN_COOKIE, ""),
            request.query_params.get("token", ""),
        ]
        if not any(secrets.compare_digest(each.encode(), token.encode()) for each in offered):
            return JSONResponse({"detail": "a valid token is required (Authorization: Bearer <token>)"}, 401)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    return check
