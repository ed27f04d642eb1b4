"""`quarantine_job`: move a catalog's reviewed-away files to quarantine from the Dagster UI.
A dry run unless its config says `dry_run: false`; `lumina undo` puts the files back."""

import os

import dagster as dg
from pydantic import Field

from lumina_pipeline.actions.runs import Report, file_actions
from lumina_pipeline.defs.partitions import catalogs
from lumina_pipeline.defs.resources import CatalogDatabase


class QuarantineFolder(dg.ConfigurableResource):
    """Where quarantined files go: `<root>/<catalog>/<run>/` (actions/runs.py)."""

    root: str


class QuarantineConfig(dg.Config):
    dry_run: bool = Field(True, description="list what would move and why some would not, move nothing")


@dg.op
def quarantine_removable(
    context: dg.OpExecutionContext, config: QuarantineConfig, database: CatalogDatabase, quarantine: QuarantineFolder
) -> dg.Output[None]:
    """Move the removable files of the run's catalog (its partition) to quarantine, after
    finishing any quarantine, undo or purge of it a kill interrupted."""
    with file_actions(database.engine, context.partition_key, os.fsencode(quarantine.root)) as actions:
        report = actions.quarantine_removable(dry_run=config.dry_run)
    return dg.Output(None, metadata=report_metadata(context, report, config.dry_run))


def report_metadata(context: dg.OpExecutionContext, report: Report, dry_run: bool) -> dict:
    """What a file-action op shows of its run (or dry run); each file left as it was is logged too."""
    for path, reason in report.skipped:
        context.log.warning(f"left {path}: {reason}")
    return {
        "dry_run": dry_run,
        "run_id": report.run_id or "",
        "files": report.done,
        "file_paths": dg.MetadataValue.json(report.files[:100]),  # the first 100
        "bytes": report.size_bytes,
        "skipped": len(report.skipped),
        "skipped_files": dg.MetadataValue.json([{"path": p, "reason": r} for p, r in report.skipped[:100]]),
        "resumed_operations": report.resumed,
    }


@dg.job(partitions_def=catalogs)
def quarantine_job() -> None:
    """Moves a catalog's reviewed-away files to quarantine; a dry run unless dry_run is false."""
    quarantine_removable()


@dg.definitions
def quarantine_definitions() -> dg.Definitions:
    # a module with a definitions function contributes only what the function returns
    return dg.Definitions(
        jobs=[quarantine_job],
        resources={"quarantine": QuarantineFolder(root=dg.EnvVar("LUMINA_QUARANTINE_DIR"))},
    )
