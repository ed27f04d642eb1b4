from datetime import datetime, timedelta
from itertools import pairwise

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from lumina_pipeline.analysis.bursts import SELECTION_METHOD, SHOTS_SCHEMA, BurstRule, find_bursts, group_bursts

START = datetime(2021, 12, 24, 18, 40, 58)
DEFAULT_RULE = BurstRule()


def shot(id_, seconds, *, model="E950", checksum=None, quality=50, kind="image", serial=None, stack=None,
         pixels=24_000_000, timespec="milliseconds"):
    taken = (START + timedelta(seconds=seconds)).isoformat(timespec=timespec) if seconds is not None else None
    return {"id": id_, "checksum": checksum or f"c{id_}", "kind": kind,
            "captured_at": taken, "camera_make": "NIKON", "camera_model": model, "camera_serial": serial,
            "quality_score": quality, "pixels": pixels, "stack_id": stack}


def bursts_of(rows, rule=DEFAULT_RULE):
    frames = find_bursts(pl.DataFrame(rows, schema=SHOTS_SCHEMA), rule)
    grouped = (
        frames.sort("sequence").group_by("burst_key", maintain_order=True).agg("id", best=pl.col("id").filter("best"))
    )
    return sorted((ids, best[0]) for _, ids, best in grouped.iter_rows())


def test_three_close_shots_are_a_burst_and_the_best_has_the_highest_quality():
    assert bursts_of([shot(1, 0, quality=10), shot(2, 0.5, quality=90), shot(3, 1.4, quality=50)]) == [([1, 2, 3], 2)]


def test_a_gap_longer_than_two_seconds_ends_the_burst():
    assert bursts_of([shot(1, 0), shot(2, 1), shot(3, 3.5), shot(4, 4), shot(5, 4.5)]) == [([3, 4, 5], 3)]


def test_two_shots_are_too_few():
    assert bursts_of([shot(1, 0), shot(2, 1)]) == []


def test_another_camera_at_the_same_instants_is_not_part_of_the_burst():
    rows = [shot(1, 0), shot(2, 0.5), shot(3, 1), shot(4, 0.5, model="E995"), shot(5, 1, model="E995")]
    assert bursts_of(rows) == [([1, 2, 3], 1)]


def test_a_different_body_serial_is_another_camera():
    rows = [shot(1, 0, serial="A"), shot(2, 0.5, serial="B"), shot(3, 1, serial="A")]
    assert bursts_of(rows) == []


def test_byte_identical_copies_and_the_files_of_a_stack_count_as_one_shot():
    copies = [shot(1, 0), shot(2, 0, checksum="c1"), shot(3, 0.5)]
    assert bursts_of(copies) == []
    imported_later = [shot(1, 0), shot(2, 1), shot(3, 2), shot(9, 0, checksum="c1")]
    assert bursts_of(imported_later) == [([1, 2, 3], 1)]  # the frame stays the file cataloged first
    twins = [shot(1, 0, stack="s"), shot(2, 0, kind="raw", stack="s"), shot(3, 1),
             shot(4, 1.5)]
    assert bursts_of(twins) == [([1, 3, 4], 1)]
    copy_of_a_twin = [*twins, shot(5, 0, checksum="c1")]
    assert bursts_of(copy_of_a_twin) == [([1, 3, 4], 1)]  # the stack's file, not the copy


def test_an_export_of_a_frame_is_not_a_shot_of_its_own_nor_the_best_frame():
    """A resized export keeps the frame's EXIF, sub-seconds included, and looks sharper."""
    export = shot(9, 0.5, pixels=250_000, quality=99)
    assert bursts_of([shot(1, 0), shot(2, 0.5), export]) == []
    assert bursts_of([shot(1, 0), shot(2, 0.5), export, shot(3, 1)]) == [([1, 2, 3], 1)]


def test_frames_of_one_recorded_time_are_distinct_shots_and_an_export_among_them_is_none():
    """A camera without sub-seconds (or writing the same ones each time) gives frames one time."""
    rows = [shot(1, 0, timespec="seconds"), shot(2, 0.3, timespec="seconds"), shot(3, 0.6, timespec="seconds")]
    assert bursts_of(rows) == [([1, 2, 3], 1)]
    export = shot(9, 0.3, timespec="seconds", pixels=250_000, quality=99)
    assert bursts_of([*rows, export]) == [([1, 2, 3], 1)]


def test_files_without_a_capture_time_never_join():
    assert bursts_of([shot(1, 0), shot(2, None), shot(3, 0.5)]) == []


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 30, allow_nan=False), min_size=0, max_size=12), st.randoms())
def test_bursts_do_not_depend_on_input_order_and_respect_the_gap(times, random):
    rows = [shot(index + 1, seconds) for index, seconds in enumerate(times)]
    shuffled = list(rows)
    random.shuffle(shuffled)
    found = bursts_of(rows)
    assert found == bursts_of(shuffled)
    when = {row["id"]: row["captured_at"] for row in rows}
    for ids, _ in found:
        assert len(ids) >= 3
        stamps = [datetime.fromisoformat(when[i]) for i in ids]
        assert all(0 <= (b - a).total_seconds() <= 2 for a, b in pairwise(stamps))


def test_only_read_files_with_the_shutters_time_join_and_the_best_frame_is_the_rules_choice():
    rows = [shot(1, 0, quality=10), shot(2, 0.5, quality=90), shot(3, 1), shot(4, 1.5), shot(5, 1.8)]
    status = ["ok", "ok", "ok", "error", "ok"]
    source = ["DateTimeOriginal"] * 4 + ["DateTime"]
    frame = pl.DataFrame(rows, schema=SHOTS_SCHEMA).with_columns(
        status=pl.Series(status), captured_at_source=pl.Series(source)
    )
    found = group_bursts(frame, BurstRule())
    assert found.members.sort("sequence")["id"].to_list() == [1, 2, 3]
    assert found.groups.select("image_count", "choice").row(0) == (3, 2)


def test_the_selection_method_says_who_chose_the_best_frame():
    chosen = pl.DataFrame({"chosen": [True, False]})
    assert chosen.select(SELECTION_METHOD)["selection_method"].to_list() == ["user", "quality_score"]
