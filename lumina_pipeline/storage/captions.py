"""Captions by content: what a vision model said about each checksum (`captions`), and how
that reaches a batch's images: their description and their `ollama` tags."""

import uuid

import polars as pl
from sqlalchemy import Connection, text

from lumina_pipeline.storage.tags import replace_tags

SOURCE = "ollama"  # image_tags.source of a caption's tags

BATCH_PHOTOS = """
    FROM images i LEFT JOIN captions c ON c.checksum = i.checksum AND c.model = :m AND c.prompt_version = :v
    WHERE i.catalog_id = :c AND i.batch = :b AND i.status = 'ok' AND i.thumbnail_path IS NOT NULL"""


def contents_to_caption(connection: Connection, catalog_id: uuid.UUID, batch: str, model: str, version: str) -> pl.DataFrame:
    """One row per distinct content among the batch's photos (`checksum`, `thumbnail_path`)
    that has no caption by this model and prompt version yet: a copy, here or in any catalog,
    or an earlier run already asked for the others. Contents whose last attempt failed are
    asked again."""
    rows = connection.execute(
        text(f"SELECT DISTINCT ON (i.checksum) i.checksum, i.thumbnail_path {BATCH_PHOTOS} AND c.description IS NULL"),
        {"c": catalog_id, "b": batch, "m": model, "v": version},
    )
    return pl.DataFrame(rows.all(), schema={"checksum": pl.String, "thumbnail_path": pl.String}, orient="row")


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


def apply_captions(connection: Connection, catalog_id: uuid.UUID, batch: str, model: str, version: str) -> pl.DataFrame:
    """Give the batch's photos the description and `ollama` tags of their content's caption by
    this model and prompt version (replacing those of an earlier model); returns the captioned
    images (`image_id`, `description`, `tags`). Photos without such a caption keep what they had."""
    rows = connection.execute(
        text(f"SELECT i.id, c.description, c.tags {BATCH_PHOTOS} AND c.description IS NOT NULL ORDER BY i.id"),
        {"c": catalog_id, "b": batch, "m": model, "v": version},
    )
    captioned = pl.DataFrame(
        rows.all(), schema={"image_id": pl.Int64, "description": pl.String, "tags": pl.List(pl.String)}, orient="row"
    )
    if captioned.is_empty():
        return captioned
    connection.execute(
        text("UPDATE images SET description = :description WHERE id = :image_id"),
        captioned.select("image_id", "description").to_dicts(),
    )
    # a null name for a caption without tags, so that an earlier model's tags still go
    tags = pl.DataFrame(
        [(image_id, name, None) for image_id, names in captioned.select("image_id", "tags").iter_rows() for name in names or [None]],
        schema={"image_id": pl.Int64, "name": pl.String, "confidence": pl.Float64},
        orient="row",
    )
    replace_tags(connection, catalog_id, SOURCE, model, tags)
    return captioned
