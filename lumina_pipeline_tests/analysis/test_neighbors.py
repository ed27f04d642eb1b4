import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lumina_pipeline.analysis.neighbors import hamming, pairs_within


def brute_force(keys, max_distance):
    i, j = np.triu_indices(len(keys), 1)
    close = hamming(keys[i], keys[j]) <= max_distance
    return set(zip(i[close].tolist(), j[close].tolist(), strict=True))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 300), st.integers(0, 6))
def test_finds_exactly_the_pairs_brute_force_finds(seed, count, max_distance):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2**63, count, dtype=np.uint64)
    copies = rng.integers(0, count, count // 3)  # plant near copies with a few flipped bits
    flips = rng.integers(0, 64, (len(copies), max_distance + 1)).astype(np.uint64)
    keys[rng.integers(0, count, len(copies))] = keys[copies] ^ np.bitwise_or.reduce(np.uint64(1) << flips, axis=1)
    i, j = pairs_within(keys, max_distance)
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == brute_force(keys, max_distance)
    assert (i < j).all()
