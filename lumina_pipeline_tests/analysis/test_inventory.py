from dataclasses import replace

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from lumina_pipeline.analysis.files import LINKED_SCHEMA, WALK_SCHEMA, Walk, count_files
from lumina_pipeline.analysis.inventory import batch_size_for, diff_inventory, grid_warning
from lumina_pipeline.storage.images import INVENTORY_SCHEMA


def walk(*files: tuple[bytes, int], unreadable=(), empty_roots=()) -> Walk:
    rows = [("/photos", path, size, 1000) for path, size in files]
    return Walk(pl.DataFrame(rows, schema=WALK_SCHEMA, orient="row"), list(unreadable), list(empty_roots))


def stored_after(changes, stored: pl.DataFrame) -> pl.DataFrame:
    """What the table holds after applying `changes` (ids for new rows continue upwards)."""
    start = (stored["id"].max() or 0) + 1
    new = changes.new.with_columns(id=pl.int_range(start, start + len(changes.new), dtype=pl.Int64))
    return pl.concat([stored, new.select(list(INVENTORY_SCHEMA))])


EMPTY = pl.DataFrame(schema=INVENTORY_SCHEMA)


def test_new_files_fill_the_open_batch_then_open_new_ones():
    first = diff_inventory(EMPTY, walk((b"a.jpg", 1), (b"b.jpg", 1), (b"c.jpg", 1)), batch_size=2)
    assert first.new["batch"].to_list() == ["00000", "00000", "00001"]
    stored = stored_after(first, EMPTY)
    second = diff_inventory(stored, walk((b"a.jpg", 1), (b"b.jpg", 1), (b"c.jpg", 1), (b"d.jpg", 1)), batch_size=2)
    assert second.new["batch"].to_list() == ["00001"]
    assert second.batches_to_process() == ["00001"]
    assert second.unchanged == 3


def test_changed_file_re_marks_only_its_own_batch():
    stored = stored_after(diff_inventory(EMPTY, walk((b"a.jpg", 1), (b"b.jpg", 1), (b"c.jpg", 1)), batch_size=2), EMPTY)
    changes = diff_inventory(stored, walk((b"a.jpg", 1), (b"b.jpg", 1), (b"c.jpg", 9)), batch_size=2)
    assert changes.changed.select("batch", "size_bytes", "status").rows() == [("00001", 9, "pending")]
    assert changes.new.is_empty() and changes.deleted.is_empty()
    assert changes.batches_to_process() == ["00001"]


def test_vanished_files_are_marked_deleted_and_come_back_as_changed():
    stored = stored_after(diff_inventory(EMPTY, walk((b"a.jpg", 1), (b"b.jpg", 1)), batch_size=5), EMPTY)
    gone = diff_inventory(stored, walk((b"a.jpg", 1)), batch_size=5)
    assert gone.deleted["id"].to_list() == [2]
    stored = stored.with_columns(status=pl.when(pl.col("id") == 2).then(pl.lit("deleted")).otherwise("status"))
    back = diff_inventory(stored, walk((b"a.jpg", 1), (b"b.jpg", 1)), batch_size=5)
    assert back.changed.select("id", "batch", "status").rows() == [(2, "00000", "pending")]


def test_files_under_an_unreadable_folder_are_not_marked_deleted():
    stored = stored_after(diff_inventory(EMPTY, walk((b"nas/a.jpg", 1), (b"b.jpg", 1)), batch_size=5), EMPTY)
    changes = diff_inventory(stored, walk((b"b.jpg", 1), unreadable=[("/photos", b"nas")]), batch_size=5)
    assert changes.deleted.is_empty() and changes.unlisted == [("/photos", b"nas")]


def test_a_file_of_several_names_is_listed_once_under_the_name_the_catalog_knows_else_the_first():
    names = [b"2024/IMG_0001.JPG", b"by date/IMG_0001.JPG", b"z/IMG_0001.JPG"]
    linked = pl.DataFrame({"source_root": ["/photos"] * 3, "path": names, "file": [7] * 3}, schema=LINKED_SCHEMA)
    found = replace(walk(*((name, 5) for name in [*names, b"copy.jpg"])), linked=linked)
    first = diff_inventory(EMPTY, found, batch_size=10)
    assert first.new["path"].to_list() == [b"2024/IMG_0001.JPG", b"copy.jpg"] and first.hard_links == 2
    known = stored_after(diff_inventory(EMPTY, walk((b"z/IMG_0001.JPG", 5), (b"copy.jpg", 5)), batch_size=10), EMPTY)
    again = diff_inventory(known, found, batch_size=10)  # linked under names sorted before its own since
    assert again.is_empty() and again.files["path"].to_list() == [b"z/IMG_0001.JPG", b"copy.jpg"]


def test_a_source_folder_that_holds_nothing_at_all_is_taken_for_an_unmounted_drive():
    stored = stored_after(diff_inventory(EMPTY, walk((b"a.jpg", 1), (b"b.jpg", 1)), batch_size=5), EMPTY)
    unmounted = diff_inventory(stored, walk(empty_roots=["/photos"]), batch_size=5)  # the mount point
    assert unmounted.deleted.is_empty() and unmounted.unlisted == [("/photos", b"")]
    emptied = diff_inventory(stored, walk(), batch_size=5)  # its files deleted, its folders left
    assert emptied.deleted["id"].to_list() == [1, 2] and emptied.unlisted == []
    new_and_empty = diff_inventory(EMPTY, walk(empty_roots=["/photos"]), batch_size=5)
    assert new_and_empty.unlisted == []


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=6), st.integers(1, 7))
def test_batches_never_overflow_and_assignments_never_move(additions, batch_size):
    stored, names = EMPTY, []
    for count in additions:
        names += [f"{len(names) + i:04d}.jpg".encode() for i in range(count)]
        changes = diff_inventory(stored, walk(*[(n, 1) for n in names]), batch_size=batch_size)
        assert changes.changed.is_empty() and changes.deleted.is_empty()
        stored = stored_after(changes, stored)
        sizes = stored.group_by("batch").len().sort("batch")["len"].to_list()
        assert all(size == batch_size for size in sizes[:-1])  # only the last batch is open
        assert all(size <= batch_size for size in sizes[-1:])
    assert stored["path"].n_unique() == len(names)


def test_batches_grow_with_the_library_so_a_catalog_keeps_at_most_2000():
    assert [batch_size_for(n) for n in (0, 86, 50_000, 1_000_000, 1_000_001, 3_000_000)] == [
        500, 500, 500, 500, 501, 1500]
    assert grid_warning(20, 1_000) is None
    assert "26 catalogs x 2000 batches = 52,000 partitions" in grid_warning(26, 2_000)


def test_a_fast_count_finds_every_file_without_following_links(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/1.jpg", "a/b/2.jpg", "3.jpg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "loop").symlink_to(tmp_path)
    assert count_files([str(tmp_path)]) == 3
