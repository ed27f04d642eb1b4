"""Stacks: one shot stored as several files. A camera RAW and the JPEG (or HEIC, TIFF) it wrote
beside it; a Live Photo's still and its few seconds of video; any photo or video with the
sidecars (edits, Apple's adjustments, a camera's thumbnail) written beside it.

Input: a catalog's rows (`load_catalog_rows`). Output: a `Found` for continuity.settle whose
groups have `kind` (raw_jpeg / live_photo / with_sidecar) and the primary as `choice`: the still
a person looks at (a developed photo over the RAW, the still over the video)."""

from dataclasses import dataclass

import polars as pl

from lumina_pipeline.analysis.continuity import Found
from lumina_pipeline.analysis.files import KINDS

FILES_SCHEMA = {  # what find_stacks reads of each file (more columns may come along)
    "id": pl.Int64,
    "source_root": pl.String,
    "path": pl.String,
    "kind": pl.String,  # image / raw / video / sidecar (files.classify)
    "checksum": pl.String,
    "captured_at": pl.String,  # the camera's clock, ISO
    "captured_at_source": pl.String,  # its tag: IFD0 `DateTime` is when the file was last written
    "capture_offset": pl.String,  # "+02:00" when the file records it
    "duration_seconds": pl.Float64,
    "content_identifier": pl.String,  # Apple's, shared by a Live Photo's still and video
    "camera_model": pl.String,
}
# What a camera writes beside its RAW; of several stills of one name, the one a camera or phone
# wrote comes first: HEIC over a JPEG (often its conversion), a JPEG over a TIFF (often an export).
STILL_ORDER = {"heic": 0, "heif": 0, "jpg": 1, "jpeg": 1, "tif": 2, "tiff": 2}
DEVELOPED = list(STILL_ORDER)
LIVE_STILLS = ["jpg", "jpeg", "heic", "heif"]
PRIMARY_ORDER = {"image": 0, "raw": 1, "video": 2, "sidecar": 3}
KIND_ORDER = {"live_photo": 0, "raw_jpeg": 1, "with_sidecar": 2}  # a shot that is several is the first
SHOT_KINDS = ["image", "raw", "video"]  # the files a shot is made of, sidecars aside
SHOT_EXTENSIONS = [extension.decode() for extension, kind in KINDS.items() if kind in SHOT_KINDS]
# The file of its shot a sidecar named by the stem alone describes first, by its extension:
# Lightroom and Capture One write an .xmp beside a RAW only (into the file for the others), a
# camera its .thm beside a video; any other (Apple's .aae, Google's .json) a still.
SIDECAR_DESCRIBES = {"xmp": "raw", "thm": "video"}
APPLE_CREATION_DATE = "com.apple.quicktime.creationdate"  # a video's local time (analysis/videos.py)
# The photo's extension a sidecar's stem ends with (lower case), with Google Takeout's suffixes:
# `.jpg`, `.jpg.supplemental-metadata` (cut short where the name would be long), `.jpg(1)`, whose
# `(1)` the photo's own name holds before its extension (`IMG_1(1).jpg`). Groups: the extension, the (1).
NAMED_PHOTO = rf"\.({'|'.join(SHOT_EXTENSIONS)})(?:\.[a-z-]+)?(\(\d+\))?"


@dataclass(frozen=True)
class StackRule:
    """How close the files of one shot are in time: a RAW and its twin agree within
    `raw_seconds` when both have a capture time (and come from one camera model when both
    name theirs); a Live Photo's video is at most `live_max_seconds` long and starts within
    `live_seconds` of its still, unless both carry one Apple content identifier."""

    raw_seconds: float = 1.0
    live_seconds: float = 2.0
    live_max_seconds: float = 5.0


