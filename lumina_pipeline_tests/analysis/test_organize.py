"""Organize plans: names taken by shots in order, whole shots renamed alike, stable re-plans."""

import os

import polars as pl
import pytest

from lumina_pipeline.analysis.organize import (
    DEFAULT_TEMPLATE,
    EXISTING_SCHEMA,
    FILES_SCHEMA,
    check_template,
    plan_organize,
    target_folders,
)
from lumina_pipeline.analysis.plans import PLAN_SCHEMA

DAY = "2021-05-03T10:00:00"


def files(*rows: tuple) -> pl.DataFrame:
    """(id, path, captured_at, stack_id) rows, each file of its own content."""
    return pl.DataFrame([
        (i, "/p", path, "sidecar" if path.endswith(b".xmp") else "image", 10 + i, 1, f"{i:064d}", "ok", taken,
         stack, stack and i == min(r[0] for r in rows if r[3] == stack), False, False)
        for i, path, taken, stack in rows
    ], schema=FILES_SCHEMA, orient="row")


def plan(rows: pl.DataFrame, existing: pl.DataFrame | None = None, template: str = DEFAULT_TEMPLATE) -> dict:
    planned = plan_organize(rows, pl.DataFrame(schema=EXISTING_SCHEMA) if existing is None else existing, template,
                            b"/t", move=False)
    assert list(planned.plan.schema)[:len(PLAN_SCHEMA)] == list(PLAN_SCHEMA)
    return dict(planned.plan.select("source", "target").rows())


def on_disk(targets: list[bytes]) -> pl.DataFrame:
    """The tree after `targets` were copied (sizes and mtimes kept), for `files` rows."""
    return pl.DataFrame([(os.path.dirname(t)[3:].decode(), os.path.basename(t), 10 + i, 1) for i, t in targets],
                        schema=EXISTING_SCHEMA, orient="row")


def test_a_shot_meeting_a_taken_name_is_numbered_whole_and_the_next_plan_only_adds():
    library = files((1, b"a/IMG_1.JPG", DAY, None), (2, b"b/img_1.cr2", DAY, "s"), (3, b"b/IMG_1.jpg", DAY, "s"),
                    (4, b"b/IMG_1.CR2.xmp", None, "s"), (5, b"c/Gr\xfc\xdfe.jpg", None, None))
    first = plan(library)
    assert first == {
        b"/p/a/IMG_1.JPG": b"/t/2021/2021-05-03/IMG_1.JPG",  # earlier in path order: keeps its name
        b"/p/b/img_1.cr2": b"/t/2021/2021-05-03/img_1 (2).cr2",  # the stack's names meet it (any case)
        b"/p/b/IMG_1.jpg": b"/t/2021/2021-05-03/IMG_1 (2).jpg",
        b"/p/b/IMG_1.CR2.xmp": b"/t/2021/2021-05-03/IMG_1 (2).CR2.xmp",
        b"/p/c/Gr\xfc\xdfe.jpg": b"/t/undated/1970/1970-01-01/Gr\xfc\xdfe.jpg",  # by its mtime, bytes kept
    }
    done = on_disk([(i, first[b"/p/" + path]) for i, path in [(1, b"a/IMG_1.JPG"), (2, b"b/img_1.cr2"),
                    (3, b"b/IMG_1.jpg"), (4, b"b/IMG_1.CR2.xmp"), (5, b"c/Gr\xfc\xdfe.jpg")]])
    assert plan(library, done) == {}
    grown = pl.concat([library, files((6, b"d/IMG_1.JPG", DAY, None))])
    assert plan(grown, done) == {b"/p/d/IMG_1.JPG": b"/t/2021/2021-05-03/IMG_1 (3).JPG"}
    assert plan(grown, done[:1]) == {  # the stack was not copied yet: still (2), the new file (3)
        b"/p/b/img_1.cr2": b"/t/2021/2021-05-03/img_1 (2).cr2", b"/p/b/IMG_1.jpg": b"/t/2021/2021-05-03/IMG_1 (2).jpg",
        b"/p/b/IMG_1.CR2.xmp": b"/t/2021/2021-05-03/IMG_1 (2).CR2.xmp",
        b"/p/c/Gr\xfc\xdfe.jpg": b"/t/undated/1970/1970-01-01/Gr\xfc\xdfe.jpg",
        b"/p/d/IMG_1.JPG": b"/t/2021/2021-05-03/IMG_1 (3).JPG"}


def test_a_shot_with_a_file_not_read_waits_whole():
    library = files((1, b"a/IMG_1.NEF", DAY, "s"), (2, b"a/IMG_1.JPG", DAY, "s"), (3, b"a/IMG_1.xmp", None, "s"),
                    (4, b"a/IMG_2.JPG", DAY, None))
    unreadable_raw = library.with_columns(status=pl.when(pl.col("id") == 1).then(pl.lit("error")).otherwise("status"))
    planned = plan_organize(unreadable_raw, pl.DataFrame(schema=EXISTING_SCHEMA), DEFAULT_TEMPLATE, b"/t", move=True)
    assert planned.plan["source"].to_list() == [b"/p/a/IMG_2.JPG"]
    assert planned.left_out["unreadable or unread"] == 3


