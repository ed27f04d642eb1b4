"""Perceptual hashes with imagehash's definitions (dhash, average_hash, whash, phash; hash_size 8).

imagehash is the field's reference and our test oracle. These functions repeat its definitions
on an image that imaging.py has already decoded once, so all four hashes (and the thumbnail)
come from one read and one reduced-scale decode of each file. Hashes are 16 hex digits: the 64
bits row-major, most significant first, as imagehash prints."""

import hashlib
from collections.abc import Sequence

import numpy as np
import pywt
import scipy.fft
from numpy.typing import NDArray
from PIL import Image

HASH_SIZE = 8
# Bump when these definitions change: hashes of two versions are recomputed, never compared.
HASH_ALGORITHM = "imagehash-4.3-defs/v2"
# Distinct block means of 8-bit pixels differ by at least 1 / (255 * 32 * 32) (4e-6), and
# imagehash's rounding errors are under 1e-13: below this gap a block ties with the median.
WHASH_TIE = 1e-9


def hash_version(fixtures: Sequence[Image.Image]) -> str:
    """HASH_ALGORITHM and a short digest of the four hashes of `fixtures`, recorded with every
    hash. A Pillow, PyWavelets or SciPy release can shift resampling or decoding and so move
    bits; the fixtures' hashes show whether this one does, so only a release that changes
    results changes the version (and has the library's hashes recomputed)."""
    functions = (compute_dhash, compute_ahash, compute_whash, compute_phash)
    hashes = " ".join(compute(image) for image in fixtures for compute in functions)
    return f"{HASH_ALGORITHM}; fixtures {hashlib.sha256(hashes.encode()).hexdigest()[:12]}"


def _to_hex(bits: NDArray[np.bool_]) -> str:
    return np.packbits(bits.ravel()).tobytes().hex()


def compute_dhash(image: Image.Image, hash_size: int = HASH_SIZE) -> str:
    """Difference hash: is each pixel brighter than its left neighbour (imagehash.dhash)."""
    small = np.asarray(image.convert("L").resize((hash_size + 1, hash_size), Image.Resampling.LANCZOS))
    return _to_hex(small[:, 1:] > small[:, :-1])


def compute_ahash(image: Image.Image, hash_size: int = HASH_SIZE) -> str:
    """Average hash: is each pixel brighter than the mean (imagehash.average_hash)."""
    small = np.asarray(image.convert("L").resize((hash_size, hash_size), Image.Resampling.LANCZOS))
    return _to_hex(small > small.mean())


def compute_whash(image: Image.Image, hash_size: int = HASH_SIZE) -> str:
    """Wavelet hash: Haar low band above its median, DC removed (imagehash.whash defaults).

    The image is resized to the largest power of two not above its short side, so the result depends
    on the decoded size: a reduced decode can differ by a bit or two from a full-size one.

    imagehash decomposes the image fully, zeroes the lowest band, recomposes it and decomposes
    it again. Its low band is then each block's mean less the image's mean, times a constant,
    and removing the same amount from every block moves none past the median: the bits are the
    block means above their median, taken here directly (0.1 ms where PyWavelets' three
    transforms take 7 of a file's 30). Only a tie at the median is decided by imagehash's
    rounding errors; then its own steps run."""
    scale = max(2 ** int(np.log2(min(image.size))), hash_size)
    pixels = np.asarray(image.convert("L").resize((scale, scale), Image.Resampling.LANCZOS)) / 255.0
    block = scale // hash_size
    low_band = pixels.reshape(hash_size, block, hash_size, block).mean(axis=(1, 3))
    if np.abs(low_band - np.median(low_band)).min() < WHASH_TIE:
        low_band = _imagehash_low_band(pixels, hash_size)
    return _to_hex(low_band > np.median(low_band))


def _imagehash_low_band(pixels: NDArray[np.float64], hash_size: int) -> NDArray[np.float64]:
    max_level = int(np.log2(pixels.shape[0]))
    coefficients = pywt.wavedec2(pixels, "haar", level=max_level)
    coefficients[0] *= 0  # drop the lowest frequency (overall brightness), as imagehash does
    pixels = pywt.waverec2(coefficients, "haar")
    return pywt.wavedec2(pixels, "haar", level=max_level - int(np.log2(hash_size)))[0]


def compute_phash(image: Image.Image, hash_size: int = HASH_SIZE) -> str:
    """Perceptual hash: the lowest 8 x 8 frequencies of a 32 x 32 type-II DCT above their
    median (imagehash.phash, after Krawetz's "Looks Like It").

    It describes the image's large shapes, which re-encoding, resizing, exposure changes
    and small crops keep, with bits that are not correlated with ahash's brightness mask:
    the second opinion that tells apart two scenes of one layout (a sky over a horizon)."""
    size = hash_size * 4
    pixels = np.asarray(image.convert("L").resize((size, size), Image.Resampling.LANCZOS), dtype=np.float64)
    low = np.asarray(scipy.fft.dct(scipy.fft.dct(pixels, axis=0), axis=1))[:hash_size, :hash_size]
    return _to_hex(low > np.median(low))


def hamming_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