def find_stacks(rows: pl.DataFrame, rule: StackRule = StackRule()) -> Found:
    """The stacks among a catalog's files: members share source root, folder and name stem
    (any case) and pass the rule pairwise with the stack's still. A stack holds one still, at
    most one RAW and one clip (the first cataloged): other files of the name (a copy, a
    conversion) stay files of their own, which duplicate grouping compares with the still.
    A sidecar goes with the photo or video it describes: the file its name names
    (`IMG_1.CR2.xmp`, and none if that file is not there), else its stem's stack, else its
    stem's first photo, with which it makes a stack of its own; so that no action ever parts
    them."""
    files = _shots(rows)
    developed = files.filter((pl.col("kind") == "image") & pl.col("extension").is_in(DEVELOPED))
    raws = files.filter(pl.col("kind") == "raw")
    videos = files.filter((pl.col("kind") == "video") & (pl.col("duration_seconds") <= rule.live_max_seconds))
    one_camera = pl.col("camera_model").str.to_lowercase() == pl.col("camera_model_other").str.to_lowercase()
    raw_pairs = developed.join(raws, on="shot", suffix="_other").filter(  # one camera's clock on both
        ((_seconds_apart() <= rule.raw_seconds) | pl.col("taken_other").is_null()) & one_camera.fill_null(True)
    )
    # A phone's video records UTC and its still may record only the clock: no comparing those,
    # but Apple's creation date is the clock too (with its offset).
    comparable = ((pl.col("capture_offset").is_null() == pl.col("capture_offset_other").is_null())
                  | (pl.col("captured_at_source_other") == APPLE_CREATION_DATE))
    same_clip = pl.col("content_identifier") == pl.col("content_identifier_other")
    stills = developed.filter(pl.col("extension").is_in(LIVE_STILLS))
    live_pairs = stills.join(videos, on="shot", suffix="_other").filter(
        (comparable & (_seconds_apart() <= rule.live_seconds)).fill_null(False) | same_clip.fill_null(False)
    )
    pairs = pl.concat([raw_pairs.with_columns(stack=pl.lit("raw_jpeg")),
                       live_pairs.with_columns(stack=pl.lit("live_photo"))])
    still = pl.col("id") == pl.col("id").first().over("shot")
    pairs = pairs.sort(_order("extension", STILL_ORDER), "id", "id_other").filter(still)
    pairs = pairs.unique(["shot", "stack"], keep="first")
    stacked = pl.concat([pairs.select("shot", "stack", id="id"), pairs.select("shot", "stack", id="id_other")])
    described = _described(files, stacked)
    alone = described.join(stacked, left_on="photo", right_on="id", how="anti").select(id="photo").unique()
    with_sidecar = pl.lit(KIND_ORDER["with_sidecar"], pl.Int8)
    photos = pl.concat([
        stacked.select("id", group_key=pl.format("stack:{}", "shot"), stack=_order("stack", KIND_ORDER)),
        alone.select("id", group_key=pl.format("stack:file {}", "id"), stack=with_sidecar),
    ]).unique("id")  # a still of a RAW+JPEG pair and of a Live Photo: one shot, one key
    sidecars = described.join(photos.select(photo="id", group_key="group_key"), on="photo").select(
        "id", "group_key", stack=None)
    members = (
        pl.concat([photos, sidecars]).join(files.select("id", "kind", "path", "checksum"), on="id")
        .sort("group_key", _order("kind", PRIMARY_ORDER), "path")
    )
    groups = members.group_by("group_key", maintain_order=True).agg(
        kind=pl.col("stack").min().replace_strict({order: kind for kind, order in KIND_ORDER.items()}),
        choice=pl.col("id").first(),
    )
    return Found(groups, members.select("group_key", "id", "checksum"))


