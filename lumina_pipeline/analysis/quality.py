"""A 0-100 quality score for choosing the best frame of a burst or the keeper of a group."""

import numpy as np
from PIL import Image

SHARPNESS_FULL_SCALE = 1000.0  # Laplacian variance of crisp detail at 256 px scale
SCALE_SHORT_SIDE = 256


def quality_score(grey: Image.Image) -> int:
    """Sharpness and exposure of a greyscale image, measured at a short side of 256 px so
    that photos of different sizes compare fairly.

    sharpness = min(1, log(1 + v) / log(1 + 1000)), v the variance of the 4-neighbour
                Laplacian of the grey image (Pech-Pacheco et al., 2000): blur lowers it;
    exposure  = (1 - |mean - 127.5| / 127.5) * (1 - clipped), clipped the share of pixels
                at 0-3 or 252-255: dark, washed-out and blown images lose;
    score     = round(100 * (0.7 * sharpness + 0.3 * exposure))."""
    scale = SCALE_SHORT_SIDE / min(grey.size)
    if scale < 1:
        grey = grey.resize((round(grey.width * scale), round(grey.height * scale)), Image.Resampling.BILINEAR)
    pixels = np.asarray(grey, dtype=np.float32)
    if min(pixels.shape) < 3:
        return 0
    laplacian = pixels[:-2, 1:-1] + pixels[2:, 1:-1] + pixels[1:-1, :-2] + pixels[1:-1, 2:] - 4 * pixels[1:-1, 1:-1]
    sharpness = min(1.0, np.log1p(laplacian.var()) / np.log1p(SHARPNESS_FULL_SCALE))
    clipped = np.mean((pixels <= 3) | (pixels >= 252))
    exposure = (1 - abs(pixels.mean() - 127.5) / 127.5) * (1 - clipped)
    return int(round(100 * (0.7 * sharpness + 0.3 * exposure)))
