import hashlib
import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumina_pipeline.analysis.duplicates import (
    GROUPING_SCHEMA,
    OTHER_SHOT_SCORE,
    KeeperRule,
    NearDuplicateRule,
    group_catalog,
    reclaimable_bytes,
    too_flat,
)
from lumina_pipeline.analysis.neighbors import hamming

RULE = NearDuplicateRule()


def image(id_, ahash, dhash=None, whash=None, *, checksum=None, pixels=100, quality=50, path=None, size=10,
          richness=3, kind="image", stack=None, stack_primary=None, burst=None, captured_at=None):
    dhash = ahash if dhash is None else dhash
    whash = ahash if whash is None else whash
    return {
        "id": id_, "path": path or f"photos/{id_:03d}.jpg", "checksum": checksum or f"c{id_}",
        "size_bytes": size, "pixels": pixels, "quality_score": quality, "richness": richness,
        "captured_at": captured_at,
        "dhash": f"{dhash:016x}", "ahash": f"{ahash:016x}", "whash": f"{whash:016x}", "kind": kind,
        "stack_id": stack, "stack_primary": None if stack is None else bool(stack_primary), "burst_id": burst,
    }


def frame(rows):
    return pl.DataFrame(rows, schema=GROUPING_SCHEMA)


def groups_as_sets(rows, rule=RULE):
    members, groups = group_catalog(frame(rows), rule)
    by_key = members.group_by("group_key").agg(pl.col("id").sort())
    primary = dict(groups.select("group_key", "primary_id").iter_rows())
    return {(tuple(ids), primary[key]) for key, ids in by_key.iter_rows()}


def flip(value, *bits):
    for bit in bits:
        value ^= 1 << bit
    return value


BASE = 0x0F0F_3C3C_A5A5_7E7E


def test_exact_copies_form_an_exact_group_with_the_avoided_folder_losing():
    rows = [image(1, BASE, checksum="same", path="Backup/a.jpg"), image(2, BASE, checksum="same", path="Library/a.jpg")]
    members, groups = group_catalog(frame(rows), RULE)
    exact = groups.filter(pl.col("similarity_type") == "exact")
    assert exact["primary_id"].to_list() == [2] and exact["confidence"].to_list() == [100]


def test_empty_files_are_no_copies_of_each_other():
    empty = hashlib.sha256(b"").hexdigest()
    rows = [image(1, BASE, checksum=empty, size=0), image(2, BASE, checksum=empty, size=0)]
    assert group_catalog(frame(rows), RULE)[1].is_empty()


def test_between_copies_tied_on_every_key_the_file_cataloged_first_is_kept_wherever_it_lies():
    rows = [image(1, BASE, checksum="same", path="2008/b.jpg"), image(2, BASE, checksum="same", path="2008/a.jpg")]
    for moved in (rows, [{**rows[0], "path": "tidy/z.jpg"}, rows[1]]):
        _, groups = group_catalog(frame(moved), RULE)
        assert groups["primary_id"].to_list() == [1]


def test_another_shot_of_the_scene_groups_with_a_confidence_no_bulk_accept_reaches():
    shot, next_shot = "2019-07-14T10:15:03.480", "2019-07-14T10:15:04.013"
    rows = [image(1, BASE, captured_at=shot, pixels=400), image(2, flip(BASE, 1), captured_at=next_shot),
            image(3, flip(BASE, 2), captured_at=shot),  # an edit keeps the capture time
            image(4, flip(BASE, 3)),  # a copy sent by a messenger loses it
            image(5, flip(BASE, 4), captured_at=shot[:19]),  # an export its sub-seconds alone
            image(6, flip(BASE, 5), captured_at=shot[:22])]  # another writer its last zero
    members, groups = group_catalog(frame(rows), RULE)
    assert groups["primary_id"].to_list() == [1] and groups["confidence"].to_list() == [OTHER_SHOT_SCORE]
    alike = dict(zip(members["id"], members["similarity_score"], strict=True))
    assert alike == {1: 100, 2: OTHER_SHOT_SCORE, 3: 97, 4: 97, 5: 97, 6: 97}


