"""`lumina`: manage catalogs, run the pipeline, export and search results, open the Dagster UI
and the review page."""

import argparse
import ipaddress
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import dagster as dg

from lumina_pipeline import home
from lumina_pipeline.analysis.photos import ANALYSIS_VERSION
from lumina_pipeline.defs.jobs import QUIET_RUN_CONFIG
from lumina_pipeline.defs.partitions import catalogs as catalog_partitions
from lumina_pipeline.export import export_catalog
from lumina_pipeline.sample import make_sample
from lumina_pipeline.search import SearchModels, search_similar, search_text
from lumina_pipeline.storage import catalogs as catalog_store
from lumina_pipeline.storage.database import make_engine
from lumina_pipeline.storage.images import pending_batches, status_counts
from sqlalchemy.orm import Session

DUPLICATE_FIGURES = ("exact_groups", "near_duplicate_groups", "files_in_groups", "reclaimable_bytes")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args) or 0
    except catalog_store.CatalogError as error:
        print(f"lumina: {error}", file=sys.stderr)
        return 2


def catalog_add(args: argparse.Namespace) -> None:
    folders = _source_folders(args.folders)
    place = home.prepare()
    with _session(place) as session, session.begin():
        catalog_store.add_catalog(session, args.name, folders, args.batch_size)
    dg.DagsterInstance.get().add_dynamic_partitions(catalog_partitions.name, [args.name])
    print(f"catalog {args.name}: {', '.join(folders)}")


def catalog_list(args: argparse.Namespace) -> None:
    place = home.prepare()
    with _session(place) as session:
        for catalog in catalog_store.list_catalogs(session):
            counts = status_counts(session.connection(), catalog.id)
            print(f"{catalog.name}\t{sum(counts.values())} files\t{', '.join(catalog.source_directories)}")


def catalog_remove(args: argparse.Namespace) -> None:
    place = home.prepare()
    with _session(place) as session, session.begin():
        catalog_store.remove_catalog(session, args.name)
    dg.DagsterInstance.get().delete_dynamic_partition(catalog_partitions.name, args.name)
    shutil.rmtree(place.thumbnail_dir / args.name, ignore_errors=True)
    print(f"removed catalog {args.name} (the photos themselves are untouched)")


def run(args: argparse.Namespace) -> None:
    """Inventory a catalog, then analyze every batch with pending files, in this process."""
    place = home.prepare()
    name = _catalog_for_run(args, place)
    from lumina_pipeline.definitions import defs  # loads the code location only when running

    definitions, instance = defs(), dg.DagsterInstance.get()
    _fail_dead_runs(instance)
    instance.add_dynamic_partitions(catalog_partitions.name, [name])
    started = time.perf_counter()
    tags = home.process_tags()  # so that a later `lumina run` can tell if this process died
    inventory = definitions.resolve_job_def("inventory_job").execute_in_process(
        partition_key=name, instance=instance, run_config=QUIET_RUN_CONFIG, tags=tags
    )
    print(f"inventory: {_metadata_line(inventory, 'file_inventory', ('files', 'new', 'changed', 'deleted'))}")
    with _session(place) as session:
        catalog_id = catalog_store.get_catalog(session, name).id
        todo = pending_batches(session.connection(), catalog_id, ANALYSIS_VERSION)
    for number, batch in enumerate(todo, 1):
        key = dg.MultiPartitionKey({"catalog": name, "batch": batch})
        result = definitions.resolve_job_def("batch_job").execute_in_process(
            partition_key=key, instance=instance, run_config=QUIET_RUN_CONFIG, tags=tags
        )
        line = _metadata_line(result, "photo_analysis", ("files_read", "ok", "error", "skipped", "files_per_second"))
        print(f"batch {batch} ({number}/{len(todo)}): {line}")
        embedded = _figures(result, "photo_analysis", "embeddings")
        print(f"  embeddings: {embedded['images_embedded']} photos by {embedded['model_id']}, "
              f"{embedded['zero_shot_tags']} zero-shot tags, {embedded['images_per_second']} images per second")
    grouping = definitions.resolve_job_def("catalog_job").execute_in_process(
        partition_key=name, instance=instance, run_config=QUIET_RUN_CONFIG, tags=tags
    )
    print(f"duplicates: {_metadata_line(grouping, 'duplicate_groups', DUPLICATE_FIGURES)}")
    print(f"bursts: {_metadata_line(grouping, 'bursts', ('bursts', 'frames_in_bursts'))}")
    with _session(place) as session:
        counts = status_counts(session.connection(), catalog_id)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    print(f"catalog {name}: {sum(counts.values())} files ({summary}) in {time.perf_counter() - started:.1f} s")
    print(f"see it with `lumina export {name}` or in the Dagster UI (`make dev`)")