def _described(files: pl.DataFrame, stacked: pl.DataFrame) -> pl.DataFrame:
    """The photo or video (`photo`) each sidecar (`id`) describes, where there is one: the file of
    its shot with the extension its name names (`named`), else the one of its shot its kind
    describes (SIDECAR_DESCRIBES) or its shot's first (a pair's first). darktable names the
    sidecar of a photo's second version `IMG_1_01.CR2.xmp`: its shot is IMG_1_01's if there is
    one, else IMG_1's."""
    named = pl.col("path").str.to_lowercase().str.extract(rf"{NAMED_PHOTO}\.[^./]*$")
    photos = files.filter(pl.col("kind").is_in(SHOT_KINDS))
    version_of = _shot_key(_name().str.replace(r"(?i)_\d\d(\.[^.]*\.[^.]*)$", "$1"), pl.col("kind"))
    sidecars = files.filter(pl.col("kind") == "sidecar").select(
        "id", "extension", named=named,
        shot=pl.when(pl.col("shot").is_in(photos["shot"].implode())).then("shot").otherwise(version_of))
    photos = (photos.select("id", "shot", "kind", "extension").join(sidecars, on="shot", how="semi")  # the few it takes
              .join(stacked.select("id", paired=True).unique("id"), on="id", how="left"))
    by_name = photos.select("shot", named="extension", by_name="id").unique(["shot", "named"], keep="first")
    by_stem = sidecars.select("id", "shot", describes=pl.col("extension").replace_strict(
        SIDECAR_DESCRIBES, default="image")).join(photos.select("shot", photo="id", kind="kind", still="extension",
                                                                 paired="paired"), on="shot")
    by_stem = by_stem.sort("id", pl.col("kind") != pl.col("describes"), pl.col("paired").is_null(),
                           _order("kind", PRIMARY_ORDER), _order("still", STILL_ORDER), "photo"
                           ).unique("id", keep="first").select("id", by_stem="photo")
    sidecars = sidecars.join(by_name, on=["shot", "named"], how="left").join(by_stem, on="id", how="left")
    return sidecars.select("id", photo=pl.when(pl.col("named").is_null()).then("by_stem").otherwise("by_name")
                           ).drop_nulls("photo")


def _order(column: str, order: dict[str, int]) -> pl.Expr:
    return pl.col(column).replace_strict(order, default=len(order), return_dtype=pl.Int8)


def _shots(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows with a number for their source root, folder and lower-case name stem (`shot`), their
    extension, and the shutter's time both as the camera's clock (`taken`) and, when the file
    records its offset, as UTC (`instant`)."""
    shutter = pl.when(pl.col("captured_at_source").ne_missing("DateTime")).then("captured_at")
    return rows.with_columns(
        shot=_shot_key(_name(), pl.col("kind")),
        extension=_name().str.extract(r"\.([^.]*)$").str.to_lowercase(),
        taken=shutter.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False),
        instant=pl.concat_str(shutter, "capture_offset").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False),
    )


def _name() -> pl.Expr:
    return pl.col("path").str.split("/").list.last()


def _shot_key(name: pl.Expr, kind: pl.Expr) -> pl.Expr:
    """A number for the source root, folder and shot stem of the file called `name`. Two shots
    meeting in the 64-bit number (odds about 1 in 10^8 among a million files) would be compared
    as one, the rule still applying to their files."""
    folder = pl.col("path").str.replace(r"[^/]*$", "")
    return pl.struct("source_root", folder=folder, stem=shot_stem(name, kind)).hash()


def shot_stem(name: pl.Expr, kind: pl.Expr) -> pl.Expr:
    """A file's lower-case name stem, which names its shot in its folder. A sidecar's drops the
    name of the photo or video it describes: darktable writes `IMG_1.CR2.xmp`, and Google
    Takeout `IMG_1.jpg.json`, `IMG_1.jpg.supplemental-metadata.json` (cut short where the name
    would be long) and, for `IMG_1(1).jpg`, `IMG_1.jpg(1).json`; iOS `IMG_O1234.AAE` (the
    original's adjustments) for `IMG_1234.HEIC`."""
    stem = name.str.replace(r"\.[^.]*$", "").str.to_lowercase()
    sidecar = stem.str.replace(rf"{NAMED_PHOTO}$", "$2").str.replace(r"^img_o(\d+)$", "img_$1")
    return pl.when(kind == "sidecar").then(sidecar).otherwise(stem)


def _seconds_apart() -> pl.Expr:
    """Seconds between a pair's capture times: in UTC when both record their offset, else by
    their clocks; null when one has no capture time."""
    def apart(column: str) -> pl.Expr:
        return (pl.col(column) - pl.col(f"{column}_other")).dt.total_milliseconds().abs() / 1000

    return pl.coalesce(apart("instant"), apart("taken"))
