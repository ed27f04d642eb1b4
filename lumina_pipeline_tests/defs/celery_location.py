"""Lumina's code location with the tests' image model (`ProjectionModel`), for test_celery.py:
the runs it executes point at this module, so the Celery workers load it too. Everything else
comes from the environment, as in a deployment (`LUMINA_*`, `DAGSTER_HOME`).

`python -m lumina_pipeline_tests.defs.celery_location JOB PARTITION` executes one run of JOB
for PARTITION in its own process, the way a run worker does; with `LUMINA_CELERY_BROKER` set
its steps go to the Celery workers. It loads the code location, says `ready` and starts the run
once a line comes in, so that runs started together hand out their steps together."""

import sys
from pathlib import Path

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster_shared.record import copy

import lumina_pipeline.definitions
from lumina_pipeline_tests.defs.conftest import ProjectionEmbedder

PROJECT = Path(__file__).resolve().parents[2]
MODULE = "lumina_pipeline_tests.defs.celery_location"  # its name also where it runs as __main__


@dg.definitions
def defs() -> dg.Definitions:
    location = lumina_pipeline.definitions.defs()
    embedder = ProjectionEmbedder(cache_dir=dg.EnvVar("LUMINA_MODEL_CACHE"))
    return copy(location, resources={**(location.resources or {}), "embedder": embedder})


def run(job: str, partition_key: str, instance: dg.DagsterInstance) -> dg.JobExecutionResult:
    """Execute one run of `job` for `partition_key` in this process."""
    tags = defs().resolve_job_def(job).get_tags_for_partition_key(partition_key, None)
    pointer = ReconstructableRepository.for_module(MODULE, "defs", str(PROJECT)).get_reconstructable_job(job)
    return dg.execute_job(pointer, instance, tags=tags, raise_on_error=True)


if __name__ == "__main__":
    job, partition_key = sys.argv[1:]
    defs().resolve_job_def(job)
    print("ready", flush=True)
    sys.stdin.readline()
    with dg.DagsterInstance.get() as instance:  # at DAGSTER_HOME
        run(job, partition_key, instance)