def test_a_shot_goes_whole_or_not_at_all_and_a_sidecar_only_with_its_photo():
    library = files((1, b"a/IMG_1.JPG", DAY, None), (2, b"b/IMG_1.JPG", DAY, "s"), (3, b"b/IMG_1.xmp", None, "s"),
                    (4, b"c/IMG_4.xmp", None, None)).with_columns(
        checksum=pl.when(pl.col("id") < 3).then(pl.lit("same")).otherwise("checksum"))
    # of two copies, the one of a stack carries its sidecar: it goes, the loose one stays out
    assert sorted(plan(library)) == [b"/p/b/IMG_1.JPG", b"/p/b/IMG_1.xmp"]
    kept_loose = library.with_columns(kept=pl.col("id") == 1)
    planned = plan_organize(kept_loose, pl.DataFrame(schema=EXISTING_SCHEMA), DEFAULT_TEMPLATE, b"/t", move=True)
    assert planned.plan["source"].to_list() == [b"/p/a/IMG_1.JPG"]  # the stack's copy stays out, its sidecar too
    assert (planned.left_out["exact copies"], planned.left_out["sidecars without their photo"]) == (2, 1)


def test_a_shot_with_a_file_of_its_own_goes_whole_though_another_holds_a_copy_of_its_still():
    """An iPhone export's Live Photo beside a Takeout copy of its still with a clip of its own."""
    library = files((1, b"Takeout/IMG_1.HEIC", DAY, "t"), (2, b"Takeout/IMG_1.MP4", DAY, "t"),
                    (3, b"iPhone/IMG_1.HEIC", DAY, "i"), (4, b"iPhone/IMG_1.MOV", DAY, "i"),
                    (5, b"iPhone/IMG_1.AAE", None, "i"), (6, b"Backup/iPhone/IMG_1.HEIC", DAY, "b"),
                    (7, b"Backup/iPhone/IMG_1.MOV", DAY, "b")).with_columns(
        checksum=pl.col("id").replace_strict({1: "still", 3: "still", 6: "still", 4: "clip", 7: "clip"},
                                             default=pl.col("checksum"), return_dtype=pl.String))
    planned = plan_organize(library, pl.DataFrame(schema=EXISTING_SCHEMA), DEFAULT_TEMPLATE, b"/t", move=False)
    assert sorted(planned.plan["source"].to_list()) == [  # the backup, copies alone and fewer, stays out
        b"/p/Takeout/IMG_1.HEIC", b"/p/Takeout/IMG_1.MP4", b"/p/iPhone/IMG_1.AAE", b"/p/iPhone/IMG_1.HEIC",
        b"/p/iPhone/IMG_1.MOV"]
    assert planned.left_out["exact copies"] == 2


def test_another_file_in_the_tree_is_never_taken_for_ours():
    library = files((1, b"a/IMG_1.JPG", DAY, None), (2, b"b/IMG_1.JPG", DAY, None))
    theirs = pl.DataFrame([("Fotos/2021", b"IMG_1.JPG", 999, 1)], schema=EXISTING_SCHEMA, orient="row")
    assert target_folders(library, "Fotos/{year}", b"/t") == ["Fotos/2021"]
    assert plan(library, theirs, "Fotos/{year}") == {
        b"/p/a/IMG_1.JPG": b"/t/Fotos/2021/IMG_1 (2).JPG", b"/p/b/IMG_1.JPG": b"/t/Fotos/2021/IMG_1 (3).JPG"}


def test_after_a_move_the_copy_in_the_tree_stands_for_its_content_and_an_identical_one_stays_out():
    """A move makes the tree one of the catalog's folders; a byte copy left behind in the photo
    folder (which sorts first) is not organized beside it as `IMG_1 (2).JPG`."""
    library = files((1, b"a/IMG_1.JPG", DAY, None), (2, b"b/IMG_1.JPG", DAY, None)).with_columns(checksum=pl.lit("c"))
    moved = library.with_columns(source_root=pl.when(pl.col("id") == 2).then(pl.lit("/t")).otherwise("source_root"),
                                 path=pl.when(pl.col("id") == 2).then(b"2021/2021-05-03/IMG_1.JPG").otherwise("path"))
    tree = pl.DataFrame([("2021/2021-05-03", b"IMG_1.JPG", 12, 1)], schema=EXISTING_SCHEMA, orient="row")
    assert plan(moved, tree) == {}
    planned = plan_organize(moved, tree, DEFAULT_TEMPLATE, b"/t", move=True)
    assert planned.left_out["exact copies"] == 1
    assert planned.in_place["source"].to_list() == [b"/t/2021/2021-05-03/IMG_1.JPG"]


def test_only_the_date_fields_and_folders_inside_the_tree_make_a_template():
    assert check_template("Fotos/{year}/{month}") == "Fotos/{year}/{month}"
    for bad in ("{camera}/{year}", "{year!r}", "{year:>6}", "/{year}", "{year}/../x", "{year"):
        with pytest.raises(ValueError):
            check_template(bad)