def export(args: argparse.Namespace) -> None:
    place = home.prepare()
    with _session(place) as session:
        document = export_catalog(session, args.catalog)
    text = json.dumps(document, ensure_ascii=False, indent=1)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {len(document['files'])} files to {args.out}")
    else:
        print(text)


def duplicates(args: argparse.Namespace) -> None:
    place = home.prepare()
    with _session(place) as session:
        groups = export_catalog(session, args.catalog)["duplicate_groups"]
    for group in groups:
        state = "reviewed" if group["reviewed"] else "not reviewed"
        print(f"{group['similarity_type']} group {group['id'][:8]} "
              f"(confidence {group['confidence']}, {len(group['members'])} files, {state})")
        for member in group["members"]:
            print(f"  {'*' if member == group['primary'] else ' '} {member}")
    print(f"{len(groups)} groups; * marks the primary, the copy to keep")


def bursts(args: argparse.Namespace) -> None:
    place = home.prepare()
    with _session(place) as session:
        found = export_catalog(session, args.catalog)["bursts"]
    for burst in found:
        print(f"{burst['camera']}, {burst['start_time']} to {burst['end_time'][11:]} "
              f"({burst['duration_seconds']} s, {len(burst['members'])} frames)")
        for member in burst["members"]:
            print(f"  {'*' if member == burst['best'] else ' '} {member}")
    print(f"{len(found)} bursts; * marks the best frame")


def search(args: argparse.Namespace) -> None:
    place = home.prepare()
    with _session(place) as session:
        find = search_text if args.mode == "search" else search_similar
        models = SearchModels(Path(os.environ["LUMINA_MODEL_CACHE"]), os.environ["LUMINA_CLIP_MODEL"])
        results = find(session, args.catalog, args.query, args.k, models)
    if args.json:
        shown = [{key: result[key] for key in ("path", "score", "reason")} for result in results]
        print(json.dumps(shown, ensure_ascii=False, indent=1))
        return
    if not results:
        print(f"no photo matches {args.query!r} in {args.catalog}")
    for result in results:
        print(f"{result['score']:.3f}  {result['path']}  ({result['reason']})")


def dev(args: argparse.Namespace) -> None:
    """`dagster dev` (webserver + daemon) on the same instance and database as the CLI."""
    home.prepare()
    workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "--host", args.host, "--port", str(args.port)]
    os.execv(command[0], command)


def serve(args: argparse.Namespace) -> int:
    """The images API and the review page. Loopback only, unless a token guards it."""
    token = args.token or os.environ.get("LUMINA_API_TOKEN", "")
    if not _is_loopback(args.host) and not token:
        print(f"lumina: refusing to serve on {args.host} without a token: anyone on the network could "
              "see your photos; pass --token or set LUMINA_API_TOKEN", file=sys.stderr)
        return 2
    import uvicorn

    from lumina_pipeline.api.app import ApiSettings, create_app

    place = home.prepare()
    settings = ApiSettings(
        database_url=place.database_url,
        thumbnail_dir=str(place.thumbnail_dir),
        model_cache=os.environ["LUMINA_MODEL_CACHE"],
        clip_model=os.environ["LUMINA_CLIP_MODEL"],
        token=token,
    )
    print(f"review page and API on http://{args.host}:{args.port}/ (API schema at /docs)")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _fail_dead_runs(instance: dg.DagsterInstance) -> None:
    """Fail the runs of `lumina run` processes of this machine that died (killed, machine
    restarted). They stay STARTED otherwise, and the daemon's run queue counts them against its
    limits. The daemon's run monitoring does the same, but only where a daemon runs."""
    mine = dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
        tags={home.HOST_TAG: socket.gethostname()},
    )
    dead = [run for run in instance.get_runs(mine) if not home.process_exists(int(run.tags[home.PID_TAG]))]
    for run in dead:
        instance.report_run_failed(run, f"its `lumina run` process {run.tags[home.PID_TAG]} is gone")
    if dead:
        print(f"marked failed, their `lumina run` process died: {', '.join(f'{run.job_name} {run.run_id}' for run in dead)}")


