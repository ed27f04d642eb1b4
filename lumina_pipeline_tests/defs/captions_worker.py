"""`python -m lumina_pipeline_tests.defs.captions_worker DAGSTER_HOME DATABASE_URL THUMBNAILS
MODELS OLLAMA_URL MODEL CATALOG`: materialize `captions` of a catalog's batch 00000 the way a run
worker does, in its own process, on the Dagster instance at DAGSTER_HOME (shared with other
workers, so that its pools bound them all)."""

import sys

import dagster as dg

from lumina_pipeline.defs.assets.captions import captions
from lumina_pipeline.defs.resources import CatalogDatabase, OllamaVision, SentenceModel, ThumbnailStore


def main(
    dagster_home: str, database_url: str, thumbnails: str, models: str, ollama_url: str, model: str, catalog: str
) -> None:
    instance = dg.DagsterInstance.from_config(dagster_home)
    instance.add_dynamic_partitions("catalogs", [catalog])
    instance.add_dynamic_partitions("batches", ["00000"])
    resources = {
        "database": CatalogDatabase(url=database_url),
        "thumbnails": ThumbnailStore(root=thumbnails),
        "vision": OllamaVision(url=ollama_url, model=model),
        "sentences": SentenceModel(cache_dir=models),
    }
    key = dg.MultiPartitionKey({"catalog": catalog, "batch": "00000"})
    assert dg.materialize([captions], partition_key=key, instance=instance, resources=resources).success


if __name__ == "__main__":
    main(*sys.argv[1:])
