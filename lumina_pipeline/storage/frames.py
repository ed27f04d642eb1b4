"""Rows out of PostgreSQL as the layers above take them: polars frames moved in and out with
COPY (one round trip, any row count), and query results as typed rows."""

import io
from collections.abc import Iterable
from typing import Any, TypeVar

import polars as pl
from sqlalchemy import Connection, Row, text
from sqlalchemy.engine.interfaces import DBAPICursor

POSTGRES_TYPES = {
    pl.String: "text",
    pl.Binary: "bytea",
    pl.Boolean: "boolean",
    pl.Float64: "double precision",
    pl.Float32: "real",
}


def copy_into(connection: Connection, table: str, frame: pl.DataFrame) -> None:
    """Append `frame` to `table`, matching columns by name (CSV COPY; bytea as \\x hex)."""
    encoded = frame.with_columns(
        pl.concat_str(pl.lit("\\x"), pl.col(name).bin.encode("hex")).alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.Binary
    )
    buffer = io.BytesIO()
    encoded.write_csv(buffer, include_header=False)
    buffer.seek(0)
    columns = ", ".join(f'"{name}"' for name in frame.columns)
    dbapi_cursor(connection).copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)


def stage(connection: Connection, table: str, frame: pl.DataFrame) -> None:
    """Load `frame` into a temporary table that lives until the transaction ends. Its long
    values are stored as they come: read once, compressing them cost the database more than
    the rest of the load (a batch's 500 vectors as text: 0.25 s of 0.3 s)."""
    types = {name: POSTGRES_TYPES.get(dtype.base_type(), "bigint") for name, dtype in frame.schema.items()}
    columns = ", ".join(f'"{name}" {kind}' for name, kind in types.items())
    cursor = dbapi_cursor(connection)
    cursor.execute(f"CREATE TEMP TABLE {table} ({columns}) ON COMMIT DROP")
    if long := [name for name, kind in types.items() if kind in ("text", "bytea")]:
        cursor.execute(f"ALTER TABLE {table} "
                       + ", ".join(f'ALTER COLUMN "{name}" SET STORAGE EXTERNAL' for name in long))
    copy_into(connection, table, frame)


def read_frame(connection: Connection, query: str, params: dict[str, Any], schema: dict) -> pl.DataFrame:
    """Run `query` (with `:name` parameters, as every query of storage/ has them) through
    COPY TO and read the result with `schema` (names and types)."""
    compiled = text(query).compile(dialect=connection.dialect)
    cursor = dbapi_cursor(connection)
    sql = cursor.mogrify(compiled.string, compiled.construct_params(params)).decode()
    buffer = io.BytesIO()
    cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", buffer)
    if not buffer.getbuffer().nbytes:
        return pl.DataFrame(schema=schema)
    # CSV carries bytea as \x hex and booleans as t/f: read both as text, then convert
    as_text = {name for name, dtype in schema.items() if dtype in (pl.Binary, pl.Boolean)}
    text_schema = {name: pl.String if name in as_text else dtype for name, dtype in schema.items()}
    frame = pl.read_csv(buffer.getvalue(), has_header=False, new_columns=list(schema), schema=text_schema)
    return frame.with_columns(
        pl.col(name).str.strip_prefix("\\x").str.decode("hex") if dtype == pl.Binary else pl.col(name) == "t"
        for name, dtype in schema.items()
        if name in as_text
    )


Typed = TypeVar("Typed")


def rows_as(kind: type[Typed], rows: Iterable[Row]) -> list[Typed]:
    """Each row as a `kind` (a dataclass whose fields the query's columns name); bytea as bytes
    (psycopg2 gives memoryviews)."""
    return [kind(**{name: bytes(value) if isinstance(value, memoryview) else value
                    for name, value in row._mapping.items()}) for row in rows]


def dbapi_cursor(connection: Connection) -> DBAPICursor:
    """A psycopg2 cursor in `connection`'s transaction, for COPY; the SQLAlchemy transaction
    around it still decides commit or rollback."""
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None:  # only once the connection is closed or invalidated
        raise RuntimeError("the database connection is closed")
    return dbapi_connection.cursor()
