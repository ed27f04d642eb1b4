"""Near-duplicate precision and recall on a generated library with planted variants, for
Lumina and for its peers on the same files: imagededup's PHash and DHash (near-duplicates),
jdupes and rmlint (exact copies). The peers are installed here when missing, never by
`make run`: imagededup into this virtualenv, jdupes and rmlint with apt-get where it can.

imagededup's hash methods need numpy, PyWavelets, SciPy, scikit-learn and tqdm, but its
packages' `__init__` modules also import its CNN method, which needs torchvision: PyPI's
torchvision wheels are linked against a CUDA build of torch and fail to import beside the CPU
build that `make` installs. So imagededup is installed without its dependencies and its
hashing module is imported without those `__init__` modules (imagededup_hashing)."""

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image, ImageEnhance

from benchmarks.foundation import make_photos
from benchmarks.scale import bare_rate
from benchmarks.scale import make_library as make_scale_library
from lumina_pipeline.analysis.duplicates import GROUPING_SCHEMA, NearDuplicateRule, group_catalog
from lumina_pipeline.analysis.photos import analyze_files
from lumina_pipeline.models.efficientnet import exported_network
from lumina_pipeline.sample import draw_scene

SIZE = (768, 512)
ORIGINALS = 2_400
PER_VARIANT = 120  # planted files of each kind, each from an original of its own
SEED = 11
WORKERS = 2  # processes for Lumina's per-file analysis; imagededup uses one per core
PEER_THRESHOLD = 10  # imagededup's default max_distance_threshold


def _reencode(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, int]:
    return image, int(rng.integers(45, 76))


def _resize(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, int]:
    scale = rng.uniform(0.3, 0.7)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS), 85


def _crop(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, int]:
    """Keep 93-98% of each side at a random place: a trimmed or straightened frame."""
    keep = rng.uniform(0.93, 0.98, 2) * image.size
    left, top = rng.uniform(0, 1, 2) * (image.size - keep)
    return image.crop((round(left), round(top), round(left + keep[0]), round(top + keep[1]))), 90


def _brightness(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, int]:
    return ImageEnhance.Brightness(image).enhance(rng.choice([-1, 1]) * rng.uniform(0.08, 0.2) + 1), 90


def draw_photo(scene: int) -> Image.Image:
    """A landscape (sample.draw_scene: sky, hills, sun) under coarse colour blotches, so that
    scenes share a layout, as a series of real photos does, but differ in their large shapes."""
    rng = np.random.default_rng(scene)
    blotches = Image.fromarray(rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)).resize(SIZE, Image.Resampling.BICUBIC)
    return Image.blend(draw_scene(10_000 + scene, size=SIZE), blotches, 0.35)


# each planted kind: how a variant is made from its original's pixels (None: a byte copy)
VARIANTS = {"copy": None, "re-encode": _reencode, "resize": _resize, "crop": _crop, "brightness": _brightness}


def plan_library(originals: int = ORIGINALS, per_variant: int = PER_VARIANT, seed: int = SEED) -> pl.DataFrame:
    """One row per file to write: name, scene (files of one scene are one picture), kind
    ('original' or a VARIANTS key) and the seed its edit draws from."""
    rng = np.random.default_rng(seed)
    sources = rng.choice(originals, (len(VARIANTS), per_variant), replace=False)
    planted = [
        {"scene": int(scene), "kind": kind} for kind, scenes in zip(VARIANTS, sources, strict=True) for scene in scenes
    ]
    files = pl.DataFrame([*({"scene": s, "kind": "original"} for s in range(originals)), *planted])
    return files.with_columns(
        name=pl.format("s{}_{}.jpg", pl.col("scene").cast(pl.String).str.zfill(5), pl.col("kind")),
        seed=pl.int_range(pl.len()) + seed * 1_000_000,
    ).sort("scene", "kind")


def make_library(folder: Path, files: pl.DataFrame, workers: int = 2) -> None:
    """Write `files` (plan_library) into `folder`, one scene per task on `workers` processes."""
    folder.mkdir(parents=True, exist_ok=True)
    scenes = files.partition_by("scene", maintain_order=True)
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_scene, [folder] * len(scenes), [s.to_dicts() for s in scenes], chunksize=32))


def _write_scene(folder: Path, files: list[dict]) -> None:
    """The scene's original (quality 90), then its variants."""
    original = next(f for f in files if f["kind"] == "original")
    image = draw_photo(original["scene"])
    image.save(folder / original["name"], quality=90)
    for planted in (f for f in files if f["kind"] != "original"):
        edit = VARIANTS[planted["kind"]]
        if edit is None:
            shutil.copyfile(folder / original["name"], folder / planted["name"])
        else:
            variant, quality = edit(image, np.random.default_rng(planted["seed"]))
            variant.save(folder / planted["name"], quality=quality)


