"""kill -9 at three moments of an organize run that copies as across filesystems, then run
again: over the library and the tree, a moved file is in exactly one place, a copied one in
both, every one whole, and its row says where; undo then brings all back."""

import os
import subprocess
import sys

import pytest
from sqlalchemy.orm import Session

from lumina_pipeline.actions.files import PARTIAL
from lumina_pipeline.actions.organize import organize, plan_catalog
from lumina_pipeline.analysis.organize import DEFAULT_TEMPLATE
from lumina_pipeline.storage.catalogs import CatalogError
from lumina_pipeline.storage.organize import set_organizing
from lumina_pipeline_tests.actions.conftest import snapshot
from lumina_pipeline_tests.actions.test_resume import entries_in

CATALOG = "resume_organize"


@pytest.fixture(scope="module")
def before(library):
    with Session(library.pipeline.engine) as session, session.begin():
        set_organizing(session, CATALOG, str(library.photos.parent / "tidy"), DEFAULT_TEMPLATE, move=False)
    return snapshot(library.photos)


@pytest.mark.parametrize(("moment", "count", "operation"),
                         [("copying", 3, "move"), ("copied", 5, "move"), ("moved", 7, "move"), ("copied", 5, "copy")])
def test_a_killed_run_is_finished_by_the_next_and_nothing_is_lost(library, before, database_url, moment, count,
                                                                  operation):
    tree = library.photos.parent / "tidy"
    with library.actions() as actions:  # where each file goes: what the killed run planned
        plan = plan_catalog(actions.connection, actions.catalog, move=False).plan
    photos, organized = os.fsencode(library.photos), os.fsencode(tree)
    places = {os.path.relpath(target, organized): os.path.relpath(source, photos)
              for source, target in plan.select("source", "target").rows()}
    killed = subprocess.run(
        [sys.executable, "-m", "lumina_pipeline_tests.actions.dying_organize",
         database_url, CATALOG, str(library.quarantine), moment, str(count), operation],
        capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-3000:]
    left = snapshot(tree)
    assert {"copying": any(path.endswith(PARTIAL) for path in left),  # the kill came where it was meant to
            "copied": bool({places.get(path) for path in left} & set(snapshot(library.photos))),
            "moved": entries_in(library, "done") > 0}[moment]
    assert entries_in(library, "planned") > 0
    found = snapshot(library.photos)  # right after the kill: each file whole where it was or in the tree, or both
    assert all(before[places[path]] == state for path, state in left.items() if not path.endswith(PARTIAL))
    assert set(found) | {places[path] for path in left if not path.endswith(PARTIAL)} == set(before)

    with library.actions(always_copy=True) as actions:
        again = organize(actions, dry_run=False, move=operation == "move")
    assert again.report.resumed > 0 and again.report.done == 0 and again.report.skipped == []
    assert entries_in(library, "planned") == 0
    library_now, tree_now = snapshot(library.photos), snapshot(tree)
    assert {path: before[source] for path, source in places.items()} == tree_now  # complete, whole, mtimes kept
    untouched = {path: state for path, state in before.items() if path not in places.values()}
    assert library_now == (untouched if operation == "move" else before)  # moved: in exactly one place
    assert library.rows_point_at_their_files()

    library.undo(always_copy=True)
    assert snapshot(library.photos) == before and snapshot(tree) == {} and library.rows_point_at_their_files()


def test_an_undo_killed_midway_is_finished_by_the_next_undo_which_gives_the_tree_up(library, before, database_url):
    tree = library.photos.parent / "tidy"
    with library.actions() as actions:
        moved = organize(actions, dry_run=False, move=True).report
    killed = subprocess.run(
        [sys.executable, "-m", "lumina_pipeline_tests.actions.dying_organize",
         database_url, CATALOG, str(library.quarantine), "-", "6", "undo"], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-3000:]
    left = entries_in(library, "undoing")
    assert 0 < left < moved.done

    again = library.undo()  # the undo asked for again: finished, not "nothing to undo", its files its own
    assert (again.run_id, again.resumed, again.done, again.skipped) == (moved.run_id, 0, left, [])
    assert snapshot(library.photos) == before and library.rows_point_at_their_files()
    assert not tree.exists() or not any(tree.iterdir())  # emptied of the folders it made
    with library.actions() as actions:  # no longer one of the catalog's folders
        assert str(tree) not in actions.catalog.source_directories


@pytest.mark.parametrize("named", [False, True], ids=["the next undo", "an undo of that run"])
def test_an_undo_killed_before_its_clean_up_has_it_done_by_the_next_undo(library, before, database_url, named):
    tree = library.photos.parent / "tidy"
    with library.actions() as actions:
        run_id = organize(actions, dry_run=False, move=True).report.run_id
    killed = subprocess.run(
        [sys.executable, "-m", "lumina_pipeline_tests.actions.dying_organize",
         database_url, CATALOG, str(library.quarantine), "cleanup", "-", "undo"], capture_output=True, text=True,
        timeout=300)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert entries_in(library, "undoing") == 0 and snapshot(library.photos) == before  # every file back
    with library.actions() as actions:
        assert str(tree) in actions.catalog.source_directories

    with pytest.raises(CatalogError, match="has no file left to undo" if named else "nothing to undo"):
        library.undo(run_id if named else None)
    assert not tree.exists() or not any(tree.iterdir())  # emptied of the folders it made
    with library.actions() as actions:  # no longer one of the catalog's folders
        assert str(tree) not in actions.catalog.source_directories


def test_a_rescan_between_a_killed_move_and_its_end_leaves_each_moved_file_one_live_row(library, before,
                                                                                       database_url):
    tree = library.photos.parent / "tidy"
    killed = subprocess.run(
        [sys.executable, "-m", "lumina_pipeline_tests.actions.dying_organize",
         database_url, CATALOG, str(library.quarantine), "copying", "7", "move"], capture_output=True, text=True,
        timeout=300)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert any(path.endswith(PARTIAL) for path in snapshot(tree))
    library.pipeline.inventory(CATALOG)  # sees the files moved so far gone from the library, new in the tree
    with library.actions() as actions:
        assert organize(actions, dry_run=False, move=True).report.resumed > 0

    rows = [(root, path, status) for root, path, _, status, *_ in library.placed().values()]
    in_tree = [(os.fsencode(path), status) for root, path, status in rows if root == str(tree)]
    assert sorted(path for path, _ in in_tree) == sorted(snapshot(tree))  # one row each
    assert {status for _, status in in_tree} == {"ok", "skipped"}  # the photos read, a sidecar never is
    library.undo()
    assert snapshot(library.photos) == before
