"""The catalogs table: named sets of source folders."""

import re

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lumina_pipeline.storage.models import Catalog

CATALOG_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
DEFAULT_BATCH_SIZE = 500


class CatalogError(ValueError):
    """A catalog request that cannot be carried out, with a message for the user."""


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    return slug[:63] or "photos"


def add_catalog(
    session: Session, name: str, source_directories: list[str], batch_size: int = DEFAULT_BATCH_SIZE
) -> Catalog:
    """Register a catalog; `source_directories` must be absolute paths of existing folders."""
    if not CATALOG_NAME.match(name):
        raise CatalogError(
            f"bad catalog name {name!r}: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    if session.scalar(select(Catalog).where(Catalog.name == name)):
        raise CatalogError(f"catalog {name!r} already exists")
    if batch_size < 1:
        raise CatalogError("batch size must be at least 1")
    catalog = Catalog(name=name, source_directories=source_directories, batch_size=batch_size)
    session.add(catalog)
    session.flush()
    return catalog


def get_catalog(session: Session, name: str) -> Catalog:
    catalog = session.scalar(select(Catalog).where(Catalog.name == name))
    if catalog is None:
        raise CatalogError(f"no catalog named {name!r} (see `lumina catalog list`)")
    return catalog


def list_catalogs(session: Session) -> list[Catalog]:
    return list(session.scalars(select(Catalog).order_by(Catalog.name)))


def remove_catalog(session: Session, name: str) -> None:
    """Delete a catalog and, by cascade, every row that belongs to it."""
    session.execute(delete(Catalog).where(Catalog.id == get_catalog(session, name).id))