def _catalog_for_run(args: argparse.Namespace, place: home.Home) -> str:
    """The catalog to run; with --photos (or nothing at all) register it first if needed."""
    photos = args.photos
    if not photos and not args.catalog:
        photos = str(make_sample(place.root / "sample"))
    if not photos:
        return args.catalog
    folders = _source_folders([photos])
    name = args.catalog or catalog_store.slugify(Path(folders[0]).name)
    with _session(place) as session, session.begin():
        try:
            existing = catalog_store.get_catalog(session, name)
        except catalog_store.CatalogError:
            catalog_store.add_catalog(session, name, folders)
            return name
        if existing.source_directories != folders:
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
        resolved.append(str(path))
    return resolved


def _session(place: home.Home) -> Session:
    return Session(make_engine(place.database_url))


def _figures(result: dg.ExecuteInProcessResult, node: str, asset: str = "") -> dict:
    """The metadata of the materialization of `asset` (default: the node's first)."""
    materializations = result.asset_materializations_for_node(node)
    materialization = next(m for m in materializations if asset in ("", m.asset_key.to_user_string()))
    return {key: value.value for key, value in materialization.metadata.items()}


def _metadata_line(result: dg.ExecuteInProcessResult, node: str, fields: tuple[str, ...]) -> str:
    values = _figures(result, node)
    return ", ".join(f"{values[field]} {field.replace('_', ' ')}" for field in fields)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lumina", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    catalog = commands.add_parser("catalog", help="add, list or remove catalogs").add_subparsers(
        required=True, metavar="ACTION"
    )
    add = catalog.add_parser("add", help="register a named set of photo folders")
    add.add_argument("name")
    add.add_argument("folders", nargs="+")
    add.add_argument("--batch-size", type=int, default=catalog_store.DEFAULT_BATCH_SIZE)
    add.set_defaults(command=catalog_add)
    catalog.add_parser("list", help="list catalogs").set_defaults(command=catalog_list)
    remove = catalog.add_parser("remove", help="forget a catalog (photos stay on disk)")
    remove.add_argument("name")
    remove.set_defaults(command=catalog_remove)

    run_parser = commands.add_parser("run", help="inventory a catalog and analyze its new files")
    run_parser.add_argument("catalog", nargs="?")
    run_parser.add_argument("--photos", help="folder to catalog (registered on first use)")
    run_parser.set_defaults(command=run)

    export_parser = commands.add_parser("export", help="write a catalog as JSON")
    export_parser.add_argument("catalog")
    export_parser.add_argument("--out", help="file to write (default: standard output)")
    export_parser.set_defaults(command=export)

    for name, command, text in (("duplicates", duplicates, "list duplicate groups"), ("bursts", bursts, "list bursts")):
        listing = commands.add_parser(name, help=text)
        listing.add_argument("catalog")
        listing.set_defaults(command=command)

    for name, command, text, query in (
        ("search", search, "photos that match a text", "text"),
        ("similar", search, "photos that look like one of the catalog's", "path"),
    ):
        finder = commands.add_parser(name, help=text)
        finder.add_argument("catalog")
        finder.add_argument("query", metavar=query.upper())
        finder.add_argument("-k", type=int, default=10, help="how many results (default 10)")
        finder.add_argument("--json", action="store_true", help="a JSON list of {path, score, reason}")
        finder.set_defaults(command=search, mode=name)

    dev_parser = commands.add_parser("dev", help="open the Dagster UI on the same data")
    dev_parser.add_argument("--host", default="127.0.0.1")
    dev_parser.add_argument("--port", type=int, default=3000)
    dev_parser.set_defaults(command=dev)

    serve_parser = commands.add_parser("serve", help="the images API and the duplicate/burst review page")
    serve_parser.add_argument("--host", default="127.0.0.1", help="default loopback; any other needs a token")
    serve_parser.add_argument("--port", type=int, default=8765)
    serve_parser.add_argument("--token", default="", help="required by every request (or LUMINA_API_TOKEN)")
    serve_parser.set_defaults(command=serve)
    return parser


if __name__ == "__main__":
    sys.exit(main())
