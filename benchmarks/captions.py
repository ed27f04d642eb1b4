"""The captions target: what the `captions` asset adds per photo to the vision model's own
time, measured against the stand-in Ollama server (lumina_pipeline_tests/ollama_server.py),
which answers each request after a fixed delay and sums the time it spent answering.

The asset's time covers everything a run does for a batch: the Dagster run itself, reading
the thumbnails, the requests through the real `ollama` client, storing the answers, the
descriptions and tags, and their sentence vectors for search."""

import io
import time
from pathlib import Path

import dagster as dg
from sqlalchemy.orm import Session

from benchmarks import scratch_database
from lumina_pipeline.defs.assets.captions import captions
from lumina_pipeline.defs.resources import CatalogDatabase, OllamaVision, SentenceModel, ThumbnailStore
from lumina_pipeline.sample import draw_scene
from lumina_pipeline.storage.catalogs import add_catalog
from lumina_pipeline.storage.database import make_engine
from lumina_pipeline.storage.models import Image
from lumina_pipeline.storage.thumbnails import save_thumbnails
from lumina_pipeline_tests.ollama_server import StandInOllama

PHOTOS = 100
MODEL_SECONDS = 0.25  # per photo: a small vision model on a GPU; on a CPU it takes seconds


def photos_with_thumbnails(root: Path, database_url: str) -> None:
    """A catalog of PHOTOS analyzed photos, each with its own thumbnail on disk."""
    thumbnails = root / "thumbnails"
    with Session(make_engine(database_url)) as session, session.begin():
        catalog = add_catalog(session, "captions-bench", [str(root)])
        for index in range(PHOTOS):
            buffer = io.BytesIO()
            draw_scene(index, size=(384, 256)).save(buffer, "JPEG", quality=85)
            checksum = f"{index:064x}"
            [relative] = save_thumbnails(thumbnails, "captions-bench", [checksum], [buffer.getvalue()])
            session.add(Image(catalog_id=catalog.id, source_root=str(root), path=f"{index}.jpg".encode(), kind="image",
                              size_bytes=1, mtime_ns=0, batch="00000", status="ok", checksum=checksum,
                              thumbnail_path=relative))


def run() -> None:
    with scratch_database() as (root, url):
        photos_with_thumbnails(root, url)
        sentences = SentenceModel(cache_dir=str(root / "models"))
        sentences.embed(["export the text model once, before the clock starts"])
        with dg.instance_for_test() as instance, StandInOllama(delay_seconds=MODEL_SECONDS) as server:
            instance.add_dynamic_partitions("catalogs", ["captions-bench"])
            instance.add_dynamic_partitions("batches", ["00000"])
            resources = {
                "database": CatalogDatabase(url=url),
                "thumbnails": ThumbnailStore(root=str(root / "thumbnails")),
                "vision": OllamaVision(url=server.url),
                "sentences": sentences,
            }
            key = dg.MultiPartitionKey({"catalog": "captions-bench", "batch": "00000"})

            def materialize() -> tuple[float, dict]:
                started = time.perf_counter()
                result = dg.materialize([captions], partition_key=key, instance=instance, resources=resources)
                [materialization] = result.asset_materializations_for_node("captions")
                return time.perf_counter() - started, {k: v.value for k, v in materialization.metadata.items()}

            whole, figures = materialize()
            model = server.seconds_answering
            again, _ = materialize()
    asking = figures["seconds_asking"]
    print(f"\n== captions, {PHOTOS} photos, stand-in Ollama answering each after {MODEL_SECONDS * 1000:.0f} ms ==")
    print(f"  the server's own time answering: {model / PHOTOS * 1000:.1f} ms per photo")
    print(f"  requests as the asset makes them (thumbnail read, ollama client, parsing): "
          f"{asking / PHOTOS * 1000:.1f} ms per photo, {(asking - model) / model:.1%} over the server")
    print(f"  the whole captions run (Dagster run, requests, answers and tags stored, descriptions embedded): "
          f"{whole / PHOTOS * 1000:.1f} ms per photo")
    print(f"  pipeline overhead = {(whole - model) / model:.1%} of the server's time (target < 10%)")
    print(
        f"  of which a run's fixed cost, a re-run that has nothing to ask: {again:.2f} s; the rest, per photo: "
        f"{(whole - again - model) / PHOTOS * 1000:.1f} ms, {(whole - again - model) / model:.1%} of the server's time"
    )
