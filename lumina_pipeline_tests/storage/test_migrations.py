"""Data migrations on a database of their own, brought to the revision before them."""

import json
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from lumina_pipeline.storage.catalogs import add_catalog
from lumina_pipeline.storage.database import (
    MIGRATIONS,
    VERSION_TABLE,
    make_engine,
    migrate,
    newest_revision,
    schema_revision,
)
from lumina_pipeline.storage.models import Base

# metadata of a file read before revision 0018 -> whether 0018 has it read again
READ_BEFORE_0018 = {
    "gps-at-zero.jpg": ({"format": "JPEG", "latitude": 0.0, "longitude": 0.0}, True),
    "gps-in-rome.jpg": ({"format": "JPEG", "latitude": 41.9, "longitude": 12.5}, False),
    "turned.tif": ({"format": "TIFF", "orientation": 6}, True),
    "upright.tif": ({"format": "TIFF", "orientation": 1}, False),
    "turned.jpg": ({"format": "JPEG", "orientation": 6}, False),
}


@contextmanager
def database_of_its_own(engine, database_url: str, name: str) -> Iterator[Engine]:
    """A new, empty database beside the tests' one (whose tables other tests add to), dropped after."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    own = make_engine(make_url(database_url).set(database=name).render_as_string(hide_password=False))
    try:
        yield own
    finally:
        own.dispose()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f"DROP DATABASE {name}"))


def test_files_read_before_the_gps_and_tiff_fixes_are_read_again(engine, database_url, tmp_path):
    with database_of_its_own(engine, database_url, "before_0018") as old:
        migrate(old, "0017")
        assert schema_revision(old) == "0017"
        with Session(old) as session, session.begin():
            catalog = add_catalog(session, "old", [str(tmp_path)]).id
            session.execute(text("""
                INSERT INTO images (catalog_id, source_root, path, kind, size_bytes, mtime_ns, batch, status,
                                    metadata, analysis_version)
                VALUES (:c, :root, :path, 'image', 1, 1, '00000', 'ok', CAST(:metadata AS jsonb), 'photos-v4')"""),
                [{"c": catalog, "root": str(tmp_path), "path": name.encode(), "metadata": json.dumps(metadata)}
                 for name, (metadata, _) in READ_BEFORE_0018.items()])
        migrate(old)
        assert schema_revision(old) == newest_revision()
        with old.connect() as connection:
            rows = connection.execute(text("SELECT path, analysis_version IS NULL FROM images")).all()
        assert {bytes(path).decode(): again for path, again in rows} == {
            name: again for name, (_, again) in READ_BEFORE_0018.items()}


def test_google_takeouts_json_files_cataloged_as_other_files_become_sidecars(engine, database_url, tmp_path):
    with database_of_its_own(engine, database_url, "before_0021") as old:
        migrate(old, "0020")
        with Session(old) as session, session.begin():
            catalog = add_catalog(session, "old", [str(tmp_path)]).id
            session.execute(text("""
                INSERT INTO images (catalog_id, source_root, path, kind, size_bytes, mtime_ns, batch, status, error)
                VALUES (:c, :root, :path, 'other', 1, 1, '00000', 'skipped', 'not a photo or video')"""),
                [{"c": catalog, "root": str(tmp_path), "path": path}
                 for path in (b"IMG_1.jpg.json", b"IMG_2.HEIC.JSON", b"notes.txt", b"caf\xe9.json")])
        migrate(old)
        with old.connect() as connection:
            rows = connection.execute(text("SELECT path, kind, error FROM images ORDER BY path")).all()
        sidecar, other = ("sidecar", "sidecar file, not a photo"), ("other", "not a photo or video")
        assert [(bytes(path), kind, error) for path, kind, error in rows] == [
            (b"IMG_1.jpg.json", *sidecar), (b"IMG_2.HEIC.JSON", *sidecar), (b"caf\xe9.json", *sidecar),
            (b"notes.txt", *other)]


def test_the_newest_revision_is_alembics_head(engine):
    """What `migrate` compares the database's revision with, to skip Alembic when it is at head."""
    assert newest_revision() == ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert schema_revision(engine) == newest_revision()


def test_the_migrations_make_the_tables_the_models_describe(engine, database_url):
    """storage/models.py is the schema a reader trusts: no migration may leave it behind. (The
    tables of image vectors, one per model, are made as a model is first used: not models.)"""
    with database_of_its_own(engine, database_url, "migrated") as migrated, migrated.connect() as connection:
        migrate(migrated)
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_server_default": True}
        )
        assert compare_metadata(context, Base.metadata) == []
