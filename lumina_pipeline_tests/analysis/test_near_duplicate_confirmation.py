"""The pHash confirmation of near-duplicates, on drawn scenes that share one layout (sky,
hills, sun: sample.draw_scene), where ahash and whash alone cannot tell scenes apart."""

import polars as pl
from PIL import Image

from lumina_pipeline.analysis.duplicates import GROUPING_SCHEMA, NearDuplicateRule, group_catalog
from lumina_pipeline.analysis.hashing import compute_ahash, compute_dhash, compute_phash, compute_whash
from lumina_pipeline.sample import draw_scene

SIZE = (600, 400)


def row(id_: int, image: Image.Image, *, with_phash: bool = True) -> dict:
    grey = image.convert("L")
    return {
        "id": id_, "path": f"photos/{id_}.jpg", "checksum": f"c{id_}", "size_bytes": 10,
        "pixels": image.width * image.height, "quality_score": 50, "richness": 3, "captured_at": None,
        "dhash": compute_dhash(grey), "ahash": compute_ahash(grey), "whash": compute_whash(grey),
        "phash": compute_phash(grey) if with_phash else None, "kind": "image",
        "stack_id": None, "stack_primary": None, "burst_id": None,
    }


def grouped_ids(rows: list[dict]) -> set[tuple[int, ...]]:
    members, _ = group_catalog(pl.DataFrame(rows, schema=GROUPING_SCHEMA), NearDuplicateRule())
    return {tuple(ids) for _, ids in members.group_by("group_key").agg(pl.col("id").sort()).iter_rows()}


def test_two_scenes_of_one_layout_are_told_apart_by_phash():
    # scenes 20 and 31 differ in 5 bits of ahash and 4 of whash, but in 38 of pHash and 33 of dhash
    first, second = draw_scene(20, size=SIZE), draw_scene(31, size=SIZE)
    assert grouped_ids([row(1, first), row(2, second)]) == set()
    # hashed before pHash was stored, the hash-only rule takes them for one picture
    assert grouped_ids([row(1, first, with_phash=False), row(2, second, with_phash=False)]) == {(1, 2)}


def test_a_crop_that_moves_ahash_past_the_search_radius_is_found_by_whash_and_kept():
    scene = draw_scene(5, size=SIZE)
    cropped = scene.crop((36, 24, *SIZE))  # 6% off the left and top: 6 bits of ahash, 4 of whash, 8 of pHash
    assert grouped_ids([row(1, scene), row(2, cropped)]) == {(1, 2)}
    assert grouped_ids([row(1, scene, with_phash=False), row(2, cropped, with_phash=False)]) == set()


def test_a_resized_re_encoded_copy_is_kept():
    scene = draw_scene(7, size=SIZE)
    smaller = scene.resize((300, 200), Image.Resampling.LANCZOS)
    assert grouped_ids([row(1, scene), row(2, smaller), row(3, draw_scene(8, size=SIZE))]) == {(1, 2)}
