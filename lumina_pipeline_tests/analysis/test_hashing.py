import subprocess
import sys

import imagehash
import numpy as np
import pytest
import pywt
import scipy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageDraw

from lumina_pipeline.analysis.hashing import (
    HASH_ALGORITHM,
    compute_ahash,
    compute_dhash,
    compute_phash,
    compute_whash,
    hamming_distance,
    hash_version,
)
from lumina_pipeline.analysis.imaging import decode_photo
from lumina_pipeline.analysis.photos import ANALYSIS_VERSION, FIXTURES, HASH_VERSION

OURS_AND_REFERENCE = [
    (compute_dhash, imagehash.dhash),
    (compute_ahash, imagehash.average_hash),
    (compute_whash, imagehash.whash),
    (compute_phash, imagehash.phash),
]


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(8, 70), st.integers(8, 70), st.just(3))))
def test_hashes_equal_imagehash_on_the_same_image(pixels):
    image = Image.fromarray(pixels)
    for ours, reference in OURS_AND_REFERENCE:
        assert ours(image) == str(reference(image))


def test_hashes_equal_imagehash_on_every_decoded_corpus_photo(corpus):
    for record in corpus.files(expected_status="ok"):
        image = decode_photo(open(corpus.real_path(record), "rb").read()).image
        for ours, reference in OURS_AND_REFERENCE:
            assert ours(image) == str(reference(image)), (record["path"], ours.__name__)


def test_reduced_decode_stays_within_one_bit_of_full_size_reference(corpus):
    for record in corpus.files(expected_status="ok"):
        image = decode_photo(open(corpus.real_path(record), "rb").read()).image
        ours = {"dhash": compute_dhash(image), "ahash": compute_ahash(image), "whash": compute_whash(image)}
        for name, reference in record["reference_hashes"].items():
            assert hamming_distance(ours[name], reference) <= 1, (record["path"], name)


def test_small_rotation_keeps_dhash_close_and_a_quarter_turn_does_not(corpus):
    record = corpus.files(path="Misc/CIMG0017.JPG")[0]
    image = decode_photo(open(corpus.real_path(record), "rb").read()).image
    assert hamming_distance(compute_dhash(image), compute_dhash(image.rotate(1))) <= 10
    assert hamming_distance(compute_dhash(image), compute_dhash(image.rotate(90, expand=True))) > 10


def test_hashes_equal_imagehash_where_the_median_meets_ties():
    # a flat image's DCT is zero but for one coefficient; most of a night sky's blocks are black
    images = [Image.new("L", (40, 30), value) for value in (0, 128, 255)]
    images += [Image.linear_gradient("L"), Image.radial_gradient("L").resize((70, 20))]
    night = Image.new("L", (600, 400))
    ImageDraw.Draw(night).ellipse((250, 150, 350, 250), fill=230)
    for image in [*images, night]:
        for ours, reference in OURS_AND_REFERENCE:
            assert ours(image) == str(reference(image)), ours.__name__


def test_hashes_are_sixteen_hex_digits():
    image = Image.linear_gradient("L").resize((40, 30))
    for ours, _ in OURS_AND_REFERENCE:
        value = ours(image)
        assert len(value) == 16 and int(value, 16) >= 0


@pytest.mark.parametrize(("a", "b", "distance"), [("0" * 16, "f" * 16, 64), ("00ff", "00fe", 1), ("ab", "ab", 0)])
def test_hamming_distance_counts_differing_bits(a, b, distance):
    assert hamming_distance(a, b) == distance


def fixture_images() -> list[Image.Image]:
    return [decode_photo(path.read_bytes()).image for path in sorted(FIXTURES.iterdir())]


def test_versions_name_no_library_release_and_are_the_same_in_every_process():
    printed = "from lumina_pipeline.analysis.photos import ANALYSIS_VERSION; print(ANALYSIS_VERSION)"
    again = subprocess.run([sys.executable, "-c", printed], capture_output=True, text=True, check=True).stdout.strip()
    assert again == ANALYSIS_VERSION
    assert HASH_VERSION in ANALYSIS_VERSION and HASH_VERSION.startswith(HASH_ALGORITHM)
    for release in (Image.__version__, pywt.__version__, scipy.__version__):
        assert release not in ANALYSIS_VERSION


def test_the_hash_version_follows_what_the_fixtures_hash_to():
    fixtures = fixture_images()
    assert hash_version(fixtures) == hash_version(fixture_images()) == HASH_VERSION
    mirrored = [fixtures[0].transpose(Image.Transpose.FLIP_LEFT_RIGHT), *fixtures[1:]]  # as if a release moved bits
    assert hash_version(mirrored) != HASH_VERSION
