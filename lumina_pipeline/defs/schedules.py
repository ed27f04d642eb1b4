"""Schedules: each night, read what is missing, stale or was unreadable, caption what has no caption yet,
then verify a share of checksums."""

import uuid
from collections.abc import Callable
from functools import partial

import dagster as dg
from sqlalchemy import Connection

from lumina_pipeline.analysis.captions import PROMPT_VERSION
from lumina_pipeline.analysis.photos import ANALYSIS_VERSION
from lumina_pipeline.defs.jobs import batch_job, batch_run, captions_job, verification_job
from lumina_pipeline.defs.resources import CatalogDatabase, OllamaVision
from lumina_pipeline.storage.captions import batches_to_caption
from lumina_pipeline.storage.images import pending_batches
from lumina_pipeline.storage.organize import local_time_zone

RUNNING = dg.DefaultScheduleStatus.RUNNING
# The night of the machine the daemon runs on: at Dagster's default, UTC, "02:00" is the
# evening of a family in America, while they use the computer.
LOCAL_TIME = local_time_zone()


@dg.schedule(job=batch_job, cron_schedule="0 2 * * *", default_status=RUNNING,
             execution_timezone=LOCAL_TIME,
             description="Reads every batch holding a file unread, unreadable or read by another analysis version")
def nightly_backfill_schedule(context: dg.ScheduleEvaluationContext, database: CatalogDatabase):
    """Every real (catalog, batch) holding a file that is unread, could not be read (it may be
    readable now) or was read by another analysis version; never the empty cells of the
    catalog x batch cross product."""
    night = context.scheduled_execution_time.strftime("%Y-%m-%d")
    to_read = partial(pending_batches, version=ANALYSIS_VERSION, unreadable=True)
    requests = _batch_runs(database, to_read, f"nightly:{night}", batch_job.name, one_change=True)
    return requests or dg.SkipReason("every batch is read and current")


@dg.schedule(job=captions_job, cron_schedule="0 3 * * *", default_status=RUNNING,
             execution_timezone=LOCAL_TIME,
             description="Captions every batch holding a photo without a caption, with an Ollama server configured")
def nightly_captions_schedule(context: dg.ScheduleEvaluationContext, database: CatalogDatabase, vision: OllamaVision):
    """Every (catalog, batch) holding a photo without a caption from the configured model:
    photos whose captions run failed (Ollama down, the model not pulled yet) or that a photo
    failed in, and every photo once the model is switched or Ollama configured."""
    if not vision.configured:
        return dg.SkipReason("no Ollama server configured (LUMINA_OLLAMA_URL)")
    night = context.scheduled_execution_time.strftime("%Y-%m-%d")
    to_caption = partial(batches_to_caption, model=vision.model, version=PROMPT_VERSION)
    requests = _batch_runs(database, to_caption, f"captions:{night}", captions_job.name)
    return requests or dg.SkipReason(f"every photo has its caption from {vision.model}")


@dg.schedule(job=verification_job, cron_schedule="0 4 * * *", default_status=RUNNING,
             execution_timezone=LOCAL_TIME,
             description="Re-reads a thirtieth of each catalog against its checksums (bit rot)")
def nightly_verification_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"verify:{context.scheduled_execution_time:%Y-%m-%d}")


def _batch_runs(
    database: CatalogDatabase, batches: Callable[[Connection, uuid.UUID], list[str]], key: str, job_name: str, *,
    one_change=False,
) -> list[dg.RunRequest]:
    """A run of `job_name` for each batch that `batches` names in each catalog, keyed `key:<catalog>:<batch>`.
    With `one_change`, a catalog's runs are one change (`key:<catalog>`), regrouped once they end."""
    todo = database.by_catalog(batches)
    return [batch_run(job_name, name, batch, f"{key}:{name}:{batch}", f"{key}:{name}" if one_change else None)
            for name, found in todo.items() for batch in found]
