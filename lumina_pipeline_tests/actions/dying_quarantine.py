"""A quarantine run (copying, as across filesystems) that SIGKILLs itself at one moment of its
N-th operation, for the resume tests:

    python -m lumina_pipeline_tests.actions.dying_quarantine URL CATALOG QUARANTINE MOMENT N

MOMENT: `copying` (half the copy written), `copied` (the copy verified and named, the source
still there) or `moved` (the source deleted, the journal not yet told; journal chunks of 4, so
the operations of the earlier chunks are journaled done)."""

import itertools
import os
import shutil
import signal
import sys
from collections.abc import Callable

from lumina_pipeline.actions import files, runs
from lumina_pipeline.storage.database import make_engine


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def dying_on(count: int, function: Callable, before: Callable | None = None) -> Callable:
    """`function`, except that its `count`-th call dies (after running `before`, or after itself)."""
    calls = itertools.count(1)  # a run carries out several operations at once, in threads

    def wrapper(*args, **kwargs):
        dying = next(calls) == count
        if dying and before:
            before(*args)
            die()
        result = function(*args, **kwargs)
        if dying:
            die()
        return result

    return wrapper


def half_a_copy(source, target) -> None:
    with open(source, "rb") as reading, open(target, "wb") as writing:
        writing.write(reading.read(os.fstat(reading.fileno()).st_size // 2))


def die_at(moment: str, count: int) -> None:
    """Make this process SIGKILL itself at `moment` (above) of its `count`-th file operation."""
    if moment == "copying":
        shutil.copyfile = dying_on(count, shutil.copyfile, before=half_a_copy)
    elif moment == "copied":
        files._copy_verified = dying_on(count, files._copy_verified)
    else:
        runs.CHUNK = 4
        runs.carry_out = dying_on(count, runs.carry_out)


def main(url: str, catalog: str, quarantine: str, moment: str, count: int) -> None:
    die_at(moment, count)
    with runs.file_actions(make_engine(url), catalog, os.fsencode(quarantine), always_copy=True) as actions:
        actions.quarantine_removable(dry_run=False)


if __name__ == "__main__":
    main(*sys.argv[1:5], int(sys.argv[5]))
