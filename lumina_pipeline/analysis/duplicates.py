"""Exact and near-duplicate groups of a catalog, and the primary image (the keeper) of each group.

Input: one row per file (`GROUPING_SCHEMA`). Output: members (`group_key`, `id`,
`similarity_score`) and groups (`group_key`, `similarity_type`, `confidence`, `primary_id`).

Groups respect shots: a stack (stacks.py) takes part through its primary alone, so its own
files are never duplicates of one another and a copy of a whole stack groups with it; two
distinct frames of one burst are never near-duplicates (the burst is their review); and a
video is compared with videos only (its poster frame), never with a still."""

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import polars as pl
from numpy.typing import NDArray

from lumina_pipeline.analysis.neighbors import hamming, pairs_within

GROUPING_SCHEMA = {
    "id": pl.Int64,
    "path": pl.String,  # for folder preferences
    "checksum": pl.String,
    "size_bytes": pl.Int64,
    "pixels": pl.Int64,
    "quality_score": pl.Int64,
    "richness": pl.Int64,  # how many metadata fields the file carries
    "captured_at": pl.String,
    "dhash": pl.String,
    "ahash": pl.String,
    "whash": pl.String,
    "phash": pl.String,  # null where hashed before pHash was stored
    "kind": pl.String,  # image / raw / video (files.classify)
    "stack_id": pl.String,
    "stack_primary": pl.Boolean,  # null outside a stack
    "burst_id": pl.String,
}
DEFAULT_AVOIDED_FOLDERS = ("backup", "export", "download", "shared", "whatsapp", "chat", "copy", "kopie", "takeout")
# What decides a group's keeper, first key first (KeeperRule); the row id breaks the last ties.
KEEPER_ORDER = ("stack", "pixels", "metadata", "quality", "format", "bytes", "earliest", "library_folder")
DEFAULT_FORMATS = ("raw", "heic", "jpeg")  # preferred first; a format not listed comes after these
FORMAT_FAMILIES = {"jpg": "jpeg", "jpe": "jpeg", "heif": "heic", "tif": "tiff"}
RAW_PIXELS = 2**62  # a camera RAW's, for the keeper: more than any rendering of it
HASHES = ("dhash", "ahash", "whash", "phash")  # the columns of every hash array below
# The highest score of a member taken at another instant than its group's primary (capture
# times to the sub-second, both known): another shot of the scene, alike but not a copy, which
# accepting a group by its confidence must not remove.
OTHER_SHOT_SCORE = 50


@dataclass(frozen=True)
class NearDuplicateRule:
    """When two photos are near-duplicates.

    Photos that both have a pHash: one of their four hashes differs in at most `ahash` bits
    (which is how candidates are found, by multi-index hashing: neighbors.py), and their
    pHash in at most `phash` bits and their dhash in at most `confirm_dhash`. The second
    part is the confirmation. ahash and whash are correlated, and both mostly say where the
    bright half of the picture is, so on scenes of one layout (a sky over a horizon) they
    match photos that pHash (DCT shapes) and dhash (brightness steps) tell apart. A small
    crop moves every hash a little, so a crop needs only one hash close to be found.
    Defaults: on the benchmark's generated library (benchmarks/precision.py) every planted
    re-encode, resize and brightness change and about 93% of its 2-7% crops, with fewer
    false pairs than imagededup's PHash; in the test corpus every edited copy (at most 6
    bits of pHash, 5 of dhash) and no two scenes (the closest differ in 20 bits of pHash).

    Either photo without a pHash (hashed before it was stored): the hash-only rule, ahash
    within `ahash` bits and dhash within `dhash` bits or whash within `whash` bits."""

    ahash: int = 5
    dhash: int = 10
    whash: int = 8
    phash: int = 12
    confirm_dhash: int = 16

    def matches(self, distances: NDArray[np.uint8], with_phash: NDArray[np.bool_] | None = None) -> NDArray[np.bool_]:
        """One bool per row of `distances` (Hamming bits, in the columns of HASHES), by the
        pHash rule where `with_phash` (both photos have one), else by the hash-only rule."""
        dhash, ahash, whash = distances[:, 0], distances[:, 1], distances[:, 2]
        hash_only = (ahash <= self.ahash) & ((dhash <= self.dhash) | (whash <= self.whash))
        if with_phash is None:
            return hash_only
        found = distances.min(axis=1) <= self.ahash
        confirmed = (distances[:, 3] <= self.phash) & (dhash <= self.confirm_dhash)
        return np.where(with_phash, found & confirmed, hash_only)


