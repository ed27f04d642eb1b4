"""Journaled runs of file operations on one catalog: apply a plan, finish what a killed run left,
undo a run, purge old quarantine. The journal (storage/journal.py) holds a run's operations as
`planned` before any file is touched, and their outcome after, a chunk at a time. As every operation
of actions/files.py may be carried out again from any state a kill leaves, finishing a killed run
is carrying out its unfinished entries again: no state of the files is written down in between."""

import contextlib
import itertools
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl
from sqlalchemy import Connection, Engine, Row
from sqlalchemy.orm import Session

from lumina_pipeline.actions.files import FileOperation, carry_out, mismatch, sha256, undo
from lumina_pipeline.analysis.files import absolute_paths, classify, mtime_ns, shown
from lumina_pipeline.analysis.plans import QUARANTINED, plan_quarantine
from lumina_pipeline.analysis.stacks import shot_stem
from lumina_pipeline.storage import journal
from lumina_pipeline.storage.browse import held_back
from lumina_pipeline.storage.catalogs import (
    ACTIONS_LOCK_SPACE,
    CatalogError,
    drop_emptied_source_directory,
    get_catalog,
    held_lock,
)
from lumina_pipeline.storage.decisions import keep_files
from lumina_pipeline.storage.models import Catalog

CHUNK = 200  # operations per journal commit: how many a kill can leave for the next run to look up
# Operations of a chunk carried out at once (each on its own file): the filesystem commits their
# fsyncs together, and hashing releases the GIL, so a run is not one disk wait after another.
FILES_AT_ONCE = 8
QUARANTINE = "quarantine"
ORGANIZE = "organize"
OPERATION_FIELDS = ("source", "target", "operation", "size_bytes", "mtime_ns", "checksum")  # FileOperation's
OTHER_CONTENT = "other content"  # a keeper of the same bytes as cataloged, or a sidecar's copy, compared
PUT_BACK = "put back by hand"
KEPT = "kept: a group's primary, a burst's best frame, a file a person keeps, or a file of their stack"


@dataclass
class Report:
    """What a run did (a dry run: would do): files done and their bytes, files left and why."""

    run_id: str | None = None
    resumed: int = 0  # operations of a killed run finished first (by a dry run: left to finish first)
    size_bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where the file was left, why)
    files: list[str] = field(default_factory=list)  # the original paths of the files done
    copies: bool = False  # an undo of copies, which removes them (an organize run that copied)

    @property
    def done(self) -> int:
        return len(self.files)

    def add(self, source: bytes, size: int, problem: str | None) -> None:
        if problem is None:
            self.files.append(shown(source))
            self.size_bytes += size
        else:
            self.skipped.append((shown(source), problem))


@contextmanager
def file_actions(engine: Engine, catalog: str, quarantine: bytes, *, always_copy: bool = False) -> Iterator["Actions"]:
    """The catalog's file actions, holding its file-actions lock meanwhile. `quarantine` is the
    folder of every catalog's quarantine; `always_copy` copies even within one filesystem."""
    def refuse() -> None:
        raise CatalogError(f"another quarantine, undo or purge of {catalog} is running")

    with engine.connect() as connection:
        with Session(connection) as session:
            found = get_catalog(session, catalog)
        with held_lock(engine, ACTIONS_LOCK_SPACE, str(found.id), waiting=refuse):
            yield Actions(connection, found, quarantine, always_copy)


