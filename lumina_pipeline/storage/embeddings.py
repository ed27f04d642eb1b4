"""Image vectors: one pgvector table per model (vectors of two models never mix), each with
an HNSW index for cosine distance.

A batch writes its vectors outside the index (`indexed` false): an HNSW insert rewires its
neighbours' links and cost a batch more than its file analysis as the table grew. The
catalog-level step brings them in (`index_vectors`), and searches meanwhile scan the few not
yet indexed exactly, next to the index."""

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray
from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    MetaData,
    Row,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from lumina_pipeline.storage.catalogs import VECTOR_INDEX_LOCK_SPACE, held_lock
from lumina_pipeline.storage.frames import rows_as, stage
from lumina_pipeline.storage.models import Image

# The HNSW graph's links per vector (m) and build beam (ef_construction), below pgvector's 16
# and 64: each insert rewires about 2m neighbours' lists (500 inserts of 1280-dimension
# vectors took 12-15 s with m 16, 3 s with m 8, next to 0.4 s without an index). Searches
# widen their beam instead (SEARCH_BEAM), which costs a query milliseconds, to keep what the
# sparser graph would lose of recall.
GRAPH = {"m": 8, "ef_construction": 32}
BUILD_MEMORY_BYTES = 1 << 30  # maintenance_work_mem of an index build: the graph is built in memory
GRAPH_BYTES_PER_VECTOR = 50 * GRAPH["m"]  # a vector's links and bookkeeping in the graph, beside its values
SEARCH_BEAM = 100  # hnsw.ef_search at least; pgvector's default is 40, and it returns no more rows than that
# A table with fewer vectors has no index built: a search scans them all exactly, in tens of
# milliseconds (benchmarks/search.py searches 10,000 so), and a library's first regrouping does
# not wait for a build (0.7 s for 2,000 vectors).
EXACT_SCAN_VECTORS = 10_000


def embeddings_table(model_id: str, dimensions: int) -> Table:
    """`embeddings_<model>`: image_id, catalog_id, vector, the model's top labels."""
    name = "embeddings_" + re.sub(r"[^a-z0-9]+", "_", model_id.lower()).strip("_")
    return Table(
        name[:63],
        MetaData(),
        Column("image_id", BigInteger, ForeignKey(Image.__table__.c.id, ondelete="CASCADE"), primary_key=True),
        Column("catalog_id", UUID, nullable=False, index=True),
        Column("model_id", Text, nullable=False),
        Column("embedding", Vector(dimensions), nullable=False),
        Column("labels", JSONB),  # {label: probability} for models with labels
        Column("indexed", Boolean, nullable=False, server_default=false()),  # in the HNSW index yet
        Index(f"{name[:50]}_hnsw", "embedding", postgresql_using="hnsw", postgresql_with=GRAPH,
              postgresql_ops={"embedding": "vector_cosine_ops"}, postgresql_where=text("indexed")),
    )


def vector_rows(
    ids: pl.Series, catalog_id: uuid.UUID, model_id: str, vectors: NDArray[np.float32], labels: list[dict] | None
) -> pl.DataFrame:
    """Rows for `write_embeddings`, vectors in pgvector's text form '[x,y,...]' (formatted by
    polars: a Python loop over 1280 floats per photo would cost more than the model)."""
    as_text = pl.Series(vectors).cast(pl.List(pl.Float32)).list.eval(pl.element().cast(pl.String)).list.join(",")
    return pl.DataFrame({
        "image_id": ids,
        "catalog_id": str(catalog_id),
        "model_id": model_id,
        "embedding": "[" + as_text + "]",
        "labels": [json.dumps(item) for item in labels] if labels is not None else None,
    }, schema_overrides={"labels": pl.String})


def write_embeddings(connection: Connection, table: Table, rows: pl.DataFrame) -> None:
    """Replace the vectors of these images (`vector_rows`), in the caller's transaction.

    An upsert, so two runs writing one batch at once both succeed (the later one wins)."""
    if rows.is_empty():
        return
    _create_once(connection, table)
    stage(connection, "new_vectors", rows)
    connection.execute(text(f"""
        INSERT INTO {table.name} (image_id, catalog_id, model_id, embedding, labels)
        SELECT image_id, CAST(catalog_id AS uuid), model_id, CAST(embedding AS vector), CAST(labels AS jsonb)
        FROM new_vectors
        ON CONFLICT (image_id) DO UPDATE SET catalog_id = excluded.catalog_id, model_id = excluded.model_id,
            embedding = excluded.embedding, labels = excluded.labels, indexed = false"""))


