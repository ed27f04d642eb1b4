"""Lumina's home (`$LUMINA_HOME`, default `./.lumina`): database, Dagster instance, thumbnails,
quarantine.

Entry points call `prepare()` once; everything below them reads the environment it sets,
through Dagster resources (`dg.EnvVar`), never by looking up variables of its own.
"""

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from lumina_pipeline.analysis.files import OWN_FOLDER
from lumina_pipeline.storage.catalogs import CatalogError
from lumina_pipeline.storage.database import (
    NOT_IN_A_DATA_FOLDER,
    make_engine,
    migrate,
    normalize_url,
    start_embedded_server,
)

DAGSTER_YAML = Path(__file__).parent / "dagster.yaml"


@dataclass(frozen=True)
class Home:
    root: Path
    database_url: str
    thumbnail_dir: Path
    quarantine_dir: Path
    batches_per_catalog: int  # batch runs of one catalog at once


def _mark_as_own(folder: Path) -> None:
    """Mark a folder of Lumina's own, which no walk of a catalog enters (analysis/files.py). One
    that cannot be made (a file in its place) is left to the runs that write there to report."""
    mark = folder / os.fsdecode(OWN_FOLDER)
    with contextlib.suppress(OSError):
        if not mark.exists():
            folder.mkdir(parents=True, exist_ok=True)
            mark.write_text("Lumina keeps its own files here (its database, thumbnails, quarantined photos): "
                            "it never catalogs this folder.\n")


def home_folder() -> Path:
    return Path(os.environ.get("LUMINA_HOME", ".lumina")).resolve()


def prepare(*, create: bool = False) -> Home:
    """Start or join the database, migrate it, write `dagster.yaml`, export the variables.
    With the embedded database, only the commands that catalog (`create`) make a home where
    there is none: any other, run from another folder, would find an empty one of its own."""
    root = home_folder()
    external = os.environ.get("LUMINA_DATABASE_URL")
    if not (create or external or root.is_dir()):
        raise CatalogError(f"no Lumina home in {root}: run lumina from the folder of your `make run` (its home is "
                           "./.lumina), or set LUMINA_HOME; `lumina catalog add` or `lumina run` makes a new one")
    if not external and (found := set(NOT_IN_A_DATA_FOLDER) & set(str(root))):
        raise CatalogError(f"the embedded database cannot start in {root}, whose path holds {' '.join(sorted(found))}: "
                           "set LUMINA_HOME to a folder without")
    root.mkdir(parents=True, exist_ok=True)
    url = normalize_url(external) if external else start_embedded_server(root / "pgdata")
    migrate(make_engine(url))
    dagster_home = root / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    # run limits: LUMINA_MAX_RUNS (default: one per core), LUMINA_BATCHES_PER_CATALOG (default: one
    # per core, at most 4, as a batch run holds about 1 GB); how often the daemon looks for dead
    # runs: LUMINA_RUN_MONITORING_SECONDS (default 20)
    cores = os.cpu_count() or 2
    settings = {
        "max_concurrent_runs": int(os.environ.get("LUMINA_MAX_RUNS", cores)),
        "batches_per_catalog": int(os.environ.get("LUMINA_BATCHES_PER_CATALOG", min(cores, 4))),
        "ollama_requests": int(os.environ.get("LUMINA_OLLAMA_REQUESTS", 1)),  # the `ollama` pool's limit
        "monitoring_seconds": int(os.environ.get("LUMINA_RUN_MONITORING_SECONDS", 20)),
    }
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML.read_text().format(**settings))
    thumbnail_dir = Path(os.environ.get("LUMINA_THUMBNAIL_DIR", root / "thumbnails"))
    quarantine_dir = Path(os.environ.get("LUMINA_QUARANTINE_DIR", root / "quarantine"))
    for folder in (root, thumbnail_dir, quarantine_dir):
        _mark_as_own(folder)
    os.environ.update(
        LUMINA_DATABASE_URL=url,
        DAGSTER_HOME=str(dagster_home),
        LUMINA_THUMBNAIL_DIR=str(thumbnail_dir),
        LUMINA_QUARANTINE_DIR=str(quarantine_dir),
        LUMINA_MODEL_CACHE=os.environ.get("LUMINA_MODEL_CACHE", str(root / "models")),
        LUMINA_CLIP_MODEL=os.environ.get("LUMINA_CLIP_MODEL", ""),
        LUMINA_TAG_VOCABULARY=os.environ.get("LUMINA_TAG_VOCABULARY", ""),
        LUMINA_OLLAMA_URL=os.environ.get("LUMINA_OLLAMA_URL", ""),  # empty: no captions
        LUMINA_OLLAMA_MODEL=os.environ.get("LUMINA_OLLAMA_MODEL", "moondream"),
    )
    return Home(root, url, thumbnail_dir, quarantine_dir, settings["batches_per_catalog"])
