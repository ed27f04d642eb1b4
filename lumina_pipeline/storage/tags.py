"""Tags the pipeline sets, by source: `model` (ImageNet labels), `openclip` (CLIP against a
tag vocabulary) and `ollama` (a vision model's caption). Where two sources give an image the
same tag it is one `combined` tag holding both confidences; a tag a person set (`manual`) is
never touched."""

import uuid

import polars as pl
from sqlalchemy import Connection, text

from lumina_pipeline.storage.frames import stage

MANUAL, COMBINED = "manual", "combined"


def replace_tags(connection: Connection, catalog_id: uuid.UUID, source: str, model_id: str, tags: pl.DataFrame) -> None:
    """Replace what `source` said about some images with `tags` (`image_id`, `name`,
    `confidence`; a null name for an image that now has none from this source).

    `image_tags.source_confidences` maps "<source>:<model id>" to a confidence; each source
    takes out only its own entries, so the other source's part of a combined tag stays.
    A row's `source` and `confidence` follow from its entries: one source names it, two make
    it `combined`, and its confidence is the highest one given (Ollama gives none)."""
    staged = f"new_{source}_tags"  # one per source: a transaction may replace several
    stage(connection, staged, tags)
    params = {"c": catalog_id, "source": source, "entry": f"{source}:{model_id}", "manual": MANUAL}
    affected = f"(SELECT DISTINCT image_id FROM {staged}) n"
    connection.execute(text(f"""
        UPDATE image_tags t SET source_confidences = (
            SELECT coalesce(jsonb_object_agg(key, value), '{{}}') FROM jsonb_each(t.source_confidences)
            WHERE split_part(key, ':', 1) <> :source)
        FROM {affected} WHERE t.image_id = n.image_id AND t.source <> :manual"""), params)
    connection.execute(text(f"""
        INSERT INTO tags (catalog_id, name, category)
        SELECT DISTINCT CAST(:c AS uuid), name, :source FROM {staged} WHERE name IS NOT NULL
        ON CONFLICT (catalog_id, name) DO NOTHING"""), params)
    connection.execute(text(f"""
        INSERT INTO image_tags (image_id, tag_id, confidence, source, source_confidences)
        SELECT DISTINCT ON (m.image_id, t.id) m.image_id, t.id, m.confidence, :source,
               jsonb_build_object(CAST(:entry AS text), m.confidence)
        FROM {staged} m JOIN tags t ON t.catalog_id = CAST(:c AS uuid) AND t.name = m.name
        ON CONFLICT (image_id, tag_id) DO UPDATE
            SET source_confidences = coalesce(image_tags.source_confidences, '{{}}') || excluded.source_confidences
            WHERE image_tags.source <> :manual"""), params)
    connection.execute(text(f"""
        DELETE FROM image_tags t USING {affected}
        WHERE t.image_id = n.image_id AND t.source <> :manual AND t.source_confidences = '{{}}'::jsonb"""), params)
    connection.execute(text(f"""
        UPDATE image_tags t SET source = s.source, confidence = s.confidence
        FROM (SELECT t.image_id, t.tag_id,
                     CASE WHEN count(DISTINCT split_part(e.key, ':', 1)) > 1 THEN '{COMBINED}'
                          ELSE min(split_part(e.key, ':', 1)) END AS source,
                     max(CAST(nullif(e.value, 'null') AS text)::float) AS confidence
              FROM image_tags t JOIN {affected} ON t.image_id = n.image_id, jsonb_each(t.source_confidences) e
              WHERE t.source <> :manual GROUP BY t.image_id, t.tag_id) s
        WHERE t.image_id = s.image_id AND t.tag_id = s.tag_id"""), params)
