"""Bursts: runs of shots from one camera, each within a short gap of the previous one."""

from dataclasses import dataclass

import polars as pl

from lumina_pipeline.analysis.continuity import Found

SHOTS_SCHEMA = {
    "id": pl.Int64,
    "checksum": pl.String,
    "kind": pl.String,
    "captured_at": pl.String,  # DateTimeOriginal with sub-seconds, camera local time
    "camera_make": pl.String,
    "camera_model": pl.String,
    "camera_serial": pl.String,
    "quality_score": pl.Int64,
    "pixels": pl.Int64,  # width x height
    "stack_id": pl.String,  # the stack (stacks.py) a file belongs to: its files are one shot
}
CAMERA = ["camera_make", "camera_model", "camera_serial"]
# who picked a burst's best frame: a person, or the rule (the highest quality score)
SELECTION_METHOD = pl.when("chosen").then(pl.lit("user")).otherwise(pl.lit("quality_score")).alias("selection_method")


@dataclass(frozen=True)
class BurstRule:
    """At least `min_shots` distinct shots from one camera (make, model and, when the camera
    records it, body serial), each at most `max_gap_seconds` after the previous one."""

    max_gap_seconds: float = 2.0
    min_shots: int = 3


def find_bursts(shots: pl.DataFrame, rule: BurstRule) -> pl.DataFrame:
    """One row per frame of a burst: `burst_key`, `id`, `sequence` (1 = first) and
    `best` (the frame with the highest quality score, the earliest on ties).

    Byte-identical copies are one shot, and so are the files of one stack (a RAW and its
    JPEG twin: the JPEG stands for both), copies of a stacked file included. A shot's frame
    is the file of its stack (not a backup copy). A file of fewer pixels than another of the
    same camera and time is no shot of its own: a resized export of a frame keeps the frame's
    EXIF, while a camera's frames have one size (a camera that records no sub-seconds, or the
    same ones each time, gives several frames one time). Files without a capture time or
    camera never join a burst."""
    with_camera = shots.filter(pl.col("camera_model").is_not_null())
    checksum = _key("checksum")
    # a copy of a stacked file is its stack's shot (the greatest stack, where copies are in several)
    stacked = with_camera.filter(pl.col("stack_id").is_not_null()).group_by(checksum.alias("checksum")).agg(
        stack=_key("stack_id").max()
    )
    timed = with_camera.select(  # what the sorts carry, no more
        "id", "checksum", "kind", "quality_score", "pixels", "stack_id",
        taken=_capture_time(),
        camera=pl.struct(CAMERA).hash(),  # a number per camera, as `_key` for checksums
        shot=checksum.replace_strict(stacked["checksum"], stacked["stack"], default=checksum),
    )
    first_of_its_shot = (
        timed.filter(pl.col("taken").is_not_null())
        # the file cataloged first last: a copy imported later (whatever its folder) never takes its place
        .sort(["taken", pl.col("kind") == "raw", pl.col("stack_id").is_null(), "pixels", "id"],
              descending=[False, False, False, True, False], nulls_last=True)
        .filter(pl.col("shot").is_first_distinct())
        .sort("camera", maintain_order=True)
    )
    smaller_at_its_time = (  # than the file before it, the largest of that camera and time coming first
        (pl.col("camera") == pl.col("camera").shift()) & (pl.col("taken") == pl.col("taken").shift())
        & (pl.col("pixels") < pl.col("pixels").shift())
    )
    distinct = first_of_its_shot.filter(~smaller_at_its_time.fill_null(False))
    gap = pl.col("taken").diff().dt.total_microseconds() / 1e6
    starts = (pl.col("camera") != pl.col("camera").shift()).fill_null(True) | (gap > rule.max_gap_seconds)
    runs = distinct.with_columns(run=starts.cum_sum().set_sorted())  # sorted: windows over runs need no hashing
    frames = runs.filter(pl.len().over("run") >= rule.min_shots)
    best = pl.col("quality_score").fill_null(-1).arg_max().over("run")
    return frames.with_columns(
        burst_key=pl.concat_str(pl.lit("burst:"), pl.col("checksum").first().over("run")),
        sequence=pl.int_range(1, pl.len() + 1).over("run"),
        best=pl.int_range(pl.len()).over("run") == best,
    ).select("burst_key", "id", "sequence", "best", "taken")


def _capture_time() -> pl.Expr:
    """`captured_at` as a datetime, null where it is none. Lumina writes ISO seconds and,
    from SubsecTimeOriginal, optionally a dot and digits: the seconds are parsed with a
    fixed-width format and the digits added as microseconds, by hand because polars parses
    a variable fraction ("%.f") three times slower. No cache: capture times are mostly
    distinct, and looking each up costs more than parsing."""
    text = pl.col("captured_at")
    seconds = text.str.slice(0, 19).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False, cache=False, time_unit="us")
    return seconds + pl.duration(microseconds=text.str.slice(20, 6).str.pad_end(6, "0").cast(pl.Int64, strict=False))


def _key(column: str) -> pl.Expr:
    """A string column's 64-bit hash (null stays null). Grouping and sorting by integers is
    several times faster than by 64-character checksums; two different strings meeting in
    64 bits (odds about 1 in 10^8 among a million files) would cost a burst a frame at worst."""
    return pl.when(pl.col(column).is_not_null()).then(pl.col(column).hash())


def group_bursts(rows: pl.DataFrame, rule: BurstRule) -> Found:
    """The bursts among a catalog's files, for `settle`, the best frame as the rule's `choice`.

    Only files read without error whose time is the shutter's (EXIF DateTimeOriginal) take
    part: the IFD0 DateTime fallback is when the file was last written, to the second."""
    shots = rows.filter((pl.col("status") == "ok") & (pl.col("captured_at_source") == "DateTimeOriginal"))
    frames = find_bursts(shots, rule).join(shots.select("id", "checksum", "camera_make", "camera_model"), on="id")
    frames = frames.rename({"burst_key": "group_key"})
    bursts = frames.sort("sequence").group_by("group_key", maintain_order=True).agg(
        image_count=pl.len(),
        start_time=pl.col("taken").first(),
        end_time=pl.col("taken").last(),
        duration_seconds=((pl.col("taken").last() - pl.col("taken").first()).dt.total_microseconds() / 1e6).round(3),
        camera_make=pl.col("camera_make").first(),
        camera_model=pl.col("camera_model").first(),
        choice=pl.col("id").filter("best").first(),
    )
    return Found(bursts, frames)
