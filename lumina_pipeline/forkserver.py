"""The forkserver that the daemon's run processes and `lumina run`'s batch workers are forked
from: it imports the libraries a run uses once, and each process forked from it starts with
them. It imports no Dagster itself, so that `lumina run` can start it before its own imports."""

import multiprocessing.forkserver
from multiprocessing.context import ForkServerContext

# What a run imports that costs seconds, imported once by the forkserver rather than by every
# run. Lumina's own modules are not among them: each run imports them anew, so a run always has
# the code its code location has now (about 0.4 s).
PRELOADED = [
    "dagster", "dagster._cli.api", "dagster_postgres", "alembic.command", "numpy", "polars", "sqlalchemy.orm",
    "psycopg2", "pgvector.sqlalchemy", "PIL.Image", "pillow_heif", "scipy.fft",
    "scipy.sparse.csgraph", "pywt", "av", "onnxruntime", "ollama",
]


def preloaded_forkserver() -> ForkServerContext:
    """Processes forked from this process's forkserver, which imports PRELOADED when it starts."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    return context


def start_forkserver() -> None:
    """Start this process's forkserver now: it imports PRELOADED (about 1.5 s) while this
    process goes on."""
    preloaded_forkserver()
    multiprocessing.forkserver.ensure_running()
