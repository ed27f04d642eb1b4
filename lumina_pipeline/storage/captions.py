"""Captions by content: what a vision model said about each checksum (`captions`), and how
that reaches a batch's images: their description, their `ollama` tags and the sentence-model
vector that search compares queries with (`description_vectors`)."""

import uuid

import numpy as np
import polars as pl
from sqlalchemy import Connection, text

from lumina_pipeline.storage.embeddings import Match
from lumina_pipeline.storage.frames import read_frame, rows_as
from lumina_pipeline.storage.tags import replace_tags

SOURCE = "ollama"  # image_tags.source of a caption's tags

BATCH_PHOTOS = """
    FROM images i LEFT JOIN captions c ON c.checksum = i.checksum AND c.model = :m AND c.prompt_version = :v"""
PHOTOS = "i.catalog_id = :c AND i.status = 'ok' AND i.thumbnail_path IS NOT NULL"


def contents_to_caption(
    connection: Connection, catalog_id: uuid.UUID, batch: str, model: str, version: str
) -> pl.DataFrame:
    """One row per distinct content among the batch's photos (`checksum`, `thumbnail_path`,
    the `path` of one of its photos) that has no caption by this model and prompt version
    yet: a copy, here or in any catalog, or an earlier run already asked for the others.
    Contents whose last attempt failed are asked again."""
    return read_frame(
        connection,
        f"""SELECT DISTINCT ON (i.checksum) i.checksum, i.thumbnail_path, i.path {BATCH_PHOTOS}
            WHERE {PHOTOS} AND i.batch = :b AND c.description IS NULL""",
        {"c": catalog_id, "b": batch, "m": model, "v": version},
        {"checksum": pl.String, "thumbnail_path": pl.String, "path": pl.Binary},
    )


def save_captions(connection: Connection, model: str, version: str, answers: pl.DataFrame) -> None:
    """Store answers (`checksum`, `description`, `tags`, `error`, `attempts`); a new answer
    replaces a failed one."""
    if answers.is_empty():
        return
    connection.execute(
        text("""
            INSERT INTO captions (checksum, model, prompt_version, description, tags, error, attempts)
            VALUES (:checksum, :m, :v, :description, :tags, :error, :attempts)
            ON CONFLICT (checksum, model, prompt_version) DO UPDATE SET description = excluded.description,
                tags = excluded.tags, error = excluded.error, attempts = excluded.attempts, created_at = now()"""),
        [{**row, "m": model, "v": version} for row in answers.to_dicts()],
    )


def apply_captions(
    connection: Connection, catalog_id: uuid.UUID, batch: str, model: str, version: str, text_model: str
) -> tuple[int, pl.DataFrame]:
    """Give the batch's photos the description and `ollama` tags of their content's caption by
    this model and prompt version (replacing those of an earlier model); photos without such
    a caption keep what they had. Returns how many photos have one, and those whose
    description changed or has no vector from `text_model` (`image_id`, `description`,
    `tags`, `path`): the ones to embed."""
    rows = connection.execute(
        text(f"""SELECT i.id, c.description, c.tags,
                        i.description IS DISTINCT FROM c.description OR v.image_id IS NULL AS to_embed, i.path
                 {BATCH_PHOTOS} LEFT JOIN description_vectors v ON v.image_id = i.id AND v.text_model = :t
                 WHERE {PHOTOS} AND i.batch = :b AND c.description IS NOT NULL ORDER BY i.id"""),
        {"c": catalog_id, "b": batch, "m": model, "v": version, "t": text_model},
    )
    schema = {"image_id": pl.Int64, "description": pl.String, "tags": pl.List(pl.String), "to_embed": pl.Boolean,
              "path": pl.Binary}
    # the path as bytes: polars reads psycopg2's memoryviews of bytea as nulls
    captioned = pl.DataFrame([(*row[:-1], bytes(row.path)) for row in rows], schema=schema, orient="row")
    if captioned.is_empty():
        return 0, captioned.drop("to_embed")
    connection.execute(
        text("UPDATE images SET description = :description WHERE id = :image_id"),
        captioned.select("image_id", "description").to_dicts(),
    )
    # a null name for a caption without tags, so that an earlier model's tags still go
    tags = captioned.select("image_id", name="tags", confidence=pl.lit(None, pl.Float64))
    replace_tags(connection, catalog_id, SOURCE, model, tags.explode("name", empty_as_null=True))
    return len(captioned), captioned.filter("to_embed").drop("to_embed")


def write_description_vectors(
    connection: Connection, catalog_id: uuid.UUID, text_model: str, image_ids: list[int], vectors: np.ndarray
) -> None:
    """Store (or replace) the sentence-model vectors of these images' descriptions."""
    if not image_ids:
        return
    connection.execute(
        text("""
            INSERT INTO description_vectors (image_id, catalog_id, text_model, embedding)
            VALUES (:image_id, :c, :t, CAST(:embedding AS vector))
            ON CONFLICT (image_id) DO UPDATE SET catalog_id = excluded.catalog_id, text_model = excluded.text_model,
                embedding = excluded.embedding"""),
        [{"image_id": image_id, "c": catalog_id, "t": text_model, "embedding": vector_text(vector)}
         for image_id, vector in zip(image_ids, vectors, strict=True)],
    )


def description_matches(
    connection: Connection, catalog_id: uuid.UUID, text_model: str, vector: np.ndarray, minimum: float
) -> list[Match]:
    """The catalog's photos whose description vector has at least `minimum` cosine similarity
    to `vector`, with their description. An exact scan of the catalog's vectors: a threshold,
    not a top k, so every photo a caption matches counts."""
    rows = connection.execute(
        text("""SELECT i.id, i.path, i.description, 1 - (d.embedding <=> CAST(:q AS vector)) AS score
                FROM description_vectors d JOIN images i ON i.id = d.image_id
                WHERE d.catalog_id = :c AND d.text_model = :t AND i.status = 'ok'
                  AND 1 - (d.embedding <=> CAST(:q AS vector)) >= :minimum"""),
        {"c": catalog_id, "t": text_model, "q": vector_text(vector), "minimum": minimum},
    )
    return rows_as(Match, rows)


def vector_text(vector: np.ndarray) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"


def batches_to_caption(connection: Connection, catalog_id: uuid.UUID, model: str, version: str) -> list[str]:
    """The catalog's batches holding a photo without this model's caption, or whose
    description is not its caption yet (captioned for a copy elsewhere, or by another model)."""
    rows = connection.execute(
        text(f"""SELECT DISTINCT i.batch {BATCH_PHOTOS}
                 WHERE {PHOTOS} AND (c.description IS NULL OR i.description IS DISTINCT FROM c.description)
                 ORDER BY i.batch"""),
        {"c": catalog_id, "m": model, "v": version},
    )
    return list(rows.scalars())