def install_peers() -> list[str]:
    """Install what is missing of imagededup, jdupes and rmlint; what could not be, and why."""
    problems = []
    if importlib.util.find_spec("imagededup") is None:
        for packages in (["--no-deps", "imagededup"], ["tqdm", "scikit-learn"]):
            pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *packages],
                                 capture_output=True, text=True)
            if pip.returncode:
                problems.append(f"imagededup did not install: {pip.stderr.strip().splitlines()[-1:]}")
    missing = [tool for tool in ("jdupes", "rmlint") if shutil.which(tool) is None]
    if missing and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], capture_output=True)
    problems += [f"{tool} is not installed (apt-get install {tool})" for tool in missing if shutil.which(tool) is None]
    return problems


def lumina_analysis(library: Path, files: pl.DataFrame) -> tuple[float, pl.DataFrame]:
    """Lumina's per-file analysis (read, SHA-256, one reduced decode, EXIF, hashes, quality,
    thumbnail) of every file on WORKERS processes: its time and the rows grouping reads."""
    paths = [bytes(library / name) for name in files["name"]]
    chunks = [paths[start : start + 50] for start in range(0, len(paths), 50)]
    started = time.perf_counter()
    with ProcessPoolExecutor(WORKERS) as pool:
        analysis = pl.concat(pool.map(_analyze, chunks))
    seconds = time.perf_counter() - started
    rows = analysis.select(
        "checksum", "quality_score", "dhash", "ahash", "whash", "phash",
        id=pl.int_range(pl.len()), path=files["name"], size_bytes=pl.lit(0), richness=pl.lit(0),
        pixels=pl.col("width").cast(pl.Int64) * pl.col("height"), kind=pl.lit("image"),
    )
    return seconds, rows.with_columns(pl.lit(None).alias(name) for name in GROUPING_SCHEMA if name not in rows.columns)


def _analyze(paths: list[bytes]) -> pl.DataFrame:
    return analyze_files(paths, ["image"] * len(paths))


def lumina_pairs(rows: pl.DataFrame) -> tuple[float, pl.DataFrame]:
    """Every pair of files that Lumina's groups (exact and near) put together, and the time grouping took."""
    started = time.perf_counter()
    members, _ = group_catalog(rows.select(list(GROUPING_SCHEMA)).cast(GROUPING_SCHEMA), NearDuplicateRule())
    seconds = time.perf_counter() - started
    named = members.join(rows.select("id", name="path"), on="id").select("group_key", "name")
    pairs = named.join(named, on="group_key").filter(pl.col("name") < pl.col("name_right"))
    return seconds, pairs.select(a="name", b="name_right").unique()


def imagededup_pairs(method: str, library: Path) -> tuple[float, pl.DataFrame]:
    """imagededup's `find_duplicates` with one of its hash methods, as its README runs it."""
    hasher = getattr(imagededup_hashing(), method)(verbose=False)
    started = time.perf_counter()
    duplicates = hasher.find_duplicates(image_dir=library, max_distance_threshold=PEER_THRESHOLD)
    seconds = time.perf_counter() - started
    pairs = {tuple(sorted((name, other))) for name, others in duplicates.items() for other in others}
    return seconds, pl.DataFrame(sorted(pairs), schema={"a": pl.String, "b": pl.String}, orient="row")


def cpu_per_file(folder: Path, library: Path) -> dict[str, tuple[float, float]]:
    """CPU seconds per file of Lumina's whole per-file work (read, SHA-256, decode, EXIF, hashes,
    quality, thumbnail, embedding; the model on one thread, as `lumina run` gives each of two
    workers on two cores, more where a worker has more cores) and of imagededup's PHash hashing
    alone, by kind of file: 12 MP camera JPEGs, this library's (originals and their variants) and
    the small JPEGs of the scale library."""
    hasher = imagededup_hashing().PHash(verbose=False)
    exported_network(folder / "models")
    make_scale_library(folder / "small", 32)
    kinds = {"12 MP camera JPEGs": make_photos(folder / "camera", 16, distinct=16),
             "JPEGs of this library": sorted(library.iterdir())[:32],
             "640 x 480 JPEGs": sorted((folder / "small" / "000").iterdir())}
    costs = {}
    for kind, paths in kinds.items():
        started = time.process_time()
        for path in paths:
            hasher.encode_image(image_file=path)
        theirs = (time.process_time() - started) / len(paths)
        _, ours = bare_rate([bytes(path) for path in paths], 1, folder / "models", threads=1)
        costs[kind] = ours / len(paths), theirs
    return costs