class Actions:
    """A catalog's file actions, on a connection holding its lock (`file_actions`)."""

    def __init__(self, connection: Connection, catalog: Catalog, quarantine: bytes, always_copy: bool):
        self.connection, self.catalog, self.quarantine, self.always_copy = connection, catalog, quarantine, always_copy
        self.catalog_id = catalog.id

    def resume(self) -> Report:
        """Finish every operation a killed run of this catalog left (applied, undone or purged)."""
        return self._settle(self.unfinished(), Report(), resuming=True)

    def unfinished(self) -> list[Row]:
        return journal.entries(self.connection, self.catalog_id, journal.UNFINISHED)

    def quarantine_removable(self, *, dry_run: bool) -> Report:
        """Move the catalog's removable files to `<quarantine>/<catalog>/<run>/`, after finishing
        what a killed run left; a dry run only says what would move."""
        unfinished = self.unfinished() if dry_run else []
        resumed = len(unfinished) if dry_run else self.resume().done
        pending = [entry.image_id for entry in unfinished if entry.state == "planned"]  # on their way already
        run_id = new_run_id()
        folder = os.path.join(self.quarantine, self.catalog.name.encode(), run_id.encode())
        files = journal.files_to_quarantine(self.connection, self.catalog_id).filter(~pl.col("id").is_in(pending))
        unread = files["checksum"].is_null()  # sidecars: their content is compared with their copy's
        files, changed = self._in_place(checksum_unread(files), unread)
        plan, left_out = plan_quarantine(files, self.catalog.source_directories, folder)
        plan = plan.with_columns(keep_image_id=pl.col("image_id").replace_strict(files["id"], files["keep_id"]))
        held = [(where, why) for id_, where, why in held_back(self.connection, self.catalog_id) if id_ not in pending]
        skipped = held + changed + [(shown(source), reason) for source, reason in left_out.rows()]
        report = Report(None if dry_run else run_id, resumed, skipped=skipped)
        return self.preview(plan, report) if dry_run else self.apply(QUARANTINE, run_id, plan, report)

    def apply(self, action: str, run_id: str, plan: pl.DataFrame, report: Report | None = None) -> Report:
        """Carry out a plan (analysis/plans.py) as run `run_id`, journaled; its outcome is added
        to `report`. Finish what a killed run left (`resume`) first, as the commands here do."""
        journal.write_plan(self.connection, self.catalog_id, run_id, action, plan)
        return self._settle(self._commit_then_entries("planned", run_id), report or Report(run_id))

    def undo(self, run_id: str | None = None) -> Report:
        """Put back the files of a run, after finishing what a killed run left. By default the run
        is the one of an undo that was killed (finishing it is the undo asked for again), else
        the newest one with something to undo."""
        unfinished = self.unfinished()
        interrupted = [entry.run_id for entry in unfinished if entry.state == "undoing"]
        run_id = run_id or (interrupted[-1] if interrupted else None)
        mine = [entry for entry in unfinished if entry.state == "undoing" and entry.run_id == run_id]
        others = [entry for entry in unfinished if entry.state != "undoing" or entry.run_id != run_id]
        resumed = self._settle(others, Report(), resuming=True).done
        # This very undo, interrupted: what it puts back counts as this one's; what it leaves is tried once more below.
        finished = self._settle(mine, Report(), resuming=True)
        runs = journal.runs_to_undo(self.connection, self.catalog_id)
        run_id = run_id or next(iter(runs), None)
        if run_id is None:
            if undone := journal.latest_undone_run(self.connection, self.catalog_id):
                self._clean_up_after_undo(undone)  # an undo killed after its last file, before its clean-up
            raise CatalogError(f"nothing to undo in {self.catalog.name}")
        if run_id not in runs and not mine:
            self._clean_up_after_undo(run_id)  # an undo of it killed after its last file, before its clean-up
            raise CatalogError(f"run {run_id} of {self.catalog.name} has no file left to undo; "
                               f"runs that have: {', '.join(runs) or 'none'}")
        journal.start_undo(self.connection, self.catalog_id, run_id)
        report = Report(run_id, resumed, finished.size_bytes, files=finished.files)
        report = self._settle(self._commit_then_entries("undoing", run_id), report)
        settled = self._clean_up_after_undo(run_id)
        report.copies = bool(settled) and all(entry.operation == "copy" for entry in settled)
        return report

    def _clean_up_after_undo(self, run_id: str) -> list[Row]:
        """Drop the folders the undo of `run_id` emptied and, once no file moved into the organized
        tree is left there, the tree from the catalog's folders. The run's settled entries."""
        settled = journal.entries(self.connection, self.catalog_id, ["undone", "skipped"], run_id)
        self._remove_emptied_folders(settled)
        tree = self.catalog.organized_directory
        moved_in = any(entry.action == ORGANIZE and entry.operation == "move" for entry in settled)
        if tree and moved_in and not _holds_a_file(os.fsencode(tree)):
            drop_emptied_source_directory(self.connection, self.catalog_id, tree)
            self.connection.commit()
        return settled

    def purge(self, older_than_days: float) -> Report:
        """Delete the files quarantined more than `older_than_days` ago: the only deletion."""
        resumed = self.resume().done
        journal.start_purge(self.connection, self.catalog_id, older_than_days)
        entries = self._commit_then_entries("purging")
        report = self._settle(entries, Report(None, resumed))
        self._remove_emptied_folders(entries)
        return report

    def _commit_then_entries(self, state: str, run_id: str | None = None) -> list[Row]:
        self.connection.commit()
        return journal.entries(self.connection, self.catalog_id, [state], run_id)

    def _remove_emptied_folders(self, entries: list[Row]) -> None:
        """Drop the folders of the quarantine and organized tree that an undo or purge of `entries`
        emptied: their targets' folders and those above, up to the catalog's quarantine folder or
        the tree's top, which stays (a person chose it). A person's empty folders are never looked at."""
        organized = [os.fsencode(self.catalog.organized_directory)] if self.catalog.organized_directory else []
        tops = [self.quarantine, *organized]
        for folder in sorted({os.path.dirname(entry.target) for entry in entries}, key=len, reverse=True):
            top = next((top for top in tops if folder.startswith(top + b"/")), folder)
            while folder != top:
                try:
                    os.rmdir(folder)
                except OSError:  # not empty, or gone with a deeper one's parents
                    if os.path.isdir(folder):
                        break
                folder = os.path.dirname(folder)

    def preview(self, plan: pl.DataFrame, report: Report, *, keepers_stay: bool = True) -> Report:
        """What applying `plan` would do as things are: only sizes and mtimes are looked at (and,
        with `keepers_stay`, whether a file is kept now)."""
        kept = journal.kept_images(self.connection, self.catalog_id, plan["image_id"].to_list()) if keepers_stay else ()
        for entry in plan.iter_rows(named=True):
            operation = FileOperation(*(entry[name] for name in OPERATION_FIELDS))
            problem = KEPT if entry["image_id"] in kept else mismatch(operation.source, operation, read=False)
            report.add(entry["source"], entry["size_bytes"], problem)
        return report

    def _in_place(self, files: pl.DataFrame, compare: pl.Series) -> tuple[pl.DataFrame, list[tuple[str, str]]]:
        """Split off the files not in their folder as cataloged (sizes and mtimes, and a stack's
        files by content: moving them compares the others' content too), those with a sidecar
        new since the last scan, those whose keeper is not (deleted, moved or edited since the
        last scan, on a disk not mounted) or holds other bytes (a keeper cataloged with the
        same, or where `compare`); and the other files of their stacks, which stay whole. The
        rest, and (path, why) for those."""
        keepers, seen = journal.keepers(self.connection, files["keep_id"].to_list()), {}
        read = files.select(pl.when(pl.col("stack_id").is_not_null()).then(pl.col("checksum")).alias("read"))["read"]
        paths = absolute_paths(files["source_root"], files["path"])
        sources = [shown(source) for source in paths]
        new_sidecars = unscanned_sidecars(self.connection, self.catalog_id, paths)
        as_cataloged = zip(paths, files["size_bytes"], files["mtime_ns"], read, files["keep_id"], files["checksum"],
                           compare, new_sidecars, strict=True)
        problems = [changed(path, size, mtime, stacked) or new_sidecar
                    or _why_not_removable(*_keeper_gone(keepers.get(keep_id), checksum, read=read_keeper, seen=seen))
                    for path, size, mtime, stacked, keep_id, checksum, read_keeper, new_sidecar in as_cataloged]
        return stacks_stay_whole(files, sources, files["stack_id"], problems)

    def _settle(self, entries: list[Row], report: Report, *, resuming: bool = False) -> Report:
        """Bring each entry to its end, a chunk at a time, journaling each chunk's outcomes;
        `resuming` the entries a killed run left."""
        for start in range(0, len(entries), CHUNK):
            chunk = entries[start : start + CHUNK]
            to_check = [e.image_id for e in chunk if e.state == "planned" and e.action == QUARANTINE]
            to_purge = [e for e in chunk if e.state == "purging" and e.keep_image_id is not None]
            keepers, seen = journal.keepers(self.connection, [e.keep_image_id for e in to_purge]), {}
            gone = {e.id: f"its keeper {where} changed since ({problem}): this may be the last copy"
                    for e in to_purge for where, problem in [_keeper_gone(keepers.get(e.keep_image_id), e.checksum,
                                                                          seen=seen)]
                    if problem}
            back = journal.partners_back(self.connection, [e.image_id for e in chunk if e.state == "purging"])
            gone |= {e.id: f"its stack's {shown(back[e.image_id])} is back in its folder"
                     for e in chunk if e.image_id in back and e.id not in gone}
            checks = Checks(journal.kept_images(self.connection, self.catalog_id, to_check), gone, resuming)
            with ThreadPoolExecutor(FILES_AT_ONCE) as pool:
                finished = pool.map(self._finish, chunk, itertools.repeat(checks))
                outcomes = [(entry.id, *outcome) for entry, outcome in zip(chunk, finished, strict=True)]
            journal.record(self.connection, outcomes)
            self.connection.commit()
            for entry, (_, state, reason) in zip(chunk, outcomes, strict=True):  # named where it is left
                report.add(entry.target if reason and state == "done" else entry.source, entry.size_bytes, reason)
        return report

    def _finish(self, entry: Row, checks: "Checks") -> tuple[str, str | None]:
        """The entry's new state and, unless it reached its end, why not."""
        operation = FileOperation(*(getattr(entry, name) for name in OPERATION_FIELDS))
        resuming = checks.resuming
        if entry.state == "undoing":
            problem = undo(operation, always_copy=self.always_copy, resuming=resuming)
            return ("undone", None) if problem is None else ("done", f"{journal.NOT_UNDONE}{problem}")
        if entry.state == "purging":
            problem = checks.keeper_gone.get(entry.id) or _delete_inside(self.quarantine, entry.target)
            return ("purged", None) if problem is None else ("done", f"not purged: {problem}")
        if entry.image_id in checks.kept:  # kept since it was planned: put back, should a killed run have moved it
            problem = undo(operation, always_copy=self.always_copy, resuming=resuming)
            return ("skipped", KEPT) if problem is None else ("done", f"kept, but not put back: {problem}")
        problem = carry_out(operation, always_copy=self.always_copy, resuming=resuming)
        return ("done", None) if problem is None else ("skipped", problem)


