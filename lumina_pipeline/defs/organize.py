"""`organize_job`: copy (or move) a catalog's kept files into its dated tree from the Dagster UI.
A dry run unless its config says `dry_run: false`; `lumina undo` takes a run back."""

import os

import dagster as dg
from pydantic import Field

from lumina_pipeline.actions.organize import organize
from lumina_pipeline.actions.runs import file_actions
from lumina_pipeline.analysis.organize import DEFAULT_TEMPLATE, figures
from lumina_pipeline.defs.actions import QuarantineFolder, report_metadata
from lumina_pipeline.defs.partitions import catalogs
from lumina_pipeline.defs.resources import CatalogDatabase
from lumina_pipeline.storage.catalogs import CatalogError, get_catalog
from lumina_pipeline.storage.organize import set_organizing


class OrganizeConfig(dg.Config):
    dry_run: bool = Field(True, description="say what would be copied or moved, touch nothing")
    move: bool | None = Field(None, description="true: move the files, false: copy them; "
                                                "unset: as the catalog does (lumina catalog organize [--move])")
    into: str | None = Field(None, description="the tree to organize into (an absolute folder outside the catalog's), "
                                               "kept as the catalog's, as `lumina catalog organize NAME --into DIR` "
                                               "keeps it, dry run or not; unset: the catalog's")
    template: str | None = Field(None, description=f"the tree's folders, kept as the catalog's; unset: the catalog's, "
                                                   f"else {DEFAULT_TEMPLATE}")


@dg.op
def organize_catalog(
    context: dg.OpExecutionContext, config: OrganizeConfig, database: CatalogDatabase, quarantine: QuarantineFolder
) -> dg.Output[None]:
    """Organize the run's catalog (its partition), after finishing any file action of it a kill
    interrupted."""
    try:
        _keep_the_tree(database, context.partition_key, config)
        with file_actions(database.engine, context.partition_key, os.fsencode(quarantine.root)) as actions:
            organized = organize(actions, dry_run=config.dry_run, move=config.move)
            into = actions.catalog.organized_directory or ""
    except CatalogError as error:  # a setting to fix: its message says which, without a traceback
        raise dg.Failure(str(error)) from None
    # the plan's figures, with files and bytes as done (or, in a dry run, to do)
    return dg.Output(None, metadata={**figures(organized.planned), "operation": "move" if organized.moving else "copy",
                                     "into": dg.MetadataValue.path(into),
                                     **report_metadata(context, organized.report, config.dry_run)})


def _keep_the_tree(database: CatalogDatabase, name: str, config: OrganizeConfig) -> None:
    """The config's tree and template as the catalog's, as `lumina catalog organize` sets them."""
    if not (config.into or config.template):
        return
    with database.transaction() as session:
        catalog = get_catalog(session, name)
        into = config.into or catalog.organized_directory
        if not into or not os.path.isabs(into):
            raise CatalogError(f"`into` must be an absolute folder, not {into!r}")
        template = config.template or catalog.organize_template or DEFAULT_TEMPLATE
        set_organizing(session, name, os.path.normpath(into), template, catalog.organize_move)


@dg.job(partitions_def=catalogs)
def organize_job() -> None:
    """Copies (or moves) a catalog's kept files into its dated tree; a dry run unless dry_run is false."""
    organize_catalog()


@dg.definitions
def organize_definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[organize_job])  # its `quarantine` resource comes with quarantine_job's
