"""kill -9 at three moments of a quarantine run that copies (as across filesystems), then run
again: every file of the library is in exactly one place, whole, and undo brings all back."""

import subprocess
import sys

import pytest
from sqlalchemy import text

from lumina_pipeline.actions.files import PARTIAL
from lumina_pipeline_tests.actions.conftest import snapshot

CATALOG = "resume"


@pytest.fixture(scope="module")
def before(library):
    return snapshot(library.photos)


@pytest.mark.parametrize(("moment", "count"), [("copying", 3), ("copied", 5), ("moved", 7)])
def test_a_killed_run_is_finished_by_the_next_and_nothing_is_lost(library, before, database_url, moment, count):
    removable = library.removable()
    assert len(removable) > count
    killed = subprocess.run(
        [sys.executable, "-m", "lumina_pipeline_tests.actions.dying_quarantine",
         database_url, CATALOG, str(library.quarantine), moment, str(count)],
        capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-3000:]
    left = library.quarantined()
    assert {"copying": any(path.endswith(PARTIAL) for path in left),  # the kill came where it was meant to
            "copied": bool(set(left) & set(snapshot(library.photos))),
            "moved": entries_in(library, "done") > 0}[moment]
    assert entries_in(library, "planned") > 0
    assert every_file_is_somewhere_whole(library, before)
    with library.actions() as actions:  # a dry run says what is left, and lists none of it as missing
        preview = actions.quarantine_removable(dry_run=True)
    assert (preview.resumed, preview.done, preview.skipped) == (entries_in(library, "planned"), 0, [])

    report = library.quarantine_removable(always_copy=True)
    assert report.resumed > 0 and report.done == 0  # the killed run's plan held every removable file
    assert entries_in(library, "planned") == 0
    library_now, quarantined = snapshot(library.photos), library.quarantined()
    assert set(library_now) | set(quarantined) == set(before) and not set(library_now) & set(quarantined)
    assert set(quarantined) == removable
    assert {**library_now, **quarantined} == before  # byte-identical, original mtimes

    library.undo(always_copy=True)
    assert snapshot(library.photos) == before and snapshot(library.quarantine) == {}


def every_file_is_somewhere_whole(library, before) -> bool:
    """Right after the kill: each file whole in its folder or in quarantine (or both)."""
    found = snapshot(library.photos)
    for path, state in library.quarantined().items():
        if not path.endswith(PARTIAL):
            assert before[path] == state
            found[path] = state
    return found == before


def entries_in(library, state: str) -> int:
    with library.pipeline.engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM file_actions WHERE catalog_id = :c AND state = :s"),
                                  {"c": library.pipeline.catalog_id(library.catalog), "s": state}).scalar_one()