@dataclass(frozen=True)
class Checks:
    """What the entries of a chunk are checked against: the files kept now, the purges whose
    copy's keeper is gone (and why), and whether a killed run left them."""

    kept: set[int]
    keeper_gone: dict[int, str]
    resuming: bool


def _keeper_gone(keeper: Row | None, checksum: str | None, *, read: bool = False,
                 seen: dict[bytes, str]) -> tuple[str, str | None]:
    """Where a copy's keeper (journal.keepers) is, and why it is not there as cataloged (deleted,
    quarantined, missing, changed since the last scan) or holds other bytes than the copy's
    `checksum`, compared when the keeper was cataloged with the same (bit rot leaves its size
    and date) or when `read`: the copy may be the last one of its photo. No reason while it is
    there, or was never recorded. `seen`: the checksums of the keepers read so far, each read
    once however many copies it keeps."""
    if keeper is None:
        return "", None
    path = os.path.join(os.fsencode(keeper.source_root), keeper.path)
    if keeper.status in ("deleted", QUARANTINED):
        return shown(path), keeper.status
    problem = changed(path, keeper.size_bytes, keeper.mtime_ns)
    compared = checksum is not None and (read or keeper.checksum == checksum)
    if problem is None and compared:
        if path not in seen:
            seen[path] = sha256(path)
        problem = OTHER_CONTENT if seen[path] != checksum else None
    return shown(path), problem


