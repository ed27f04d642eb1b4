"""Organize a catalog into its dated tree (`organized_directory`): the plan of analysis/organize.py
over what the catalog keeps and what the tree already holds, carried out by the file-action
engine (actions/runs.py) under its journal, so that a killed run is finished by the next and
`lumina undo` takes a run back. The plan is made anew each time, from the catalog as it is."""

import os
import stat
from dataclasses import dataclass, replace
from typing import cast

import polars as pl
from sqlalchemy import Connection

from lumina_pipeline.actions.files import sha256
from lumina_pipeline.actions.runs import (
    ORGANIZE,
    Actions,
    Report,
    changed,
    checksum_unread,
    new_run_id,
    stacks_stay_whole,
    unscanned_sidecars,
)
from lumina_pipeline.analysis.files import mtime_ns, shown
from lumina_pipeline.analysis.organize import (
    DEFAULT_TEMPLATE,
    EXISTING_SCHEMA,
    OrganizePlan,
    plan_organize,
    target_folders,
)
from lumina_pipeline.analysis.plans import NO_CHECKSUM, PLAN_SCHEMA
from lumina_pipeline.storage import journal
from lumina_pipeline.storage.catalogs import TREE_LOCK_SPACE, CatalogError, add_source_directory, held_lock
from lumina_pipeline.storage.models import Catalog
from lumina_pipeline.storage.organize import organize_files


@dataclass
class Organized:
    planned: OrganizePlan
    report: Report  # for a dry run, what the plan would do
    moving: bool  # moves rather than copies


def plan_catalog(connection: Connection, catalog: Catalog, *, move: bool, checksums: bool = False) -> OrganizePlan:
    """The catalog's organize plan as things are now. With `checksums`, the sidecars' are taken
    (reading them), so that their copies are verified like any other's."""
    if not catalog.organized_directory:
        raise CatalogError(f"no organized folder for {catalog.name}: lumina catalog organize {catalog.name} "
                           "--into DIR (from the Dagster UI: organize_job's `into`)")
    files = organize_files(connection, catalog.id)
    files = checksum_unread(files) if checksums else files
    template = catalog.organize_template or DEFAULT_TEMPLATE
    into = os.fsencode(catalog.organized_directory)
    existing = list_folders(into, target_folders(files, template, into))
    planned = plan_organize(files, existing, template, into, move=move)
    others = _other_bytes(connection, catalog.id, planned.in_place)
    if not others:
        return planned
    names = {os.path.relpath(target, into) for target in others}  # each a name taken, not the file's place
    places = existing.select("folder", "name").rows()
    taken = pl.Series([os.path.join(folder.encode(), name) in names for folder, name in places])
    existing = existing.with_columns(size_bytes=pl.when(taken).then(-1).otherwise("size_bytes"))
    return plan_organize(files, existing, template, into, move=move)


def _other_bytes(connection: Connection, catalog_id, in_place: pl.DataFrame) -> list[bytes]:
    """The places of `in_place` that hold other bytes than the file planned there, though of
    its name, size and mtime (a second camera's DSC_0001.NEF). The file itself (moved there
    before) and what a run of the journal put there are not read; anything else is."""
    placed = journal.placed(connection, catalog_id, in_place["target"].to_list())
    return [target for source, target, checksum in in_place.rows()
            if checksum is not None and source != target and placed.get(target) != checksum
            and _sha256_or_none(target) != checksum]


def _sha256_or_none(path: bytes) -> str | None:
    try:
        return sha256(path)
    except OSError:
        return None


def organize(actions: Actions, *, dry_run: bool, move: bool | None = None) -> Organized:
    """Copy or move (`move`; None: as the catalog does by default) each kept file of the catalog
    to its place in the tree, after finishing what a killed run left; a dry run only plans.
    Refused while another catalog's run writes into the same tree."""
    tree = actions.catalog.organized_directory
    if dry_run or not tree:
        return _organize(actions, dry_run=dry_run, move=move)

    def refuse() -> None:
        raise CatalogError(f"another organize run is writing into {tree}")

    with held_lock(actions.connection.engine, TREE_LOCK_SPACE, os.path.realpath(tree), waiting=refuse):
        return _organize(actions, dry_run=dry_run, move=move)


def _organize(actions: Actions, *, dry_run: bool, move: bool | None) -> Organized:
    catalog = actions.catalog
    resumed = len(actions.unfinished()) if dry_run else actions.resume().done
    moving = catalog.organize_move if move is None else move
    planned = plan_catalog(actions.connection, catalog, move=moving, checksums=not dry_run)
    plan, skipped = _as_cataloged(actions, planned.plan, checked=not dry_run)
    planned = replace(planned, plan=plan)  # its figures are those of the files it takes
    if dry_run:  # the files it holds are the ones kept
        return Organized(planned, actions.preview(plan, Report(None, resumed, skipped=skipped), keepers_stay=False),
                         moving)
    if moving and len(plan):  # the catalog follows its files: rows into the tree, the inventory along
        tree = cast(str, catalog.organized_directory)  # plan_catalog made sure there is one
        add_source_directory(actions.connection, catalog.id, tree)  # committed with the plan
    run_id = new_run_id()
    report = Report(run_id, resumed, skipped=skipped)
    return Organized(planned, actions.apply(ORGANIZE, run_id, plan.select(*PLAN_SCHEMA), report), moving)


def _as_cataloged(actions: Actions, plan: pl.DataFrame, *, checked: bool) -> tuple[pl.DataFrame, list[tuple[str, str]]]:
    """The plan's files still as cataloged by size and mtime (and, when `checked`, a shot's of
    several files by content), with no sidecar new since the last scan and, when `checked`, with
    a checksum to check their copies with (a sidecar's is taken as the run starts, where it did
    not change); the others, with the files of their shots, are left where they are, with why."""
    sources = [shown(source) for source in plan["source"]]
    several = plan.select(pl.len().over("unit") > 1).to_series()
    new_sidecars = unscanned_sidecars(actions.connection, actions.catalog_id, plan["source"].to_list())
    rows = zip(*plan.select("source", "size_bytes", "mtime_ns", "checksum").get_columns(), several, new_sidecars,
               strict=True)
    problems = [changed(source, size, mtime, checksum if checked and shot else None) or new_sidecar
                or (NO_CHECKSUM if checked and checksum is None else None)
                for source, size, mtime, checksum, shot, new_sidecar in rows]
    return stacks_stay_whole(plan, sources, plan["unit"], problems)


def list_folders(into: bytes, folders: list[str]) -> pl.DataFrame:
    """What `folders` of the tree hold (EXISTING_SCHEMA); a folder not made yet holds nothing.
    Anything but a regular file counts with size -1: it holds its name, never a file's place."""
    rows = []
    for folder in folders:
        try:
            entries = list(os.scandir(os.path.join(into, folder.encode())))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            rows.append((folder, entry.name, info.st_size if stat.S_ISREG(info.st_mode) else -1, mtime_ns(info)))
    return pl.DataFrame(rows, schema=EXISTING_SCHEMA, orient="row")