def missing_vectors(connection: Connection, table: Table, catalog_id: uuid.UUID, batch: str) -> list[int]:
    """Photos of a batch read as ok that have no vector from this model yet."""
    _create_once(connection, table)
    rows = connection.execute(
        text(f"""SELECT i.id FROM images i LEFT JOIN {table.name} e ON e.image_id = i.id
                 WHERE i.catalog_id = :c AND i.batch = :b AND i.status = 'ok' AND e.image_id IS NULL"""),
        {"c": catalog_id, "b": batch},
    )
    return list(rows.scalars())


@dataclass(frozen=True)
class Match:
    """An image a search found: how close it is (cosine similarity) and, where the search
    reads them, the image model's labels and the photo's description."""

    id: int
    path: bytes
    score: float = 0.0
    labels: dict[str, float] | None = None
    description: str | None = None


def nearest(connection: Connection, table: Table, catalog_id: uuid.UUID, vector: str, k: int) -> list[Match]:
    """The k images closest to `vector` (pgvector text) by cosine: through the HNSW index, and
    by an exact scan of the vectors not indexed yet. Equally close images (copies have one
    vector) come in id order, whichever way each was found: each part offers twice k."""
    offered = 2 * k
    connection.execute(text("SELECT set_config('hnsw.ef_search', :beam, true)"),
                       {"beam": str(max(SEARCH_BEAM, offered))})
    closest = """(SELECT i.id, i.path, e.embedding <=> CAST(:v AS vector) AS distance, e.labels
                  FROM {table} e JOIN images i ON i.id = e.image_id
                  WHERE e.catalog_id = :c AND i.status = 'ok' AND {which}
                  ORDER BY e.embedding <=> CAST(:v AS vector) LIMIT :offered)"""
    return rows_as(Match, _read(
        connection, table, f"""SELECT id, path, 1 - distance AS score, labels
                 FROM ({closest.format(table=table.name, which="e.indexed")}
                       UNION ALL {closest.format(table=table.name, which="NOT e.indexed")}) both_parts
                 ORDER BY distance, id LIMIT :k""",
        {"v": vector, "c": catalog_id, "k": k, "offered": offered},
    ))


def index_vectors(engine: Engine, catalog_id: uuid.UUID, exact_below: int = EXACT_SCAN_VECTORS) -> int:
    """Bring a catalog's vectors not yet indexed into their model's HNSW index, in tables of at
    least `exact_below` vectors; how many. Call it outside any transaction of this process: a
    concurrent build waits for the transactions open on its table.

    Where building the index anew over all would be cheaper (`rebuilding_is_cheaper`), or a
    killed build left it missing or invalid, it is dropped and built again concurrently: the
    table stays open to searches (which scan exactly meanwhile) and to batches' writes. One
    process at a time indexes a table."""
    moved = 0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in _vector_tables(connection):
            with held_lock(engine, VECTOR_INDEX_LOCK_SPACE, table):
                moved += _index_table(connection, table, catalog_id, exact_below)
    return moved


def _index_table(connection: Connection, table: str, catalog_id: uuid.UUID, exact_below: int) -> int:
    pending, indexed, dimensions = connection.execute(
        text(f"""SELECT count(*) FILTER (WHERE NOT indexed AND catalog_id = :c), count(*) FILTER (WHERE indexed),
                        (SELECT atttypmod FROM pg_attribute WHERE attrelid = '{table}'::regclass
                                                              AND attname = 'embedding')
                 FROM {table}"""), {"c": catalog_id},
    ).one()
    index = f"{table[:50]}_hnsw"
    valid = connection.execute(text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:i)"),
                               {"i": index}).scalar()
    mark = text(f"UPDATE {table} SET indexed = true WHERE NOT indexed AND catalog_id = :c")
    if valid and (not pending or pending + indexed < exact_below):
        return 0
    if valid and not rebuilding_is_cheaper(pending, indexed, dimensions):
        connection.execute(mark, {"c": catalog_id})
        return pending
    model_id = connection.execute(text(f"SELECT model_id FROM {table} LIMIT 1")).scalar()
    if model_id is None:  # no vector left: the index is built when the next ones come
        return 0
    hnsw = next(i for i in embeddings_table(model_id, dimensions).indexes if i.name == index)
    hnsw.dialect_options["postgresql"]["concurrently"] = True
    connection.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {index}"))
    connection.execute(mark, {"c": catalog_id})
    connection.execute(text(f"SET maintenance_work_mem = {BUILD_MEMORY_BYTES // 1024}"))  # in kB
    try:
        hnsw.create(connection)
    finally:
        connection.execute(text("RESET maintenance_work_mem"))
    return pending