def changed(path: bytes, size_bytes: int, mtime_ns: int, checksum: str | None = None) -> str | None:
    """Why the file at `path` is not as cataloged by size and mtime, and by content when its
    `checksum` is given, if it is not."""
    return mismatch(path, FileOperation(path, path, "keep", size_bytes, mtime_ns, checksum or ""),
                    read=checksum is not None)


def settle_put_back(connection: Connection, catalog_id, image_ids: list[int]) -> int:
    """Take as undone the quarantine of files a person put back by hand: at their place as
    cataloged (`image_ids`, from the inventory), gone from the quarantine. Each is the catalog's
    again, and kept: taking it back says so, and the next quarantine must not move it again; no
    undo or purge touches it (caller's transaction). How many."""
    entries = journal.quarantined_by(connection, catalog_id, image_ids) if image_ids else []
    back = [entry for entry in entries if not os.path.lexists(entry.target)]
    if back:
        journal.record(connection, [(entry.id, "undone", PUT_BACK) for entry in back])
        keep_files(connection, [entry.image_id for entry in back])
    return len(back)


def unscanned_sidecars(connection: Connection, catalog_id, sources: list[bytes]) -> list[str | None]:
    """For each file at `sources`, why it waits when a sidecar of its shot (a name of its stem,
    analysis/stacks.py) lies beside it that the catalog does not hold: written since the last
    scan, it would be parted from the photo it describes. One listing of each folder; like the
    walk, it takes regular files only (a link named IMG_1.xmp is never cataloged)."""
    beside = [os.path.join(folder, entry.name) for folder in {os.path.dirname(source) for source in sources}
              for entry in _listed(folder)
              if classify(entry.name) == "sidecar" and entry.is_file(follow_symlinks=False)]
    new = sorted(set(beside) - journal.cataloged(connection, catalog_id, beside)) if beside else []
    if not new:
        return [None] * len(sources)
    sidecars = _shots(new).with_columns(sidecar=pl.Series(new, dtype=pl.Binary))
    sidecars = sidecars.unique(["folder", "stem"], keep="first", maintain_order=True)
    found = _shots(sources).join(sidecars, on=["folder", "stem"], how="left", maintain_order="left")["sidecar"]
    return [f"{shown(sidecar)} is new since the last scan (`lumina run` catalogs it)" if sidecar else None
            for sidecar in found]


