"""Pairs of 64-bit hashes within a Hamming distance, without comparing all pairs.

Multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in Hamming Space with
Multi-Index Hashing", CVPR 2012): split the 64 bits into m chunks. If two hashes differ in
at most t bits, then by pigeonhole some chunk differs in at most floor(t / m) bits; with
m = t // 2 + 1 chunks (at least 3) that is at most 1 bit. So each hash looks up, in every chunk, the
bucket of its own chunk value and of the values one bit away, and only those candidates
are verified with a vectorized popcount. Written here because no maintained Python
library does Hamming-radius joins over millions of 64-bit keys.
"""

from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

MIN_CHUNKS = 3  # chunks of at most 22 bits: bucket tables of at most 4M entries


def hamming(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> NDArray[np.uint8]:
    return np.bitwise_count(a ^ b)


def pairs_within(keys: NDArray[np.uint64], max_distance: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Index pairs (i < j) whose keys differ in at most `max_distance` bits, each once."""
    count = len(keys)
    chunk_count = max(max_distance // 2 + 1, MIN_CHUNKS)
    bounds = np.linspace(0, 64, chunk_count + 1).astype(int)
    found = [np.empty(0, dtype=np.int64)]
    for low, high in pairwise(bounds):
        bits = int(high - low)
        chunk = ((keys >> np.uint64(low)) & np.uint64((1 << bits) - 1)).astype(np.int32)
        order = np.argsort(chunk, kind="stable").astype(np.int32)
        sizes = np.bincount(chunk, minlength=1 << bits).astype(np.int32)
        starts = (np.cumsum(sizes, dtype=np.int64) - sizes).astype(np.int32)
        for flip in [0, *(1 << b for b in range(bits))]:
            # a pair one bit apart is found from the side where that bit is 0 only
            queries = np.arange(count, dtype=np.int32) if flip == 0 else np.flatnonzero((chunk & flip) == 0)
            probe = chunk[queries] ^ flip
            i, j = _bucket_members(queries, order, starts[probe], sizes[probe])
            i, j = np.minimum(i, j), np.maximum(i, j)
            close = (i < j) & (hamming(keys[i], keys[j]) <= max_distance)
            found.append(i[close].astype(np.int64) * count + j[close])
    unique = np.unique(np.concatenate(found))
    return unique // count, unique % count


def _bucket_members(queries, order, starts, sizes) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Pair each query with every member of its bucket (order[start:start + size])."""
    total = int(sizes.sum())
    offsets = np.arange(total, dtype=np.int32) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.repeat(queries, sizes), order[np.repeat(starts, sizes) + offsets]
