"""`organize_job`: copy (or move) a catalog's kept files into its dated tree from the Dagster UI.
A dry run unless its config says `dry_run: false`; `lumina undo` takes a run back."""

import os

import dagster as dg
from pydantic import Field

from lumina_pipeline.actions.organize import organize
from lumina_pipeline.actions.runs import file_actions
from lumina_pipeline.analysis.organize import figures
from lumina_pipeline.defs.actions import QuarantineFolder, report_metadata
from lumina_pipeline.defs.partitions import catalogs
from lumina_pipeline.defs.resources import CatalogDatabase


class OrganizeConfig(dg.Config):
    dry_run: bool = Field(True, description="say what would be copied or moved, touch nothing")
    move: bool | None = Field(None, description="true: move the files, false: copy them; "
                                                "unset: as the catalog does (lumina catalog organize [--move])")


@dg.op
def organize_catalog(
    context: dg.OpExecutionContext, config: OrganizeConfig, database: CatalogDatabase, quarantine: QuarantineFolder
) -> dg.Output[None]:
    """Organize the run's catalog (its partition), after finishing any file action of it a kill
    interrupted."""
    with file_actions(database.engine, context.partition_key, os.fsencode(quarantine.root)) as actions:
        organized = organize(actions, dry_run=config.dry_run, move=config.move)
        into = actions.catalog.organized_directory or ""
    # the plan's figures, with files and bytes as done (or, in a dry run, to do)
    return dg.Output(None, metadata={**figures(organized.planned), "operation": "move" if organized.moving else "copy",
                                     "into": dg.MetadataValue.path(into),
                                     **report_metadata(context, organized.report, config.dry_run)})


@dg.job(partitions_def=catalogs)
def organize_job() -> None:
    """Copies (or moves) a catalog's kept files into its dated tree; a dry run unless dry_run is false."""
    organize_catalog()


@dg.definitions
def organize_definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[organize_job])  # its `quarantine` resource comes with quarantine_job's