def _listed(folder: bytes) -> list[os.DirEntry[bytes]]:
    try:
        return list(os.scandir(folder))
    except OSError:  # gone, or not readable: each of its files is looked at as it is moved
        return []


def _shots(paths: list[bytes]) -> pl.DataFrame:
    """Each file's folder and shot stem; a name not UTF-8 compares by its decoded form."""
    names = pl.Series([os.path.basename(path).decode(errors="replace") for path in paths], dtype=pl.String)
    kinds = pl.Series([classify(path) for path in paths], dtype=pl.String)
    folders = pl.Series([os.path.dirname(path) for path in paths], dtype=pl.Binary)
    return pl.DataFrame({"folder": folders}).with_columns(stem=shot_stem(pl.lit(names), pl.lit(kinds)))


def stacks_stay_whole(
    files: pl.DataFrame, sources: list[str], stacks: pl.Series, problems: list[str | None]
) -> tuple[pl.DataFrame, list[tuple[str, str]]]:
    """Split `files` (at `sources`, of `stacks`, a file of no stack in none) into those without a
    problem, and (source, why) for the others: each with a problem, and the other files of their
    stacks, which stay whole."""
    staying = {stack: source for stack, source, problem in zip(stacks, sources, problems, strict=True)
               if problem and stack is not None}
    problems = [problem or (f"its stack stays whole: {staying[stack]} stays" if stack in staying else None)
                for stack, problem in zip(stacks, problems, strict=True)]
    left = [(source, problem) for source, problem in zip(sources, problems, strict=True) if problem]
    return files.filter(pl.Series([problem is None for problem in problems], dtype=pl.Boolean)), left


def _why_not_removable(keeper: str, problem: str | None) -> str | None:
    if problem == OTHER_CONTENT:
        return f"its copy {keeper} holds other content: this may be the only one"
    return f"its keeper {keeper} changed since the last scan ({problem})" if problem else None


def _holds_a_file(folder: bytes) -> bool:
    return any(files for _, _, files in os.walk(folder))


def new_run_id() -> str:
    """A run's id: it sorts by time, and names the run's quarantine folder."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def checksum_unread(files: pl.DataFrame) -> pl.DataFrame:
    """Take now the checksum of the files no analysis reads (a stack's sidecars), where they are
    still as cataloged, so that their move is checked like any other's."""
    paths = absolute_paths(files["source_root"], files["path"])
    rows = zip(paths, files.select("checksum", "size_bytes", "mtime_ns").rows(), strict=True)
    checksums = [checksum or _sha256_if_unchanged(path, size, mtime) for path, (checksum, size, mtime) in rows]
    return files.with_columns(checksum=pl.Series(checksums, dtype=pl.String))


def _sha256_if_unchanged(path: bytes, size: int, mtime: int) -> str | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return sha256(path) if (info.st_size, mtime_ns(info)) == (size, mtime) else None


def _delete_inside(folder: bytes, path: bytes) -> str | None:
    """Delete `path` (already gone is fine) if it lies inside `folder`, else say why not."""
    if not os.path.realpath(path).startswith(os.path.realpath(folder) + b"/"):
        return f"{shown(path)} is outside the quarantine folder"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return None