@dataclass(frozen=True)
class KeeperRule:
    """Which file of a group is kept (its primary): the first key of `order` that tells two
    files apart decides; the file cataloged first (lowest id) breaks the last ties, not its
    path, so that a suggested keeper stays on its file when files are moved. The keys:

    stack: a file of a shot of several photos (a RAW+JPEG pair, a Live Photo) before one of
    one; pixels: more first; metadata: more metadata fields (capture time, camera, ...) first,
    so that a camera original beats an edited or stripped copy, then more sidecars (a
    person's ratings and edits); quality: higher quality score first;
    format: in the order of `formats` (file extension families: raw, heic, jpeg, tiff, png,
    ...); bytes: more bytes per pixel first (less compressed: a copy saved again at a lower
    JPEG quality keeps the size, metadata and score of its original); earliest: earlier
    capture time first; library_folder: outside `avoided_folders` (backup, export, ... copies
    lose to the library's own) first."""

    order: tuple[str, ...] = KEEPER_ORDER
    formats: tuple[str, ...] = DEFAULT_FORMATS
    avoided_folders: tuple[str, ...] = DEFAULT_AVOIDED_FOLDERS

    def __post_init__(self):
        if unknown := set(self.order) - set(KEEPER_ORDER):
            raise ValueError(f"unknown keeper keys {sorted(unknown)}; the keys are {', '.join(KEEPER_ORDER)}")


def rank_for_primary(images: pl.DataFrame, keeper: KeeperRule = KeeperRule()) -> pl.DataFrame:
    """Sorted best first, with `rank` (0 = best): the primary of any group is its member of
    lowest rank. A subset of the files is ranked in the order it has among all of them."""
    extension = pl.col("path").str.extract(r"\.([^./]*)$").str.to_lowercase()
    family = pl.when(pl.col("kind") == "raw").then(pl.lit("raw")).otherwise(extension.replace(FORMAT_FAMILIES))
    formats = {name: index for index, name in enumerate(keeper.formats)}
    keys = {  # [(expression, descending)]
        "stack": [(pl.col("shot_photos") < 2, False)],
        # a camera RAW holds the whole sensor's image, though what decodes of it is a small preview
        "pixels": [(pl.when(pl.col("kind") == "raw").then(pl.lit(RAW_PIXELS)).otherwise(pl.col("pixels")), True)],
        "metadata": [(pl.col("richness"), True), (pl.col("shot_sidecars"), True)],
        "quality": [(pl.col("quality_score"), True)],
        "format": [(family.replace_strict(formats, default=len(formats), return_dtype=pl.Int64), False)],
        "bytes": [(pl.col("size_bytes") / pl.col("pixels"), True)],
        "earliest": [(pl.col("captured_at"), False)],
        "library_folder": [(pl.col("path").str.to_lowercase().str.contains_any(list(keeper.avoided_folders)), False)],
    }
    chosen = [key for name in keeper.order for key in keys[name]] + [(pl.col("id"), False)]
    ordered = images.sort([key for key, _ in chosen], descending=[down for _, down in chosen], nulls_last=True)
    return ordered.with_columns(rank=pl.int_range(pl.len(), dtype=pl.Int64))


