"""`lumina`: manage catalogs, run the pipeline, export and search results, open the Dagster UI
and the review page."""

import argparse
import gc
import ipaddress
import json
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

from sqlalchemy.orm import Session

from lumina_pipeline import home
from lumina_pipeline.analysis.files import APP_LIBRARY_LEFT_OUT, is_app_library
from lumina_pipeline.forkserver import start_forkserver
from lumina_pipeline.humanize import plural, size
from lumina_pipeline.storage import catalogs as catalog_store
from lumina_pipeline.storage.database import make_engine, stop_embedded_server
from lumina_pipeline.storage.images import status_counts, waiting_batches

# Dagster, the image libraries and the models load only in the commands that use them, so
# that `lumina --help`, `catalog list` and the listings answer at once.

def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background of a script (`lumina run NAME &`), which ignores SIGINT. Each
        # Dagster run gives SIGTERM the handler of SIGINT when it ends (dagster._utils.interrupts):
        # `kill` would no longer stop `lumina`, nor the processes it starts.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.command(args) or 0
    except KeyboardInterrupt:  # Ctrl-C, or `kill` once a Dagster run ran
        print("lumina: interrupted", file=sys.stderr)
        return 130
    except catalog_store.CatalogError as error:
        print(f"lumina: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `lumina duplicates NAME | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 1


def catalog_add(args: argparse.Namespace) -> None:
    from lumina_pipeline.analysis.files import count_files
    from lumina_pipeline.analysis.inventory import batch_size_for, grid_warning

    folders = _source_folders(args.folders)
    files = count_files(folders)
    batch_size = args.batch_size or batch_size_for(files)
    with _session(home.prepare(create=True)) as session, session.begin():
        catalog_store.add_catalog(session, args.name, folders, batch_size)
        catalogs, batches = catalog_store.partition_grid(session)
    _catalog_partitions("add", args.name)
    print(f"catalog {args.name}: {', '.join(folders)} (about {plural(files, 'file')}, batches of {batch_size})")
    if warning := grid_warning(catalogs, max(batches, -(-files // batch_size))):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"next: {_lumina()} run {args.name}")


def catalog_list(args: argparse.Namespace) -> None:
    with _session() as session:
        for catalog in catalog_store.list_catalogs(session):
            counts = status_counts(session.connection(), catalog.id)
            files = sum(count for status, count in counts.items() if status != "deleted")
            aside = f" ({counts['quarantined']} in quarantine)" if counts.get("quarantined") else ""
            print(f"{catalog.name}\t{plural(files, 'file')}{aside}\t{', '.join(catalog.source_directories)}")


def catalog_remove(args: argparse.Namespace) -> int:
    from lumina_pipeline.storage.thumbnails import remove_thumbnails

    place = home.prepare()
    with _session(place) as session:
        said = catalog_store.said_by_people(session, args.name)
    if said and not args.yes:
        print(f"catalog {args.name} holds {', '.join(plural(n, kind) for kind, n in said.items())} given by people, "
              "which removing it forgets (the photos themselves stay untouched)")
        if not _confirmed("remove it?", "removes it"):
            return 1
    with _session(place) as session, session.begin():
        catalog_store.remove_catalog(session, args.name)
    _catalog_partitions("delete", args.name)
    remove_thumbnails(place.thumbnail_dir, args.name)
    print(f"removed catalog {args.name} (the photos themselves are untouched)")
    return 0


def run(args: argparse.Namespace) -> None:
    """Inventory a catalog, then analyze every batch with pending files, in this process."""
    place = home.prepare(create=True)
    name = _catalog_for_run(args, place)
    if place.batches_per_catalog > 1 and _batches_ahead(place, name) > 1:
        start_forkserver()  # the batch workers' imports, on another core than this process's
    # Dagster and the whole code location: some 250,000 objects that live as long as the process.
    # The garbage collector would scan them over and over as they come and again at shutdown
    # (full collections of 0.1-0.2 s each, a second of a no-change run); frozen, it leaves them be.
    gc.disable()
    from lumina_pipeline.runner import run_catalog

    gc.freeze()
    gc.enable()
    run_catalog(name, make_engine(place.database_url))
    print(f"next: `{_lumina()} duplicates {name}`, `{_lumina()} serve` (the review page), "
          "`make dev` (the Dagster UI)")


def _batches_ahead(place: home.Home, name: str) -> int:
    """About how many batches `lumina run` will read in worker processes: those with files
    waiting or, for a catalog not walked yet, its files over its batch size. Fewer than two
    run in this process, and a forkserver started for them would import for nothing; more
    found by the walk start it then."""
    with _session(place) as session:
        catalog = catalog_store.get_catalog(session, name)
        waiting = waiting_batches(session.connection(), catalog.id)
    if waiting is not None:
        return waiting
    from lumina_pipeline.analysis.files import count_files

    return -(-count_files(catalog.source_directories) // catalog.batch_size)


def export(args: argparse.Namespace) -> None:
    from lumina_pipeline.export import export_catalog

    with _session() as session:
        document = export_catalog(session, args.catalog)
    text = json.dumps(document, ensure_ascii=False, indent=1)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {plural(len(document['files']), 'file')} to {args.out}")
    else:
        print(text)


def review_accept(args: argparse.Namespace) -> int:
    """Accept the suggested keepers of many groups at once: the count first, then a yes."""
    from lumina_pipeline.storage.decisions import GroupChanged, accept_suggestions

    place = home.prepare()
    which = "exact" if args.exact else f"at least {args.min_confidence} alike"

    def accept(apply: bool, seen: str | None = None):
        with _session(place) as session, session.begin():
            catalog_id = catalog_store.get_catalog(session, args.catalog).id
            return accept_suggestions(session.connection(), catalog_id, exact=args.exact,
                                      min_confidence=args.min_confidence, apply=apply, seen=seen)

    preview = accept(apply=False)
    print(f"{plural(preview.groups, 'unreviewed group')} {which}: keeping each suggested keeper leaves "
          f"{plural(preview.files, 'file')} ({size(preview.size_bytes)}) removable")
    if not preview.groups:
        return 0
    if not args.yes and not _confirmed("accept them?", "accepts"):
        return 1  # as `catalog remove` not confirmed: a script learns that nothing was accepted
    try:
        done = accept(apply=True, seen=preview.seen)
    except GroupChanged as error:
        raise catalog_store.CatalogError(f"nothing changed: {error}") from None
    print(f"accepted {plural(done.groups, 'group')}; `{_lumina()} export {args.catalog}` lists the removable files, "
          f"`{_lumina()} quarantine {args.catalog}` moves them aside")
    return 0


def listing(args: argparse.Namespace) -> None:
    """`duplicates` and `bursts`: a line per group, its members below, * on the one to keep."""
    from lumina_pipeline.export import grouping_records

    with _session() as session:
        records = grouping_records(session, args.catalog, args.key)
    for record in records:
        print(args.heading(record))
        for member in record["members"]:
            print(f"  {'*' if member == record[args.kept] else ' '} {member}")
    print(f"{plural(len(records), args.noun)}; * marks {args.marks}")


def _group_heading(group: dict) -> str:
    return (f"{group['similarity_type']} group {group['id'][:8]} "
            f"(confidence {group['confidence']}, {plural(len(group['members']), 'file')}, {_state(group)})")


def _burst_heading(burst: dict) -> str:
    return (f"{burst['camera']}, {burst['start_time']} to {burst['end_time'][11:]} "
            f"({burst['duration_seconds']} s, {plural(len(burst['members']), 'frame')}, {_state(burst)})")


def _state(group: dict) -> str:
    return "reviewed" if group["reviewed"] else "not reviewed"


def search(args: argparse.Namespace) -> None:
    from lumina_pipeline.search import SearchModels, search_similar, search_text

    if not args.query.strip():
        raise catalog_store.CatalogError(f"nothing to look for: give a {'text' if args.mode == 'search' else 'path'}")
    with _session() as session:
        find = search_text if args.mode == "search" else search_similar
        models = SearchModels(Path(os.environ["LUMINA_MODEL_CACHE"]), os.environ["LUMINA_CLIP_MODEL"])
        results = find(session, args.catalog, args.query, args.k, models)
    if args.json:
        shown = [{"path": result.path, "score": result.score, "reason": result.reason} for result in results]
        print(json.dumps(shown, ensure_ascii=False, indent=1))
        return
    if not results:
        print(f"no photo matches {args.query!r} in {args.catalog}")
    for result in results:
        print(f"{result.score:.3f}  {result.path}  ({result.reason})")


def quarantine(args: argparse.Namespace) -> int:
    purging = len(args.words) == 2 and args.words[0] == "purge"
    if len(args.words) != 1 + purging or purging != (args.older_than is not None) or (purging and args.dry_run):
        print(f"lumina: usage: {args.usage}", file=sys.stderr)
        return 2
    place = home.prepare()
    with _file_actions(place, args.words[-1]) as actions:
        report = actions.purge(args.older_than) if purging else actions.quarantine_removable(dry_run=args.dry_run)
    done = "deleted" if purging else "would move" if args.dry_run else "moved"
    _print_report(report, done, dry_run=args.dry_run, listed=args.dry_run)
    if report.run_id and report.done:
        print(f"to {place.quarantine_dir / args.words[-1] / report.run_id}; undo: {_lumina()} undo {args.words[-1]}")
        _regroup(args.words[-1])
    return 0


def catalog_organize(args: argparse.Namespace) -> None:
    from lumina_pipeline.analysis.organize import DEFAULT_TEMPLATE
    from lumina_pipeline.storage.organize import set_organizing

    into, template = str(Path(args.into).expanduser().resolve()), args.template or DEFAULT_TEMPLATE
    with _session() as session, session.begin():
        set_organizing(session, args.name, into, template, args.move)
    print(f"catalog {args.name}: organized into {into} by {template} ({'moving' if args.move else 'copying'})")
    print(f"next: {_lumina()} organize {args.name} --dry-run")


def organize(args: argparse.Namespace) -> None:
    from lumina_pipeline.actions.organize import organize as organize_catalog
    from lumina_pipeline.analysis.organize import figures

    with _file_actions(home.prepare(), args.catalog) as actions:
        organized = organize_catalog(actions, dry_run=args.dry_run, move=args.move)
        into = actions.catalog.organized_directory
    verb = ("move", "moved") if organized.moving else ("copy", "copied")
    done = f"would {verb[0]}" if args.dry_run else verb[1]
    report, numbers = organized.report, figures(organized.planned)
    _print_report(report, done, f" into {into}", dry_run=args.dry_run)
    years = ", ".join(f"{year}: {count}" for year, count in numbers["by_year"].items())
    print(f"  {years or 'nothing new'}; {numbers['renamed']} renamed (their name was taken), "
          f"{numbers['in_place']} already in place")
    print("  left out: " + ", ".join(f"{count} {why}" for why, count in numbers["left_out"].items()))
    if report.run_id and report.done:
        print(f"undo: {_lumina()} undo {args.catalog}")
        if organized.moving:
            _regroup(args.catalog)


def undo(args: argparse.Namespace) -> None:
    with _file_actions(home.prepare(), args.catalog) as actions:
        report = actions.undo(args.run)
    done = "removed the copies of" if report.copies else "put back"
    untouched = "; the originals were never touched" if report.copies else ""
    _print_report(report, done, f" of run {report.run_id}{untouched}")
    if (report.done or report.resumed) and not report.copies:
        _regroup(args.catalog)


def _regroup(catalog: str) -> None:
    """Regroup a catalog whose files a file action moved: its groups still hold them where they were."""
    from lumina_pipeline.runner import regroup

    if failure := regroup(catalog):  # the files did move: say so, not a traceback
        print(f"lumina: regrouping {catalog} failed ({failure}); `{_lumina()} run {catalog}` regroups it",
              file=sys.stderr)
    else:
        print(f"regrouped {catalog}")


def _confirmed(question: str, what_yes_does: str) -> bool:
    """A person's yes at the terminal; without a terminal, no (and how to say yes beforehand)."""
    if sys.stdin.isatty() and input(f"{question} [y/N] ").strip().lower() in ("y", "yes"):
        return True
    print("nothing changed" + ("" if sys.stdin.isatty() else f" (--yes {what_yes_does} without asking)"))
    return False


def _print_report(report, done: str, what: str = "", *, dry_run: bool = False, listed: bool = False) -> None:
    """What was `done` to how many files, then (when `listed`) each of them, then each file left and why."""
    summary = f"{done} {plural(report.done, 'file')} ({size(report.size_bytes)}){what}"
    if report.resumed and dry_run:
        print(f"an interrupted run left {plural(report.resumed, 'operation')}, which the next run finishes first")
    elif report.resumed:
        print(f"finished {plural(report.resumed, 'operation')} an interrupted run had left")
    left = f"{plural(len(report.skipped), 'file')} left as they were:" if report.skipped else ""
    if listed:
        print(summary + (":" if report.done else ""), *(f"  {path}" for path in report.files), sep="\n")
        if left:
            print(left)
    else:
        print(summary + (f"; {left}" if left else ""))
    for path, reason in report.skipped:
        print(f"  {path}: {reason}")


def dev(args: argparse.Namespace) -> None:
    """`dagster dev` (webserver + daemon) on the same instance and database as the CLI."""
    _port_free(args.host, args.port, "make dev PORT=")  # else the daemon would run on, without the UI
    home.prepare(create=True)
    workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"
    # `dagster dev` warns that `dg dev` supersedes it: the same webserver and daemon, but from the
    # dg CLI and a project layout of its own; a warning a person running `make dev` cannot act on
    quiet = ["-W", "ignore:Function `dev_command` is superseded"]
    os.execv(sys.executable, [sys.executable, *quiet, "-m", "dagster", "dev", "-w", str(workspace),
                              "--host", args.host, "--port", str(args.port)])


def serve(args: argparse.Namespace) -> int:
    """The images API and the review page. Loopback only, unless a token guards it."""
    token = args.token or os.environ.get("LUMINA_API_TOKEN", "")
    if not _is_loopback(args.host) and not token:
        print(f"lumina: refusing to serve on {args.host} without a token: anyone on the network could "
              "see your photos; pass --token or set LUMINA_API_TOKEN", file=sys.stderr)
        return 2
    _port_free(args.host, args.port, "lumina serve --port ")
    import uvicorn

    from lumina_pipeline.api.app import ApiSettings, create_app

    place = home.prepare()
    settings = ApiSettings(database_url=place.database_url, thumbnail_dir=str(place.thumbnail_dir), token=token,
                           model_cache=os.environ["LUMINA_MODEL_CACHE"], clip_model=os.environ["LUMINA_CLIP_MODEL"])
    print(f"review page and API on http://{args.host}:{args.port}/ (API schema at /docs)")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


def stop(args: argparse.Namespace) -> int:
    """Stop the embedded PostgreSQL of this `$LUMINA_HOME` (the next command starts it again),
    unless another process uses it: a run would end in a wall of connection errors."""
    if os.environ.get("LUMINA_DATABASE_URL"):
        print("lumina: the database is an external one (LUMINA_DATABASE_URL): nothing to stop")
        return 0
    pgdata = home.home_folder() / "pgdata"
    if (pgdata / "postmaster.pid").exists() and not args.force and (users := _other_connections(pgdata)):
        print(f"lumina: the database is in use ({plural(users, 'connection')}: `make dev`, `lumina serve` or a "
              "run); stop those first, or `lumina stop --force`", file=sys.stderr)
        return 2
    stopped = stop_embedded_server(pgdata)
    print(f"stopped the database in {pgdata}" if stopped else f"no database running in {pgdata}")
    return 0


def _other_connections(pgdata: Path) -> int:
    from sqlalchemy import text

    from lumina_pipeline.storage.database import start_embedded_server  # joins the running one

    engine = make_engine(start_embedded_server(pgdata))
    with engine.connect() as connection:
        count = connection.execute(text("""
            SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
        """)).scalar()
    engine.dispose()
    return int(count or 0)


def _catalog_partitions(action: str, name: str) -> None:
    """Add or delete the catalog's Dagster partition at once (the catalog sensor would, within
    30 s, but only where a daemon runs)."""
    import dagster as dg

    from lumina_pipeline.defs.partitions import CATALOGS

    instance = dg.DagsterInstance.get()
    if action == "add":
        instance.add_dynamic_partitions(CATALOGS, [name])
    else:
        instance.delete_dynamic_partition(CATALOGS, name)


def _lumina() -> str:
    """How to call `lumina` again, as the user can paste it: `.venv/bin/lumina` after `make run`."""
    called = Path(sys.argv[0])
    if shutil.which("lumina") == str(called.resolve()) or called.name != "lumina":
        return "lumina"
    return os.path.relpath(called)


def _port_free(host: str, port: int, another: str) -> None:
    """Refuse, before anything starts, a port another program listens on."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: only a listener is in the way
        try:
            probe.bind((host, port))
        except OSError as error:
            raise catalog_store.CatalogError(f"cannot listen on {host}:{port} ({os.strerror(error.errno or 0)}): "
                                             f"choose another port ({another}{port + 1})") from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return int(text)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _catalog_for_run(args: argparse.Namespace, place: home.Home) -> str:
    """The catalog to run; with --photos (or nothing at all) register it first if needed."""
    photos = args.photos
    if not photos and not args.catalog:
        from lumina_pipeline.sample import make_sample  # draws the sample with Pillow

        photos = str(make_sample(place.root / "sample"))
    if not photos:
        with _session(place) as session:
            catalog_store.get_catalog(session, args.catalog)  # a typo ends here, before any run
        return args.catalog
    folders = _source_folders([photos])
    with _session(place) as session, session.begin():
        holding = [c.name for c in catalog_store.list_catalogs(session) if folders[0] in c.source_directories]
        name = args.catalog or (holding[0] if holding else catalog_store.slugify(Path(folders[0]).name))
        try:
            existing = catalog_store.get_catalog(session, name)
        except catalog_store.CatalogError:
            from lumina_pipeline.analysis.files import count_files
            from lumina_pipeline.analysis.inventory import batch_size_for

            catalog_store.add_catalog(session, name, folders, batch_size_for(count_files(folders)))
            return name
        if folders[0] not in existing.source_directories:  # it may hold its organized tree too
            raise catalog_store.CatalogError(
                f"catalog {name!r} already holds {', '.join(existing.source_directories)}; "
                "choose another name with CATALOG=..."
            )
    return name


def _source_folders(folders: list[str]) -> list[str]:
    resolved = []
    for folder in folders:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise catalog_store.CatalogError(f"not a folder: {folder}")
        for library in (path, *path.parents):
            if is_app_library(os.fsencode(library.name)):
                raise catalog_store.CatalogError(f"{library} is {APP_LIBRARY_LEFT_OUT}")
        resolved.append(str(path))
    return resolved


def _session(place: home.Home | None = None) -> Session:
    """A session on the database of `place` (default: the home, prepared)."""
    return Session(make_engine((place or home.prepare()).database_url))


def _file_actions(place: home.Home, catalog: str):
    from lumina_pipeline.actions.runs import file_actions

    return file_actions(make_engine(place.database_url), catalog, os.fsencode(place.quarantine_dir))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lumina", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(group, name: str, function, help: str, *positional: str, **settings) -> argparse.ArgumentParser:
        """A subcommand of `group` that calls `function`; `settings` are set on the args too."""
        sub = group.add_parser(name, help=help, usage=settings.get("usage"))
        for argument in positional:
            sub.add_argument(argument)
        sub.set_defaults(command=function, **settings)
        return sub

    catalog = commands.add_parser("catalog", help="add, list or remove catalogs").add_subparsers(
        required=True, metavar="ACTION"
    )
    add = command(catalog, "add", catalog_add, "register a named set of photo folders", "name")
    add.add_argument("folders", nargs="+")
    add.add_argument("--batch-size", type=int, help="files per batch (default: 500, more past 1,000,000 files)")
    command(catalog, "list", catalog_list, "list catalogs")
    remove = command(catalog, "remove", catalog_remove, "forget a catalog (photos stay on disk)", "name")
    remove.add_argument("--yes", action="store_true", help="do not ask, even when people's decisions would be lost")
    organizing = command(catalog, "organize", catalog_organize,
                         "where and how `lumina organize` lays out the catalog's files", "name")
    organizing.add_argument("--into", required=True, metavar="DIR", help="the tidy tree (not inside the catalog)")
    organizing.add_argument("--template", help="folders by capture time, of {year}, {month} and {day} "
                                               "(default: {year}/{year}-{month}-{day})")
    organizing.add_argument("--move", action="store_true", help="move the files by default rather than copy them")

    run_parser = command(commands, "run", run, "inventory a catalog and analyze its new files")
    run_parser.add_argument("catalog", nargs="?")
    run_parser.add_argument("--photos", help="folder to catalog (registered on first use)")

    command(commands, "export", export, "write a catalog as JSON", "catalog").add_argument(
        "--out", help="file to write (default: standard output)"
    )

    review = commands.add_parser("review", help="decide many groups at once").add_subparsers(
        required=True, metavar="ACTION"
    )
    accept = command(review, "accept", review_accept, "mark groups reviewed, each keeping its suggested keeper",
                     "catalog")
    which = accept.add_mutually_exclusive_group(required=True)
    which.add_argument("--exact", action="store_true", help="every unreviewed exact group (identical bytes)")
    which.add_argument("--min-confidence", type=int, metavar="N", help="every unreviewed group at least N alike")
    accept.add_argument("--yes", action="store_true", help="do not ask")

    for name, key, heading, kept, noun, marks in (
        ("duplicates", "duplicate_groups", _group_heading, "primary", "group", "the primary, the copy to keep"),
        ("bursts", "bursts", _burst_heading, "best", "burst", "the best frame"),
    ):
        command(commands, name, listing, f"list {key.replace('_', ' ')}", "catalog",
                key=key, heading=heading, kept=kept, noun=noun, marks=marks)

    for name, text, query in (
        ("search", "photos that match a text", "text"),
        ("similar", "photos that look like one of the catalog's", "path"),
    ):
        finder = command(commands, name, search, text, "catalog", mode=name)
        finder.add_argument("query", metavar=query.upper())
        finder.add_argument("-k", type=_positive, default=10, help="how many results (default 10)")
        finder.add_argument("--json", action="store_true", help="a JSON list of {path, score, reason}")

    usage = "lumina quarantine CATALOG [--dry-run] | lumina quarantine purge CATALOG --older-than DAYS (no dry run)"
    quarantine_parser = command(commands, "quarantine", quarantine, "move reviewed-away files to quarantine",
                                usage=usage)
    quarantine_parser.add_argument("words", nargs="+", metavar="[purge] CATALOG")
    quarantine_parser.add_argument("--dry-run", action="store_true", help="say what would move, move nothing")
    quarantine_parser.add_argument("--older-than", type=float, metavar="DAYS",
                                   help="purge: delete for good what was quarantined more than DAYS ago")
    organize_parser = command(commands, "organize", organize, "copy the kept files into the catalog's dated tree",
                              "catalog")
    organize_parser.add_argument("--dry-run", action="store_true", help="say what would be copied, touch nothing")
    how = organize_parser.add_mutually_exclusive_group()  # neither: as `catalog organize` set it up
    how.add_argument("--move", action="store_const", const=True, help="move the files this time")
    how.add_argument("--copy", action="store_const", const=False, dest="move", help="copy them this time")
    undo_parser = command(commands, "undo", undo, "take back a quarantine or organize run", "catalog")
    undo_parser.add_argument("run", nargs="?", help="default: the newest run with files to put back")

    dev_parser = command(commands, "dev", dev, "open the Dagster UI on the same data")
    dev_parser.add_argument("--host", default="127.0.0.1")
    dev_parser.add_argument("--port", type=int, default=3000)

    serve_parser = command(commands, "serve", serve, "the images API and the duplicate/burst review page")
    serve_parser.add_argument("--host", default="127.0.0.1", help="default loopback; any other needs a token")
    serve_parser.add_argument("--port", type=int, default=8765)
    serve_parser.add_argument("--token", default="", help="required by every request (or LUMINA_API_TOKEN)")

    command(commands, "stop", stop, "stop the embedded database (it starts again with any command)").add_argument(
        "--force", action="store_true", help="stop it even while other processes use it"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
