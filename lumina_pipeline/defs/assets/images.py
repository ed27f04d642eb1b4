"""`metadata`, `hashes` and `embeddings`: what one read of each new or changed file of a batch tells."""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import dagster as dg
import polars as pl
from pydantic import Field
from sqlalchemy import Connection

from lumina_pipeline.analysis.embedding import stack_inputs
from lumina_pipeline.analysis.files import absolute_paths
from lumina_pipeline.analysis.imaging import MAX_PIXELS
from lumina_pipeline.analysis.photos import ANALYSIS_VERSION, FILE_TIMEOUT_SECONDS, HASH_VERSION, analyze_files
from lumina_pipeline.defs.assets.inventory import file_inventory
from lumina_pipeline.defs.markdown import markdown_table
from lumina_pipeline.defs.partitions import by_catalog, catalog_batches
from lumina_pipeline.defs.resources import CatalogDatabase, Embedder, ThumbnailStore
from lumina_pipeline.models import ImageModel
from lumina_pipeline.storage.catalogs import BATCH_LOCK_SPACE, MARKS_LOCK_SPACE, get_catalog, held_lock, lock_catalog
from lumina_pipeline.storage.decisions import follow_moved_files, hand_over_deleted_files
from lumina_pipeline.storage.embeddings import embeddings_table, missing_vectors, vector_rows, write_embeddings
from lumina_pipeline.storage.images import pending_files, status_counts, write_analysis
from lumina_pipeline.storage.tags import replace_tags

from_inventory = [dg.AssetDep(file_inventory, partition_mapping=by_catalog)]
STATUSES = ("ok", "error", "skipped", "pending")  # pending: changed while being read, to be read again


class AnalysisConfig(dg.Config):
    """Bounds on reading one file, so that no file can take a batch's memory or time."""

    max_megapixels: float = Field(
        default=MAX_PIXELS / 1e6,
        description="Larger images are errors, refused before decoding (baseline JPEGs: reduced size)",
    )
    file_timeout_seconds: float = Field(
        default=FILE_TIMEOUT_SECONDS,
        description="A file not read and decoded within this time (a hung share) is an error; the batch goes on",
    )


def _spec(key: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key, deps=from_inventory, kinds={"python", "postgres"}, code_version=ANALYSIS_VERSION, description=description
    )


@dg.multi_asset(
    specs=[
        _spec("metadata",
              "SHA-256, EXIF (capture time, camera, lens, GPS, orientation), dimensions and quality score."),
        _spec("hashes", "dhash, ahash, whash and pHash (imagehash definitions) and a thumbnail of each photo."),
        _spec("embeddings", "An image vector per photo (pgvector, one table per model) and zero-shot tags."),
    ],
    partitions_def=catalog_batches,
    group_name="images",
    # A failure here is the machine's (the database restarted, a connection dropped): a file's
    # own problem is its row. Retrying is safe, the writes being one transaction checked
    # against the rows read, and cheap, as only what is still pending is read again.
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
)
def photo_analysis(
    context: dg.AssetExecutionContext,
    config: AnalysisConfig,
    database: CatalogDatabase,
    thumbnails: ThumbnailStore,
    embedder: Embedder,
):
    """Read each new or changed file of the batch once and decode it once, for all three assets.

    Results are written only for rows still as they were read: a file the inventory saw
    change meanwhile stays pending for the next run (counted as `stale_skipped`)."""
    started = time.perf_counter()
    keys = catalog_batches.get_partition_key_from_str(context.partition_key).keys_by_dimension
    vectors = embeddings_table(embedder.model.model_id, embedder.model.dimensions)
    with database.transaction() as session:
        catalog_id = get_catalog(session, keys["catalog"]).id
    # Two runs of one batch (a hand launch beside the sensor's, `lumina run` beside the daemon)
    # take turns: the second reads only what the first left.
    with held_lock(database.engine, BATCH_LOCK_SPACE, f"{catalog_id}/{keys['batch']}"):
        with database.transaction() as session:
            unembedded = missing_vectors(session.connection(), vectors, catalog_id, keys["batch"])
            pending = pending_files(session.connection(), catalog_id, keys["batch"], ANALYSIS_VERSION, unembedded)
        analysis = analyze_files(
            absolute_paths(pending["source_root"], pending["path"]),
            pending["kind"],
            pending.select("size_bytes", "mtime_ns").rows(),
            model_inputs=True,
            max_pixels=round(config.max_megapixels * 1e6),
            timeout_seconds=config.file_timeout_seconds,
        )
        thumbnail_paths = thumbnails.save_all(keys["catalog"], analysis["checksum"], analysis["thumbnail"])
        rows = analysis.drop("thumbnail", "model_input").with_columns(
            *pending.select("id", "size_bytes", "mtime_ns", "change_stamp"),
            thumbnail_path=pl.Series(thumbnail_paths, dtype=pl.String),
        )
        embedded = embed_photos(embedder, catalog_id, pending["id"], analysis["model_input"])
        unless_canceled(context)
        with database.transaction() as session:
            saved = save_batch(session.connection(), catalog_id, keys["batch"], pending, rows, embedded, embedder.model)
    yield from describe_batch(analysis, rows, pending, saved, embedder, time.perf_counter() - started)