def exact_groups(images: pl.DataFrame) -> pl.DataFrame:
    """Files with the same SHA-256, two or more per group (a stack's RAW or video too). Empty
    files are left out, as jdupes and czkawka leave them: alike, but no copies of anything."""
    with_copies = images.filter(
        pl.col("checksum").is_not_null() & (pl.col("size_bytes") > 0) & (pl.len().over("checksum") > 1)
    )
    return with_copies.select(
        group_key=pl.concat_str(pl.lit("exact:"), "checksum"), id="id", similarity_score=pl.lit(100, pl.Int64)
    )


def uninformative(images: pl.DataFrame) -> pl.Series:
    """Files whose hashes say nothing (flat or blank images): two or more constant hashes."""
    constant = [pl.col(name).is_in(["0" * 16, "f" * 16]).cast(pl.Int8) for name in ("dhash", "ahash", "whash")]
    return images.select(pl.sum_horizontal(constant) >= 2).to_series()


def near_groups(images: pl.DataFrame, rule: NearDuplicateRule, keeper: KeeperRule = KeeperRule()) -> pl.DataFrame:
    """Near-duplicate groups in which every pair of distinct contents satisfies `rule`, two
    frames of one burst never being a pair; videos and stills apart, stacks by their primary.

    Exact copies are compared once (their best-ranked file stands for all) and then all
    join the group. Connected components of the match graph are kept when they are cliques;
    the rare component that is not (A~B, B~C, A far from C) is split greedily, best rank
    first, so that unrelated photos are never chained together."""
    hashed = images.filter(
        pl.col("ahash").is_not_null() & ~uninformative(images) & pl.col("stack_primary").fill_null(True)
    )
    media = hashed.with_columns(video=pl.col("kind") == "video").partition_by("video", include_key=False)
    return pl.concat([_near_groups(part, rule, keeper) for part in media or [hashed]])


def _near_groups(hashed: pl.DataFrame, rule: NearDuplicateRule, keeper: KeeperRule) -> pl.DataFrame:
    contents = _one_per_content(hashed, keeper)
    hashes = np.stack([_uint64(contents[name]) for name in HASHES], axis=1)
    with_phash = contents["phash"].is_not_null().to_numpy()
    # a burst's number per content, -1 outside bursts: frames of one burst are never a pair
    bursts = contents["burst_id"].cast(pl.Categorical).to_physical().cast(pl.Int64).fill_null(-1).to_numpy()
    i, j = _candidates(hashes, with_phash, rule.ahash)
    match = _pairs(i, j, hashes, with_phash, bursts, rule)
    # from here on the contents with a match alone, renumbered best first (ranking these few
    # costs much less than ranking every file)
    matched = np.unique(np.concatenate([i[match], j[match]]))
    best_first = rank_for_primary(contents[matched].with_columns(node=matched), keeper)["node"].to_numpy()
    renumbered = np.empty(len(contents), dtype=np.int64)
    renumbered[best_first] = np.arange(len(best_first))
    i, j, hashes = renumbered[i[match]], renumbered[j[match]], hashes[best_first]
    labels = _components(len(best_first), i, j)
    near = partial(_pairs, hashes=hashes, with_phash=with_phash[best_first], bursts=bursts[best_first], rule=rule)
    groups = _split_non_cliques(labels, i, j, near)
    # nodes are in rank order, so the smallest node of a group is its primary
    nodes = contents[best_first].select("checksum", "captured_at").with_row_index("node").with_columns(
        group=pl.Series(groups, dtype=pl.Int64)
    )
    nodes = nodes.filter(pl.col("group") >= 0).with_columns(
        primary=pl.col("node").min().over("group"), primary_checksum=pl.col("checksum").first().over("group"),
        primary_taken=pl.col("captured_at").first().over("group"),
    )
    # over dhash, ahash and whash, which every hashed photo has
    mean_bits = hamming(hashes[nodes["node"].to_numpy()], hashes[nodes["primary"].to_numpy()])[:, :3].mean(axis=1)
    # 0-100: 100 minus the mean bit distance to the primary, 32 bits (unrelated images) giving 0
    score = np.clip(np.round(100 * (1 - mean_bits / 32)), 0, 100).astype(np.int64)
    other_shot = nodes.select(_other_instant("captured_at", "primary_taken").fill_null(False)).to_series().to_numpy()
    score = pl.Series(np.where(other_shot, np.minimum(score, OTHER_SHOT_SCORE), score))
    scored = nodes.select("checksum", "primary_checksum").with_columns(similarity_score=score)
    expanded = hashed.select("checksum", "id").join(scored, on="checksum")
    return expanded.select(
        group_key=pl.concat_str(pl.lit("perceptual:"), "primary_checksum"), id="id", similarity_score="similarity_score"
    )


