"""Catalogs and their images: filtered pages, one image, its thumbnail and file, its rating
and tags, and search by example or by text."""

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi import Path as PathParameter
from sqlalchemy.orm import Session

from lumina_pipeline.api import schemas
from lumina_pipeline.api.dependencies import CatalogName, Database, Limit, Models, ThumbnailDir
from lumina_pipeline.api.files import OpenFileResponse, browser_image, open_inside, video_type
from lumina_pipeline.api.views import or_404, summary
from lumina_pipeline.search import SearchResult, search_text, similar_to_image
from lumina_pipeline.storage.browse import (
    CatalogSummary,
    ImageDetailRow,
    ImageFilters,
    catalog_summaries,
    find_images,
    get_image,
    image_tags,
    membership,
)
from lumina_pipeline.storage.catalogs import get_catalog
from lumina_pipeline.storage.decisions import ContentChanged, add_manual_tag, hold_content, remove_tag, set_rating
from lumina_pipeline.storage.models import Catalog, Image
from lumina_pipeline.storage.thumbnails import thumbnail_file

router = APIRouter(prefix="/api", responses={404: {"model": schemas.Problem}})

ImageId = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {  # a photo a browser shows, or a video as stored (video_type)
    200: {"content": {"image/jpeg": {}, "image/png": {}, "image/gif": {}, "image/webp": {}, "video/*": {},
                      "application/octet-stream": {}}}
}
CACHE = "private, max-age=86400"


def image_or_404(session: Session, image_id: int) -> ImageDetailRow:
    return or_404(get_image(session.connection(), image_id), f"image {image_id}")


@router.get("/catalogs", response_model=list[CatalogSummary])
def list_catalogs(session: Database):
    return catalog_summaries(session.connection())


@router.get("/catalogs/{catalog}/images", response_model=schemas.ImagePage)
def list_images(
    session: Database,
    catalog: CatalogName,
    status: schemas.Status | None = None,
    kind: schemas.Kind | None = None,
    camera: Annotated[
        str | None, Query(max_length=100, pattern=schemas.TEXT, description="part of make and model")
    ] = None,
    captured_from: Annotated[date | None, Query(description="first capture date, inclusive")] = None,
    captured_to: Annotated[date | None, Query(description="last capture date, inclusive")] = None,
    tag: Annotated[str | None, Query(max_length=100, pattern=schemas.TEXT)] = None,
    source: Annotated[
        schemas.TagSource | None, Query(description="only tags from this source (with `tag`: that tag)")
    ] = None,
    geohash: Annotated[str | None, Query(pattern=r"^[0-9b-hjkmnp-z]{1,8}$", description="prefix")] = None,
    in_group: bool | None = None,
    in_burst: bool | None = None,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="the last id of the previous page")] = 0,
    limit: Limit = 100,
):
    filters = ImageFilters(status, kind, camera, captured_from, captured_to, tag, source, geohash, in_group, in_burst)
    catalog_id = get_catalog(session, catalog).id
    rows = find_images(session.connection(), catalog_id, filters, after, limit + 1)
    items = [summary(row) for row in rows[:limit]]
    return schemas.ImagePage(items=items, next_after=items[-1].id if len(rows) > limit else None)


@router.get("/images/{image_id}", response_model=schemas.ImageDetail)
def image_detail(session: Database, image_id: ImageId):
    return detail(session, image_or_404(session, image_id))


def detail(session: Session, row: ImageDetailRow) -> schemas.ImageDetail:
    connection = session.connection()
    return schemas.ImageDetail(
        **summary(row).model_dump(),
        error=row.error,
        dates=row.dates,
        metadata=row.metadata,
        geohash=row.geohash_8,
        hashes=schemas.Hashes.model_validate(row, from_attributes=True),
        tags=image_tags(connection, row.id),
        group=membership(connection, row.id),
        is_best_frame=row.is_best_frame,
    )