def test_near_copy_joins_and_the_bigger_image_is_primary():
    rows = [image(1, BASE, pixels=100), image(2, flip(BASE, 1, 2), pixels=400), image(3, ~BASE & (2**64 - 1))]
    assert groups_as_sets(rows) == {((1, 2), 2)}


def test_of_two_copies_alike_but_for_compression_the_less_compressed_is_kept():
    saved_again = image(1, BASE, path="IMG_1-q40.jpg", size=203_000)  # cataloged first, all else equal
    assert groups_as_sets([saved_again, image(2, flip(BASE, 1), path="IMG_1.jpg", size=511_000)]) == {((1, 2), 2)}


def test_a_camera_raw_is_kept_over_a_bigger_export_though_only_its_small_preview_decodes():
    raw, export = image(1, BASE, pixels=320 * 213, kind="raw", path="Kamera/1.DNG"), image(2, BASE, pixels=10**7)
    assert groups_as_sets([raw, export]) == {((1, 2), 1)}


def test_photos_are_never_chained_through_a_middle_one():
    a, b, c = BASE, flip(BASE, 1, 2, 3, 4), flip(BASE, 1, 2, 3, 4, 5, 6, 7, 8)  # a~b, b~c, a far from c
    groups = groups_as_sets([image(1, a, quality=90), image(2, b, quality=80), image(3, c, quality=70)])
    assert groups == {((1, 2), 1)}


def test_flat_images_are_left_out_and_counted():
    rows = [image(1, 0), image(2, 0), image(3, BASE)]
    members, _ = group_catalog(frame(rows), RULE)
    assert members.is_empty() and too_flat(frame(rows)) == 2


def test_keeping_only_primaries_frees_the_other_copies():
    rows = [image(1, BASE, checksum="x", size=5), image(2, BASE, checksum="x", size=5, path="Backup/x.jpg"),
            image(3, flip(BASE, 3), pixels=50, size=7)]
    members, groups = group_catalog(frame(rows), RULE)
    sizes = frame(rows).select("id", "size_bytes")
    assert reclaimable_bytes(members, groups.rename({"primary_id": "primary_image_id"}), sizes) == 5 + 7


def test_a_sidecar_keeps_the_copy_it_describes_but_never_outweighs_pixels_or_metadata():
    """A photo alone with its sidecar is a stack of one photo: a shot of several outranks it,
    its sidecar decides between exact copies only, after pixels and metadata."""
    def sidecar(id_, stack):
        return {**image(id_, 0), "kind": "sidecar", "checksum": None, "dhash": None, "ahash": None, "whash": None,
                "pixels": None, "stack_id": stack, "stack_primary": False}

    exact = [image(1, BASE, checksum="same"), image(2, BASE, checksum="same", stack="s", stack_primary=True),
             sidecar(3, "s")]
    other = 0x1234_5678_9ABC_DEF0  # another picture
    crop = [image(4, flip(other, 1), pixels=90, stack="t", stack_primary=True), sidecar(5, "t"),
            image(6, other, pixels=100)]
    stripped = [image(7, flip(BASE, 9), richness=1, stack="u", stack_primary=True), sidecar(8, "u"),
                image(9, flip(BASE, 9), richness=9)]
    assert groups_as_sets(exact + crop) == {((1, 2), 2), ((4, 6), 6)}
    assert groups_as_sets(stripped) == {((7, 9), 9)}
    # a Google Takeout export's .json is no edit of a person's: the library's own copy is kept
    takeout = [image(10, BASE, checksum="same", path="Pictures/IMG_1.jpg"),
               image(11, BASE, checksum="same", path="Takeout/Google Photos/IMG_1.jpg", stack="v", stack_primary=True),
               {**sidecar(12, "v"), "path": "Takeout/Google Photos/IMG_1.jpg.supplemental-metadata.json"}]
    assert groups_as_sets(takeout) == {((10, 11), 10)}


