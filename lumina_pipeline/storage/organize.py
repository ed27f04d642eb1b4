"""What organizing a catalog reads and keeps: its files with what the reviews decided about
them, and where and how its organized tree is laid out (catalogs.organized_directory,
organize_template, organize_move)."""

import os
import uuid

import polars as pl
import tzlocal
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from lumina_pipeline.analysis.organize import FILES_SCHEMA, ORGANIZED_KINDS, check_template
from lumina_pipeline.storage.browse import KEPT_SHOTS, removable_files
from lumina_pipeline.storage.catalogs import CatalogError, get_catalog
from lumina_pipeline.storage.fields import as_text
from lumina_pipeline.storage.frames import read_frame
from lumina_pipeline.storage.models import Catalog


def set_organizing(session: Session, name: str, into: str, template: str, move: bool) -> Catalog:
    """Organize catalog `name` into the folder `into` (absolute) by `template`, moving by default
    when `move`. The folder may not lie inside one of the catalog's own: a rescan would catalog
    each organized file again, as a copy of itself. The tree files were moved into is one of
    them (actions/organize.py), and stays the place to organize into."""
    catalog = get_catalog(session, name)
    try:
        catalog.organize_template = check_template(template)
    except ValueError as error:
        raise CatalogError(str(error)) from None
    inside = any(os.path.commonpath([into, folder]) == folder for folder in catalog.source_directories)
    if inside and into != catalog.organized_directory:
        raise CatalogError(f"{into} is inside a folder of {name}: organize into a folder of its own")
    catalog.organized_directory, catalog.organize_move = into, move
    return catalog


def local_time_zone() -> str:
    """This machine's time zone by name, where its nights and its days are (the nightly
    schedules', organize's); UTC where it has none (a container given /etc/localtime as a file)."""
    return tzlocal.get_localzone_name() or "UTC"


def organize_files(connection: Connection, catalog_id: uuid.UUID) -> pl.DataFrame:
    """The catalog's photos, videos and sidecars still in its folders, as analysis/organize.py
    reads them: `kept` for a file a review keeps (or one of its stack), `removable` for one it
    put aside. A video's capture time in UTC (its container's creation_time) is taken to this
    machine's time zone, where a family's videos are mostly taken: the clock of its photos."""
    removable = [row.id for row in removable_files(connection, catalog_id)]
    return read_frame(connection, f"""
        SELECT i.id, i.source_root, i.path, i.kind, i.size_bytes, i.mtime_ns, i.checksum, i.status,
               CASE WHEN {as_text("captured_at_source")} = 'creation_time'
                    THEN to_char(CAST({as_text("captured_at")} AS timestamp) AT TIME ZONE 'UTC' AT TIME ZONE :zone,
                                 'YYYY-MM-DD"T"HH24:MI:SS')
                    ELSE {as_text("captured_at")} END,
               i.stack_id::text, s.primary_image_id = i.id,
               i.id IN ({KEPT_SHOTS}), i.id = ANY(:removable)
        FROM images i LEFT JOIN stacks s ON s.id = i.stack_id
        WHERE i.catalog_id = :c AND i.kind = ANY(:kinds) AND i.status NOT IN ('deleted', 'quarantined', 'ignored')
        ORDER BY i.id""", {"c": catalog_id, "removable": removable, "kinds": ORGANIZED_KINDS,
                           "zone": local_time_zone()}, FILES_SCHEMA)