def _other_instant(one: str, other: str) -> pl.Expr:
    """Whether two capture times name other instants: to the sub-second when both have one,
    else to the second (an export or a messenger often drops SubSecTimeOriginal alone)."""
    def parsed(column: str) -> pl.Expr:
        return pl.col(column).str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False)

    both_fine = pl.col(one).str.contains(".", literal=True) & pl.col(other).str.contains(".", literal=True)
    return pl.when(both_fine).then(parsed(one) != parsed(other)).otherwise(
        parsed(one).dt.truncate("1s") != parsed(other).dt.truncate("1s"))


def _one_per_content(hashed: pl.DataFrame, keeper: KeeperRule) -> pl.DataFrame:
    """One row per checksum: the file itself, or of exact copies the best-ranked one, in a
    burst if any copy is."""
    # by a 64-bit hash of the checksum (fast); two checksums meeting in it are merely ranked
    copied = pl.col("checksum").hash().is_duplicated()
    copies = rank_for_primary(hashed.filter(copied), keeper).with_columns(pl.col("burst_id").max().over("checksum"))
    best_copies = copies.unique("checksum", keep="first", maintain_order=True).drop("rank")
    return pl.concat([hashed.filter(~copied), best_copies])


def describe_groups(members: pl.DataFrame, ranked: pl.DataFrame) -> pl.DataFrame:
    """One row per group: type, confidence (its least similar member) and primary."""
    joined = members.join(ranked.select("id", "rank"), on="id")
    return joined.sort("rank").group_by("group_key", maintain_order=True).agg(
        similarity_type=pl.col("group_key").first().str.split(":").list.first(),
        confidence=pl.col("similarity_score").min(),
        primary_id=pl.col("id").first(),
        size=pl.len(),
    )