def test_the_files_of_a_stack_are_never_duplicates_and_a_copy_of_the_stack_groups_with_it():
    shot = [image(1, BASE, path="A/1.JPG", stack="s", stack_primary=True),
            image(2, BASE, path="A/1.DNG", kind="raw", pixels=50, stack="s"),
            image(3, flip(BASE, 1), path="A/1.MOV", kind="video", stack="s", checksum="clip")]
    backup = [image(4, BASE, path="B/1.JPG", checksum="c1", stack="t", stack_primary=True),
              image(5, flip(BASE, 1), path="B/1.MOV", kind="video", stack="t", checksum="clip")]
    assert groups_as_sets(shot) == set()
    # the backup's JPEG and video are exact copies of the stack's, kept in the same stack
    assert groups_as_sets(shot + backup) == {((1, 4), 1), ((3, 5), 3)}


def test_two_frames_of_one_burst_are_never_near_duplicates_but_a_copy_of_one_is():
    frames = [image(1, BASE, burst="b", quality=90), image(2, flip(BASE, 1), burst="b", quality=80)]
    assert groups_as_sets(frames) == set()
    export = image(3, flip(BASE, 2), pixels=50, path="Exports/1.jpg")
    assert groups_as_sets([*frames, export]) == {((1, 3), 1)}


def test_videos_group_with_videos_only():
    still, video, copy = image(1, BASE), image(2, BASE, kind="video"), image(3, flip(BASE, 1), kind="video")
    assert groups_as_sets([still, video]) == set()
    assert groups_as_sets([still, video, copy]) == {((2, 3), 2)}


def test_the_original_with_its_metadata_is_kept_over_a_brighter_stripped_copy():
    original, brighter = image(1, BASE, richness=12, quality=40), image(2, BASE, richness=4, quality=60)
    assert groups_as_sets([original, brighter]) == {((1, 2), 1)}
    quality_first = KeeperRule(order=("quality", "metadata"))
    members, groups = group_catalog(frame([original, brighter]), RULE, quality_first)
    assert groups["primary_id"].to_list() == [2]


def test_the_format_preference_decides_between_otherwise_equal_files():
    jpeg, heic = image(1, BASE, path="a.jpg"), image(2, BASE, path="b.HEIC")
    assert groups_as_sets([jpeg, heic]) == {((1, 2), 2)}
    members, groups = group_catalog(frame([jpeg, heic]), RULE, KeeperRule(formats=("jpeg", "heic")))
    assert groups["primary_id"].to_list() == [1]


def test_an_unknown_keeper_key_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown keeper keys \\['sharpness'\\]"):
        KeeperRule(order=("pixels", "sharpness"))


hashes = st.integers(0, 2**64 - 1)


@st.composite
def catalogs(draw):
    seeds = draw(st.lists(hashes, min_size=1, max_size=6))
    rows = []
    for seed in seeds:
        for _ in range(draw(st.integers(1, 4))):
            bits = draw(st.lists(st.integers(0, 63), max_size=8))
            dbits = draw(st.lists(st.integers(0, 63), max_size=12))
            rows.append(image(len(rows) + 1, flip(seed, *bits), flip(seed, *dbits), flip(seed, *bits[:3]),
                              quality=draw(st.integers(0, 100))))
    return rows


@settings(max_examples=60, deadline=None)
@given(catalogs(), st.randoms())
def test_grouping_does_not_depend_on_input_order(rows, random):
    shuffled = list(rows)
    random.shuffle(shuffled)
    assert groups_as_sets(rows) == groups_as_sets(shuffled)


@settings(max_examples=60, deadline=None)
@given(catalogs())
def test_every_pair_inside_a_near_group_satisfies_the_rule(rows):
    members, _ = group_catalog(frame(rows), RULE)
    by_id = {row["id"]: row for row in rows}
    for _, ids in members.group_by("group_key").agg("id").iter_rows():
        for a, b in itertools.combinations(ids, 2):
            pair = np.array(
                [[int(by_id[x][name], 16) for name in ("dhash", "ahash", "whash")] for x in (a, b)], dtype=np.uint64
            )
            assert RULE.matches(hamming(pair[:1], pair[1:]))[0], (a, b)
