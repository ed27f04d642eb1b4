"""A small sample library made on the spot, for `make run` without PHOTOS.

Freely usable by construction: the scenes are drawn here. It holds what the pipeline looks
for: two cameras with EXIF dates and GPS, an exact copy, a resized copy, a three-shot
burst, a PNG export and one truncated file.
"""

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

SCENES = 8
SIZE = (1200, 800)


def draw_scene(seed: int, shift: int = 0, size: tuple[int, int] = SIZE) -> Image.Image:
    """Sky, hills and a sun: smooth, photo-like structure that perceptual hashes can see."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    sky = np.stack([90 + 80 * y / height, 140 + 60 * y / height, 230 - 40 * y / height], axis=-1)
    horizon = height * (0.55 + 0.15 * np.sin(x / width * rng.uniform(2, 9) + rng.uniform(0, 6)))
    ground = np.array(rng.uniform(40, 160, size=3), dtype=np.float32)
    pixels = np.where((y > horizon)[..., None], ground * (0.6 + 0.4 * y / height)[..., None], sky)
    cx, cy = rng.uniform(0.15, 0.85) * width + shift, rng.uniform(0.1, 0.4) * height
    sun = ((x - cx) ** 2 + (y - cy) ** 2) < (rng.uniform(40, 110) ** 2)
    pixels[sun] = rng.uniform(200, 255, size=3)
    noise = rng.normal(0, 4, size=pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


def camera_exif(make: str, model: str, taken: datetime, subsec: str, position: tuple[float, float]) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = make, model
    exif[ExifTags.Base.DateTime] = taken.strftime("%Y:%m:%d %H:%M:%S")
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = taken.strftime("%Y:%m:%d %H:%M:%S")
    details[ExifTags.Base.SubsecTimeOriginal] = subsec
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    for value, tag, ref, signs in ((position[0], 2, 1, "NS"), (position[1], 4, 3, "EW")):
        degrees = abs(value)
        gps[tag] = (int(degrees), int(degrees * 60 % 60), round(degrees * 3600 % 60, 2))
        gps[ref] = signs[value < 0]
    return exif


def make_sample(folder: Path) -> Path:
    """Write the sample under `folder` (idempotent: existing files are left as they are)."""
    if folder.exists():
        return folder
    for sub in ("2023 Holiday", "2023 Holiday/burst", "Phone", "Exports", "Backup"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    start = datetime(2023, 7, 14, 9, 30)
    for scene in range(SCENES):
        camera = ("Lumina", "Sample One") if scene % 2 else ("Lumina", "Pocket Two")
        exif = camera_exif(*camera, start + timedelta(hours=scene), "0", (43.77 + scene / 100, 11.25))
        draw_scene(scene).save(folder / f"2023 Holiday/IMG_{1000 + scene}.jpg", quality=90, exif=exif)
    for frame in range(3):  # three shots 0.4 s apart: a burst
        taken = start + timedelta(days=1, milliseconds=400 * frame)
        exif = camera_exif("Lumina", "Sample One", taken, f"{taken.microsecond // 1000:03d}", (43.7, 11.3))
        frame_path = folder / f"2023 Holiday/burst/IMG_{2000 + frame}.jpg"
        draw_scene(99, shift=6 * frame).save(frame_path, quality=90, exif=exif)
    original = folder / "2023 Holiday/IMG_1000.jpg"
    (folder / "Backup/IMG_1000.jpg").write_bytes(original.read_bytes())
    with Image.open(original) as image:
        image.resize((600, 400)).save(folder / "Phone/IMG_1000_small.jpg", quality=80)
        image.save(folder / "Exports/IMG_1000.png")
    (folder / "Phone/broken.jpg").write_bytes(original.read_bytes()[:4000])
    return folder
