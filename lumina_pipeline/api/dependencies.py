"""What endpoints receive: a database session, the search models, settings, shared parameters."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi import Path as PathParameter
from sqlalchemy.orm import Session

from lumina_pipeline.api import schemas
from lumina_pipeline.search import SearchModels


def _database(request: Request) -> Iterator[Session]:
    """A session per request; endpoints that write commit it themselves."""
    with Session(request.app.state.engine) as session:
        yield session


def _models(request: Request) -> SearchModels:
    return request.app.state.models


def _thumbnail_dir(request: Request) -> str:
    return request.app.state.settings.thumbnail_dir


Database = Annotated[Session, Depends(_database)]
Models = Annotated[SearchModels, Depends(_models)]
ThumbnailDir = Annotated[str, Depends(_thumbnail_dir)]
CatalogName = Annotated[str, PathParameter(max_length=64, pattern=schemas.TEXT)]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