@router.get("/images/{image_id}/thumbnail", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def thumbnail(session: Database, thumbnail_dir: ThumbnailDir, image_id: ImageId, request: Request):
    row = image_or_404(session, image_id)
    if not row.thumbnail_path:
        raise HTTPException(404, f"image {image_id} has no thumbnail ({row.status})")
    found = thumbnail_file(Path(thumbnail_dir), row.thumbnail_path)
    if found is None:
        raise HTTPException(404, f"the thumbnail of image {image_id} is missing; re-run its batch")
    return _send(request, os.open(found, os.O_RDONLY), lambda data: (data, "image/jpeg"))


@router.get("/images/{image_id}/file", response_class=Response, responses=FILE_RESPONSES)
def image_file(session: Database, image_id: ImageId, request: Request):
    """The photo itself: JPEG, PNG, GIF and WebP as stored; HEIC/HEIF, TIFF, RAW previews,
    AVIF and the like converted to JPEG. A video as stored, streamed in ranges."""
    row = image_or_404(session, image_id)
    if row.kind not in ("image", "raw", "video") or row.status != "ok":
        raise HTTPException(404, f"image {image_id} is a {row.kind} file ({row.status}): nothing to show")
    roots = session.get_one(Catalog, row.catalog_id).source_directories
    found = open_inside(roots, row.source_root, row.path)
    if found is None:
        raise HTTPException(404, f"the file of image {image_id} is not inside its catalog's folders (moved or gone?)")
    if row.kind == "video":
        return OpenFileResponse(found, media_type=video_type(row.path), headers={"Cache-Control": CACHE})
    return _send(request, found, browser_image)


def _send(request: Request, descriptor: int, convert) -> Response:
    """The open file's bytes, as `convert` makes them, with an ETag from its size and mtime;
    the file is closed."""
    with open(descriptor, "rb") as file:
        info = os.fstat(descriptor)
        tag = f'"{info.st_size:x}-{info.st_mtime_ns:x}"'
        headers = {"ETag": tag, "Cache-Control": CACHE}
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers=headers)
        try:
            data, media_type = convert(file.read())
        except Exception as error:  # a file that no longer decodes is that file's problem
            raise HTTPException(422, f"cannot show this file: {type(error).__name__}: {error}") from error
    return Response(data, media_type=media_type, headers=headers)


CHANGED: dict[int | str, dict[str, Any]] = {409: {"model": schemas.Problem}}


@router.put("/images/{image_id}/rating", response_model=schemas.ImageDetail, responses=CHANGED)
def rate(session: Database, image_id: ImageId, rating: schemas.Rating):
    markable(session, image_id, rating.checksum)
    set_rating(session.connection(), image_id, rating.rating)
    session.commit()
    return detail(session, image_or_404(session, image_id))


@router.post("/images/{image_id}/tags", response_model=list[schemas.ImageTag], responses=CHANGED)
def tag(session: Database, image_id: ImageId, new: schemas.NewTag):
    markable(session, image_id, new.checksum)
    add_manual_tag(session.connection(), image_id, new.name)
    session.commit()
    return image_tags(session.connection(), image_id)


@router.delete("/images/{image_id}/tags/{name:path}", response_model=list[schemas.ImageTag],  # a tag may hold "/"
               responses=CHANGED)
def untag(
    session: Database,
    image_id: ImageId,
    name: Annotated[str, PathParameter(max_length=100, pattern=schemas.TEXT)],
    checksum: Annotated[str | None, Query(pattern=schemas.CHECKSUM, description=schemas.SEEN_DESCRIPTION)] = None,
):
    markable(session, image_id, checksum)
    if not remove_tag(session.connection(), image_id, name):
        raise HTTPException(404, f"image {image_id} has no tag {name!r}")
    session.commit()
    return image_tags(session.connection(), image_id)


def markable(session: Session, image_id: int, seen: str | None) -> None:
    """404 for an unknown image, 409 when its file no longer holds the bytes `seen` (hold_content)."""
    or_404(session.get(Image, image_id), f"image {image_id}")
    try:
        hold_content(session.connection(), image_id, seen)
    except ContentChanged as error:
        raise HTTPException(409, str(error)) from None


@router.get("/images/{image_id}/similar", response_model=list[SearchResult])
def similar(session: Database, models: Models, image_id: ImageId, k: Annotated[int, Query(ge=1, le=100)] = 10):
    """The k photos of the same catalog nearest to this one by cosine of the image vectors."""
    or_404(session.get(Image, image_id), f"image {image_id}")
    found = similar_to_image(session, image_id, k, models)
    if found is None:
        raise HTTPException(404, f"image {image_id} has no vector from {models.image.model_id}: run `embeddings`")
    return found


@router.get("/catalogs/{catalog}/search", response_model=list[SearchResult])
def search(
    session: Database,
    models: Models,
    catalog: CatalogName,
    q: Annotated[str, Query(max_length=200, pattern=schemas.QUERY, description="what to look for")],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
):
    """Photos matching a text, best first: with CLIP directly, with the default model through
    its labels, each result saying which labels matched. An empty list when no photo's labels
    mean the text closely enough (the relevance floor)."""
    return search_text(session, catalog, q, k, models)