def group_catalog(
    images: pl.DataFrame, rule: NearDuplicateRule, keeper: KeeperRule = KeeperRule()
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All groups of a catalog: (members, groups). Only the files in a group are ranked for
    their primary."""
    images = _with_shot_files(images)
    members = pl.concat([exact_groups(images), near_groups(images, rule, keeper)])
    grouped = images.join(members.select("id"), on="id", how="semi")
    return members, describe_groups(members, rank_for_primary(grouped, keeper))


def _with_shot_files(images: pl.DataFrame) -> pl.DataFrame:
    """Each file with the photos (`shot_photos`) and sidecars of a person's edits (`shot_sidecars`:
    a Google Takeout `.json` is the export's, no edit) of its shot: its stack's, or 1 and 0 for
    a file alone (a stack's sidecars are among the catalog's rows)."""
    sidecar = pl.col("kind") == "sidecar"
    edits = sidecar & ~pl.col("path").str.to_lowercase().str.ends_with(".json")
    shots = images.filter(pl.col("stack_id").is_not_null()).group_by("stack_id").agg(
        shot_photos=(~sidecar).sum(), shot_sidecars=edits.sum())
    return images.join(shots, on="stack_id", how="left", maintain_order="left").with_columns(
        pl.col("shot_photos").fill_null(1), pl.col("shot_sidecars").fill_null(0))


def too_flat(images: pl.DataFrame) -> int:
    """How many hashed files are too flat to compare (uninformative)."""
    return int((uninformative(images) & images["ahash"].is_not_null()).sum())


def _uint64(hex_values: pl.Series) -> NDArray[np.uint64]:
    return hex_values.str.to_integer(base=16, dtype=pl.UInt64).fill_null(0).to_numpy()


def _candidates(
    hashes: NDArray[np.uint64], with_phash: NDArray[np.bool_], radius: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Pairs (i < j) within `radius` bits on ahash, or, among photos with a pHash, on any hash.

    The four searches run at once on the cores this process may use: NumPy releases the GIL
    in its loops, and the searches are most of the grouping's time."""
    count = len(hashes)
    hashed = np.flatnonzero(with_phash)
    searches = [(np.arange(count), 1)] + [(hashed, column) for column in (0, 2, 3)]

    def search(rows: NDArray[np.int64], column: int) -> NDArray[np.int64]:
        i, j = pairs_within(hashes[rows, column], radius)
        return rows[i] * count + rows[j]

    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        keys = np.unique(np.concatenate(list(pool.map(search, *zip(*searches, strict=True)))))
    return keys // count, keys % count


def _components(count: int, i: NDArray[np.int64], j: NDArray[np.int64]) -> NDArray[np.int64]:
    """Connected-component label (smallest index) of every node."""
    # here: scipy.sparse took a quarter of a second of every process that loads the code location
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    graph = coo_array((np.ones(len(i), dtype=bool), (i, j)), shape=(count, count))
    _, component = connected_components(graph, directed=False)
    return np.unique(component, return_index=True)[1][component]


def _split_non_cliques(
    labels: NDArray[np.int64], i: NDArray[np.int64], j: NDArray[np.int64], near: Callable[..., NDArray[np.bool_]]
) -> NDArray[np.int64]:
    """Group number per node (-1: in no group), `near` telling which nodes match a node. Nodes
    are in rank order, best first."""
    sizes = np.bincount(labels, minlength=len(labels))
    edges = np.bincount(labels[i], minlength=len(labels))
    groups = np.where(sizes[labels] > 1, labels, -1)
    for label in np.flatnonzero((sizes > 2) & (edges < sizes * (sizes - 1) // 2)):
        nodes = np.flatnonzero(labels == label)
        cliques: list[list[int]] = []
        for node in nodes.tolist():
            home = next((c for c in cliques if near(c, node).all()), None)
            if home is None:
                cliques.append([node])
            else:
                home.append(node)
        for clique in cliques:
            groups[clique] = clique[0] if len(clique) > 1 else -1
    return groups


def _pairs(
    a: NDArray[np.int64] | list[int],
    b: NDArray[np.int64] | int,
    hashes: NDArray[np.uint64],
    with_phash: NDArray[np.bool_],
    bursts: NDArray[np.int64],
    rule: NearDuplicateRule,
) -> NDArray[np.bool_]:
    """Whether each `a` and `b` (node numbers, arrays of one length or one of them a single
    node) are near-duplicates: they satisfy the rule and are not two frames of one burst."""
    other_shots = (bursts[a] < 0) | (bursts[a] != bursts[b])
    return rule.matches(hamming(hashes[a], hashes[b]), with_phash[a] & with_phash[b]) & other_shots


def reclaimable_bytes(members: pl.DataFrame, groups: pl.DataFrame, sizes: pl.DataFrame) -> int:
    """Bytes freed by keeping only the primaries: of each perceptual group, and of each exact
    group outside every perceptual group (an exact group inside one is decided there).

    `groups`: similarity_type, primary_image_id; `sizes`: id, size_bytes."""
    in_perceptual = members.filter(pl.col("group_key").str.starts_with("perceptual:"))["id"].implode()
    kept = groups.filter(
        (pl.col("similarity_type") == "perceptual") | ~pl.col("primary_image_id").is_in(in_perceptual)
    )["primary_image_id"].implode()
    freed = members.select("id").unique().filter(~pl.col("id").is_in(kept))
    return int(freed.join(sizes, on="id")["size_bytes"].sum())
