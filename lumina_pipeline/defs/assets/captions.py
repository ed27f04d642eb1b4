"""`captions`: a sentence and a few tags per photo from a vision model on an Ollama server."""

import time

import dagster as dg
import polars as pl

from lumina_pipeline.analysis.captions import PROMPT_VERSION, caption_text
from lumina_pipeline.defs.markdown import markdown_table
from lumina_pipeline.defs.partitions import catalog_batches
from lumina_pipeline.defs.resources import CatalogDatabase, OllamaVision, SentenceModel, ThumbnailStore
from lumina_pipeline.storage.captions import (
    apply_captions,
    contents_to_caption,
    save_captions,
    write_description_vectors,
)
from lumina_pipeline.storage.catalogs import get_catalog

# Every `captions` step holds a slot of this pool while it asks: its limit (dagster.yaml,
# LUMINA_OLLAMA_REQUESTS) is how many requests reach the Ollama server at once.
OLLAMA_POOL = "ollama"
# a run's resource config replaces the whole resource: one that gives `model` alone has no url
NOT_CONFIGURED = ("no Ollama server configured (set LUMINA_OLLAMA_URL, or give the vision resource's url in the "
                  "run's config with its model): nothing asked, nothing changed")


@dg.asset(
    partitions_def=catalog_batches,
    # the thumbnails it sends (`hashes`) and the image model's tags its own combine with (`embeddings`)
    deps=[dg.AssetKey("hashes"), dg.AssetKey("embeddings")],
    pool=OLLAMA_POOL,
    group_name="images",
    kinds={"ollama", "postgres"},
    code_version=PROMPT_VERSION,
)
def captions(
    context: dg.AssetExecutionContext,
    database: CatalogDatabase,
    thumbnails: ThumbnailStore,
    vision: OllamaVision,
    sentences: SentenceModel,
) -> dg.MaterializeResult:
    """A one-sentence description and up to 10 tags for each photo of the batch, asked of a
    vision model on Ollama with the photo's thumbnail (never the file itself), and a sentence
    vector of both for search. Captions are kept by content, model and prompt version: copies
    and re-runs ask nothing, another model asks again. A photo the model could not caption is
    recorded with the reason and asked again by the next run; it never fails the batch."""
    if not vision.configured:
        return dg.MaterializeResult(metadata={"skipped": True, "reason": NOT_CONFIGURED})
    if (reason := vision.unavailable()) is not None:
        raise dg.Failure(description=reason)
    keys = catalog_batches.get_partition_key_from_str(context.partition_key).keys_by_dimension
    with database.transaction() as session:
        catalog_id = get_catalog(session, keys["catalog"]).id
        todo = contents_to_caption(session.connection(), catalog_id, keys["batch"], vision.model, PROMPT_VERSION)
    started = time.perf_counter()
    answers = ask_for_captions(vision, thumbnails, todo)
    asking = time.perf_counter() - started
    with database.transaction() as session:
        connection = session.connection()
        save_captions(connection, vision.model, PROMPT_VERSION, answers)
        count, changed = apply_captions(
            connection, catalog_id, keys["batch"], vision.model, PROMPT_VERSION, sentences.model_id
        )
        described = changed.select("description", "tags").iter_rows()
        texts = [caption_text(description, tags) for description, tags in described]
        vectors = sentences.embed(texts)
        write_description_vectors(connection, catalog_id, sentences.model_id, changed["image_id"].to_list(), vectors)
    failed = answers.filter(pl.col("error").is_not_null())
    return dg.MaterializeResult(
        metadata={
            "model": vision.model,
            "prompt_version": PROMPT_VERSION,
            "photos_captioned": count,
            "descriptions_embedded": len(changed),
            "contents_asked": len(answers),
            "requests": int(answers["attempts"].sum()),
            "errors": len(failed),
            "seconds_asking": round(asking, 3),
            "seconds_per_photo": round(asking / len(answers), 3) if len(answers) else 0.0,
            "preview": markdown_table(changed.select("path", "description", pl.col("tags").list.join(", "))),
            # a content the model could not caption, named by one of its photos
            "errors_preview": markdown_table(failed.join(todo, on="checksum").select("path", "error", "attempts")),
        }
    )


def ask_for_captions(vision: OllamaVision, thumbnails: ThumbnailStore, todo: pl.DataFrame) -> pl.DataFrame:
    """One answer per content: description and tags, or the reason there are none."""
    rows = []
    for checksum, thumbnail in todo.select("checksum", "thumbnail_path").iter_rows():
        jpeg = thumbnails.read(thumbnail)
        if jpeg is None:
            rows.append((checksum, None, None, "the thumbnail is missing: re-run the photo's batch", 0))
            continue
        answer = vision.caption(jpeg)
        caption = answer.caption
        description, tags = (caption.description, list(caption.tags)) if caption else (None, None)
        rows.append((checksum, description, tags, answer.error, answer.attempts))
    schema = {"checksum": pl.String, "description": pl.String, "tags": pl.List(pl.String), "error": pl.String,
              "attempts": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")