def imagededup_hashing() -> types.ModuleType:
    """imagededup.methods.hashing, with its parent packages as bare namespaces (see above)."""
    root = Path(str(importlib.util.find_spec("imagededup").origin)).parent
    for package in ("methods", "utils"):
        namespace = types.ModuleType(f"imagededup.{package}")
        namespace.__path__ = [str(root / package)]
        sys.modules.setdefault(namespace.__name__, namespace)
    hashing = importlib.import_module("imagededup.methods.hashing")
    for name in list(logging.root.manager.loggerDict):  # each module logs its steps at INFO to stderr
        if name.startswith("imagededup"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return hashing


def score(pairs: pl.DataFrame, files: pl.DataFrame) -> tuple[int, float, float]:
    """(pairs of different scenes, recall of the planted variants, recall of the crops)."""
    scenes = files.select("name", "scene")
    labelled = pairs.join(scenes.rename({"name": "a"}), on="a").join(scenes.rename({"name": "b"}), on="b")
    false_pairs = int((labelled["scene"] != labelled["scene_right"]).sum())
    originals = files.filter(pl.col("kind") == "original").select("scene", original="name")
    planted = files.filter(pl.col("kind") != "original").join(originals, on="scene").select(
        "kind", a=pl.min_horizontal("name", "original"), b=pl.max_horizontal("name", "original")
    )
    found = planted.join(pairs.with_columns(found=pl.lit(True)), on=["a", "b"], how="left")["found"].is_not_null()
    return false_pairs, float(found.mean()), float(found.filter(planted["kind"] == "crop").mean())


def exact_tool(command: list[str], cwd: Path) -> tuple[float, int]:
    """Time of an exact-duplicate finder printing fdupes-style groups, and how many it found."""
    started = time.perf_counter()
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=cwd).stdout
    seconds = time.perf_counter() - started
    return seconds, sum(1 for block in output.split("\n\n") if block.strip())


def sha256_pass(library: Path) -> float:
    """A bare SHA-256 of every file, as Lumina's analysis reads each (the exact groups' part of it)."""
    started = time.perf_counter()
    for path in library.iterdir():
        with path.open("rb") as file:
            hashlib.file_digest(file, "sha256")
    return time.perf_counter() - started


def run() -> None:
    problems = install_peers()
    files = plan_library()
    with tempfile.TemporaryDirectory(prefix="lumina-bench-precision-") as folder:
        library = Path(folder) / "library"
        make_library(library, files)
        analysis_seconds, rows = lumina_analysis(library, files)
        results = {"lumina (pHash confirms)": lumina_pairs(rows),
                   "lumina, hash-only rule (before)": lumina_pairs(rows.with_columns(phash=pl.lit(None)))}
        if importlib.util.find_spec("imagededup"):
            results |= {f"imagededup {method} (<= {PEER_THRESHOLD} bits)": imagededup_pairs(method, library)
                        for method in ("PHash", "DHash")}
        exact = {tool: exact_tool(command, Path(folder)) for tool, command in (
            ("jdupes", ["jdupes", "-r", "-q", str(library)]), ("rmlint", ["rmlint", "-o", "fdupes", str(library)])
        ) if shutil.which(tool)}
        bare_sha = sha256_pass(library)
        per_file = cpu_per_file(Path(folder), library) if importlib.util.find_spec("imagededup") else {}
    kinds = ", ".join(f"{PER_VARIANT} {kind}" for kind in VARIANTS)
    print(f"\n== near-duplicate precision: {len(files):,} generated {SIZE[0]} x {SIZE[1]} JPEGs, {ORIGINALS:,} scenes "
          f"of one layout and planted variants ({kinds}; crops keep 93-98% of each side) ==")
    for problem in problems:
        print(f"  not measured: {problem}")
    print(f"  {'':34} {'false pairs':>11} {'recall':>7} {'crops':>6}  time")
    for name, (seconds, pairs) in results.items():
        false_pairs, recall, crops = score(pairs, files)
        spent = f"{analysis_seconds:.1f} s analysis + {seconds:.2f} s grouping" if name.startswith("lumina") else (
            f"{seconds:.1f} s (hashes and search)")
        print(f"  {name:34} {false_pairs:>11,} {recall:>7.1%} {crops:>6.1%}  {spent}")
    print(f"  target: lumina's false pairs <= imagededup PHash's, recall >= 98% (Lumina's analysis on {WORKERS} "
          f"processes does all its per-file work, thumbnails included, at {len(files) / analysis_seconds:.0f} files/s)")
    for kind, (ours, theirs) in per_file.items():
        print(f"  {kind}, CPU time per file: lumina's whole per-file work (embedding included) {ours * 1e3:.1f} ms, "
              f"imagededup PHash's hashing alone {theirs * 1e3:.1f} ms: lumina {theirs / ours:.2f}x as fast "
              f"(the aim: >= 1x)")
    exact_groups = rows.filter(pl.len().over("checksum") > 1)["checksum"].n_unique()
    print(f"  exact copies: lumina {exact_groups} groups from the SHA-256 its analysis reads anyway "
          f"(a bare SHA-256 pass over the files: {bare_sha:.2f} s); "
          + "; ".join(f"{tool} {seconds:.2f} s, {groups} groups" for tool, (seconds, groups) in exact.items()))