def rebuilding_is_cheaper(pending: int, indexed: int, dimensions: int) -> bool:
    """Whether building a table's HNSW index anew over all its vectors costs less than
    inserting the `pending` ones into it.

    A build whose graph fits in maintenance_work_mem costs a vector about a seventeenth of an
    insert (6,000 vectors of 1280 dimensions: 2,000 inserted in 2.4 s, all 6,000 built in
    0.43 s), so it wins from an eighth of the indexed count, leaving a margin. A graph larger
    than memory is built on disk, insert by insert: that wins only when most vectors are new."""
    in_memory = (pending + indexed) * (4 * dimensions + GRAPH_BYTES_PER_VECTOR) < BUILD_MEMORY_BYTES
    return pending > indexed or (in_memory and 8 * pending > indexed)


def _vector_tables(connection: Connection) -> list[str]:
    """Every model's vector table (`embeddings_table`), made by the model's first batch."""
    return list(connection.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'embeddings\\_%'"
    )).scalars())


def vectors_of(
    connection: Connection, table: Table, catalog_id: uuid.UUID | None, *, path: bytes = b"",
    source_root: str | None = None, image_id: int = 0,
) -> list[tuple[int, str]]:
    """(image id, vector) of the image `image_id`, or of each photo at `path` in a catalog: in
    `source_root` when given, else in any of its source folders (two may hold the same path)."""
    rows = _read(
        connection, table, f"""SELECT i.id, e.embedding::text FROM {table.name} e JOIN images i ON i.id = e.image_id
                 WHERE i.status = 'ok' AND (i.id = :i OR (e.catalog_id = :c AND i.path = :p
                       AND i.source_root = coalesce(CAST(:r AS text), i.source_root)))""",
        {"c": catalog_id, "p": path, "r": source_root, "i": image_id},
    )
    return [(row.id, row.embedding) for row in rows]


def similarities_to(connection: Connection, table: Table, image_id: int, others: list[int]) -> dict[int, float]:
    """Cosine similarity of each of `others` to `image_id`, for images that have vectors."""
    rows = _read(
        connection, table, f"""SELECT o.image_id, 1 - (o.embedding <=> a.embedding) FROM {table.name} a
                 JOIN {table.name} o ON o.image_id = ANY(:others) WHERE a.image_id = :i""",
        {"i": image_id, "others": others},
    )
    return {image: round(float(score), 4) for image, score in rows}


def _create_once(connection: Connection, table: Table) -> None:
    """Create a model's table on its first use; two first batches at once take turns."""
    if not _exists(connection, table):
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": table.name})
        table.create(connection, checkfirst=True)


def _exists(connection: Connection, table: Table) -> bool:
    return connection.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table.name}).scalar_one()


def _read(connection: Connection, table: Table, query: str, params: dict) -> Sequence[Row]:
    """Vector tables appear with their model's first batch; a read before that finds none."""
    return connection.execute(text(query), params).all() if _exists(connection, table) else []


def catalog_labels(connection: Connection, table: Table, catalog_id: uuid.UUID) -> list[Match]:
    return rows_as(Match, _read(
        connection, table, f"""SELECT i.id, i.path, e.labels FROM {table.name} e JOIN images i ON i.id = e.image_id
                 WHERE e.catalog_id = :c AND i.status = 'ok' AND e.labels IS NOT NULL""",
        {"c": catalog_id},
    ))