def save_batch(connection: Connection, catalog_id: uuid.UUID, batch: str, pending: pl.DataFrame, rows: pl.DataFrame,
               embedded: "Embedded", model: ImageModel) -> "Saved":
    """Write what was read of the files still as they were read (caller's transaction), and
    hand what people said of each file on to the file that holds its content now."""
    lock_catalog(connection, catalog_id, MARKS_LOCK_SPACE)  # before the rows: follow_moved_files
    written = write_analysis(connection, rows, HASH_VERSION, ANALYSIS_VERSION)
    before = pending.filter(pl.col("id").is_in(written.implode()))
    follow_moved_files(connection, {id_: (checksum, phash) for id_, checksum, phash
                                    in before.select("id", "checksum", "phash").iter_rows()})
    hand_over_deleted_files(connection, catalog_id)  # the catalog's last batch to write does
    written_only = pl.col("image_id").is_in(written.implode())  # the rows the batch could write
    kept = Embedded(embedded.vectors.filter(written_only), embedded.tags.filter(written_only), embedded.seconds)
    write_embeddings(connection, embeddings_table(model.model_id, model.dimensions), kept.vectors)
    replace_tags(connection, catalog_id, model.tag_source, model.model_id, kept.tags)
    return Saved(len(written), kept, status_counts(connection, catalog_id, batch))


def describe_batch(analysis: pl.DataFrame, rows: pl.DataFrame, pending: pl.DataFrame, saved: "Saved",
                   embedder: Embedder, elapsed: float) -> Iterator[dg.MaterializeResult]:
    """The three assets' materializations: what was read, hashed and embedded."""
    common = {
        # the batch as it now stands, so that a run that had nothing to read still shows it
        **{f"batch_{status}": saved.in_batch.get(status, 0) for status in STATUSES},
        "batch_files": sum(saved.in_batch.values()),
        "files_read": len(analysis),
        **{status: int((analysis["status"] == status).sum()) for status in STATUSES},
        "stale_skipped": len(rows) - saved.written,
        "elapsed_seconds": round(elapsed, 3),
        "files_per_second": round(len(analysis) / elapsed, 1) if elapsed else 0.0,
    }
    preview = rows.head(10).with_columns(path=pending["path"].head(10))
    yield dg.MaterializeResult(
        asset_key="metadata",
        metadata={
            **common,
            "bytes_read": int(pending["size_bytes"].sum()),
            "preview": markdown_table(
                preview.select("path", "status", "camera_model", "captured_at", "quality_score", "error")),
        },
    )
    yield dg.MaterializeResult(
        asset_key="hashes",
        metadata={
            **common,
            "hashed": int(analysis["dhash"].is_not_null().sum()),
            "hash_version": HASH_VERSION,
            "preview": markdown_table(preview.select("path", "dhash", "ahash", "whash", "phash")),
        },
    )
    embedded = saved.embedded
    yield dg.MaterializeResult(
        asset_key="embeddings",
        metadata={
            "images_embedded": len(embedded.vectors),
            "not_embedded": len(analysis) - len(embedded.vectors),  # files that did not decode, stale rows
            "model_id": embedder.model.model_id,
            "dimensions": embedder.model.dimensions,
            "batch_size": embedder.batch_size,
            "zero_shot_tags": int(embedded.tags["name"].is_not_null().sum()),
            "tag_source": embedder.model.tag_source,
            "embedding_seconds": round(embedded.seconds, 3),
            "images_per_second": round(len(embedded.vectors) / embedded.seconds, 1) if embedded.seconds else 0.0,
        },
    )


@dataclass(frozen=True)
class Embedded:
    vectors: pl.DataFrame  # rows for write_embeddings
    tags: pl.DataFrame  # image_id, name, confidence; a null name for an image without tags
    seconds: float


class Saved(NamedTuple):
    written: int  # rows written: the others changed while they were read
    embedded: Embedded  # of the rows written
    in_batch: dict[str, int]  # the batch's files by status, as it now stands


def unless_canceled(context: dg.AssetExecutionContext) -> None:
    """Fail, with nothing written, a step whose run was canceled while it read: Terminate kills
    the run's process, but a step on a Celery worker goes on, and the regrouping that follows
    the cancel would not have what it wrote."""
    run = context.instance.get_run_by_id(context.run.run_id)  # as it is now, not as the step began
    if run is not None and run.status in (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED):
        raise dg.Failure(f"run {run.run_id} was canceled while this step read its files: nothing written",
                         allow_retries=False)


def embed_photos(embedder: Embedder, catalog_id: uuid.UUID, ids: pl.Series, model_inputs: pl.Series) -> Embedded:
    """Vectors and zero-shot tags of the files that decoded."""
    started = time.perf_counter()
    decoded = model_inputs.is_not_null()
    ids = ids.filter(decoded)
    vectors, labels = embedder.embed(stack_inputs(model_inputs.filter(decoded).to_list()))
    tags = [
        (image_id, name, confidence)
        for image_id, image_tags in zip(ids, embedder.model.tags(vectors, labels), strict=True)
        for name, confidence in image_tags or [(None, None)]
    ]
    return Embedded(
        vector_rows(ids, catalog_id, embedder.model.model_id, vectors, labels),
        pl.DataFrame(tags, schema={"image_id": pl.Int64, "name": pl.String, "confidence": pl.Float64}, orient="row"),
        time.perf_counter() - started,
    )
