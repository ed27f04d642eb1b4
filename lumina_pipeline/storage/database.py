"""Where the catalog database lives (external or embedded PostgreSQL) and its schema."""

import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"
# Dagster's own schema, in the same database, already has a table named alembic_version.
VERSION_TABLE = "lumina_alembic_version"
PLAIN_PATH = re.compile(r"[\w/.-]+")  # letters of any script, digits, _ / . -: nothing a shell, URL or list reads
# pg_ctl runs postgres by a shell line with the data folder in double quotes, inside which these act
NOT_IN_A_DATA_FOLDER = '$`"\\'


def normalize_url(url: str) -> str:
    """Name the psycopg2 driver in the scheme: SQLAlchemy and dagster-postgres both want it."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def start_embedded_server(data_directory: Path) -> str:
    """Start (or join) the PostgreSQL + pgvector that `pgserver` ships; return its URL.

    The server outlives this process, so the CLI, the Dagster webserver, the daemon and
    run workers all share it; `pgserver` reattaches to it on the next call."""
    pgserver = _pgserver()
    _mend_handle_list(data_directory)
    # pgserver's documented entry point; its package does not re-export it in the typed sense
    server = pgserver.get_server(data_directory, cleanup_mode=None)  # pyright: ignore[reportPrivateImportUsage]
    return normalize_url(server.get_uri())


def _pgserver() -> ModuleType:
    """pgserver, imported only where the embedded server is used. It keeps its lock in the
    user's runtime folder; where XDG_RUNTIME_DIR is unset (containers, cron) platformdirs falls
    back to one under /tmp, fine, but warns every time."""
    with warnings.catch_warnings(action="ignore"):
        import pgserver
        from pgserver import postgres_server
    # the name under which pgserver's server module calls pgserver.utils' function, unexported
    pgservers_choice = postgres_server.find_suitable_socket_dir  # pyright: ignore[reportPrivateImportUsage]
    if not isinstance(pgservers_choice, partial):  # once per process
        postgres_server.find_suitable_socket_dir = partial(_socket_folder, pgservers_choice)  # pyright: ignore[reportPrivateImportUsage]
    return pgserver


def _socket_folder(pgservers_choice: Callable[[Path, Path], Path], data_directory: Path, runtime_folder: Path) -> Path:
    """pgserver's choice of the server's socket folder, but never one whose path holds more than
    PLAIN_PATH: pgserver (0.1.4) hands it to postgres unquoted (`-k <folder>`) in the shell line
    pg_ctl runs, where postgres takes a comma as between two folders, so postgres refused to
    start in a checkout under "My Projects" or "Mom's photos"; and the database URL reads a
    `%` or `+` in it as an escape. There the socket goes where pgserver puts one whose path is
    too long for a socket: a folder of its runtime folder, named for the data."""
    if PLAIN_PATH.fullmatch(str(data_directory)):
        return pgservers_choice(data_directory, runtime_folder)
    folder = runtime_folder / f"lumina-{hashlib.sha256(bytes(data_directory)).hexdigest()[:10]}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _mend_handle_list(data_directory: Path) -> None:
    """pgserver rewrites the list of processes using the server (.handle_pids.json) in place as
    each starts and ends: one killed in between leaves it empty, and every later start failed to
    parse it, `lumina stop` included. The list serves only cleanup modes Lumina does not use, so
    an unreadable one becomes an empty one (put whole in place, never seen half-written)."""
    handles = data_directory / ".handle_pids.json"
    try:
        json.loads(handles.read_text())
    except FileNotFoundError:
        return
    except ValueError:
        mended = handles.with_name(".handle_pids.mended")
        mended.write_text("[]")
        os.replace(mended, handles)


def stop_embedded_server(data_directory: Path) -> bool:
    """Stop the embedded server of `data_directory` if it runs; whether it was running.

    Every `lumina` command joins the server the first one started and leaves it running for
    the next; `lumina stop` ends it (the next command starts it again)."""
    pgserver = _pgserver()
    if not (data_directory / "postmaster.pid").exists():
        return False
    owner = "pgserver" if os.geteuid() == 0 else None  # under root, pgserver runs the server as this user
    # pgserver defines one function per PostgreSQL program at import time, invisible to a type checker
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_directory, user=owner)  # pyright: ignore[reportAttributeAccessIssue]
    return True


def make_engine(url: str) -> Engine:
    return create_engine(normalize_url(url), pool_pre_ping=True)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest Alembic revision, or to `revision` (idempotent, safe to
    call on start). Every `lumina` command calls it: at the newest revision it only reads the
    version, as importing Alembic and its scripts took a third of a second of each command."""
    if revision == "head" and schema_revision(engine) == newest_revision():
        return
    import alembic.command
    import alembic.config

    config = alembic.config.Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, revision)


def newest_revision() -> str:
    """The newest migration's revision: each is named for its revision (`0019_...py`)."""
    return max(path.name.split("_")[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def schema_revision(engine: Engine) -> str | None:
    """The revision the database's schema is at; None before the first migration."""
    with engine.connect() as connection:
        if connection.execute(text("SELECT to_regclass(:table)"), {"table": VERSION_TABLE}).scalar() is None:
            return None
        return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
