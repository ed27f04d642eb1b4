"""Organize: where each file a catalog keeps goes in its dated folder tree, as a plan
(analysis/plans.py) for actions/ to carry out. Pure: the catalog's rows and what the tree
already holds come in as frames.

A shot goes whole: the files of a stack (RAW and JPEG, a Live Photo's still and video, their
sidecars) share the folder of the stack's capture time and keep their names; when another file
holds a name, the whole shot is numbered alike (`IMG_1 (2).CR2`, `IMG_1 (2).JPG`) so that its
files still pair up by name. Names are handled as text in PostgreSQL's escape format (ASCII, a
high byte as \\ooo, a backslash doubled), so that they compare and change case as text whatever
their encoding, and come back byte for byte."""

import codecs
import os
import string
from dataclasses import dataclass

import polars as pl

from lumina_pipeline.analysis.plans import plan_rows

DEFAULT_TEMPLATE = "{year}/{year}-{month}-{day}"
FIELDS = {"year": "%Y", "month": "%m", "day": "%d"}
UNDATED = "undated"  # no capture time: under undated/, in the template's folder of the file's mtime (UTC)
ORGANIZED_KINDS = ["image", "raw", "video", "sidecar"]
READ = ["ok", "skipped"]  # skipped: sidecars and RAWs without a preview, which are not meant to be read
FILES_SCHEMA = {
    "id": pl.Int64,
    "source_root": pl.String,
    "path": pl.Binary,  # relative to source_root, raw bytes
    "kind": pl.String,
    "size_bytes": pl.Int64,
    "mtime_ns": pl.Int64,
    "checksum": pl.String,  # null for a sidecar until its checksum is taken
    "status": pl.String,
    "captured_at": pl.String,  # the camera's clock, ISO
    "stack_id": pl.String,
    "stack_primary": pl.Boolean,
    "kept": pl.Boolean,  # a keeper of a review (or a file of its stack): the copy to organize among identical ones
    "removable": pl.Boolean,  # reviewed away (storage/browse.removable_files)
}
EXISTING_SCHEMA = {"folder": pl.String, "name": pl.Binary, "size_bytes": pl.Int64, "mtime_ns": pl.Int64}
# A file already where the plan puts it: same name (joined on), size and mtime. Whether it holds
# the same bytes is for the caller to make sure of (OrganizePlan.in_place), as only reading tells.
SHOT = pl.coalesce("stack_id", pl.format("file {}", "id"))  # its stack, or the file alone
IN_PLACE = (pl.col("size_bytes") == pl.col("existing_size")) & (pl.col("mtime_ns") == pl.col("existing_mtime"))


@dataclass(frozen=True)
class OrganizePlan:
    plan: pl.DataFrame  # PLAN_SCHEMA's columns, then year ("undated" without a capture time), renamed and unit (shot)
    in_place: pl.DataFrame  # source, target, checksum: files the tree holds where they belong (name, size, mtime)
    left_out: dict[str, int]  # files not organized, by why


def check_template(template: str) -> str:
    """`template` if it is a relative folder naming only {year}, {month} and {day}."""
    fields = [(field, spec, conversion) for _, field, spec, conversion in string.Formatter().parse(template)]
    if any(field is not None and (field not in FIELDS or spec or conversion) for field, spec, conversion in fields):
        raise ValueError(f"bad template {template!r}: it may name only {{year}}, {{month}} and {{day}}")
    if template.startswith("/") or ".." in template.split("/"):
        raise ValueError(f"bad template {template!r}: it must stay inside the organized folder")
    return template


def target_folders(files: pl.DataFrame, template: str, into: bytes) -> list[str]:
    """The folders of the tree the plan may put files in (to look at what they hold)."""
    return _placed(_chosen(files, into)[0], template)["folder"].unique().sort().to_list()


def plan_organize(
    files: pl.DataFrame, existing: pl.DataFrame, template: str, into: bytes, *, move: bool
) -> OrganizePlan:
    """Copy (or move) each kept file of `files` (FILES_SCHEMA) to `into`/<template>/<its name>,
    `existing` (EXISTING_SCHEMA) being what `target_folders` already hold. Left out: files
    reviewed away, byte-identical copies of a file organized, files not read."""
    chosen, left_out = _chosen(files, into)
    on_disk = _keyed(existing)
    numbered = _numbered(_placed(chosen, template), on_disk)
    final = numbered.with_columns(key=_key(_name(pl.col("k")))).join(on_disk, on="key", how="left")
    todo = final.filter(~IN_PLACE.fill_null(False)).sort("folder", "path")
    plan = plan_rows(todo, _targets(todo, into), "move" if move else "copy", None)  # the catalog's rows stay
    plan = plan.with_columns(year=todo["year"], renamed=todo["k"] > 1, unit=todo["unit"])
    placed = final.filter(IN_PLACE.fill_null(False))
    in_place = plan_rows(placed, _targets(placed, into), "copy", None).select("source", "target", "checksum")
    return OrganizePlan(plan, in_place, left_out)


def _targets(files: pl.DataFrame, into: bytes) -> list[bytes]:
    return [os.path.join(into, folder.encode(), _unescaped(name))
            for folder, name in files.select("folder", _name(pl.col("k"))).rows()]


def figures(organized: OrganizePlan) -> dict:
    """What a plan would do, in numbers a person reads before applying it."""
    plan = organized.plan
    return {
        "files": len(plan),
        "bytes": int(plan["size_bytes"].sum()),
        "by_year": dict(sorted(plan["year"].value_counts().rows())),
        "undated": int((plan["year"] == UNDATED).sum()),
        "renamed": int(plan["renamed"].sum()),
        "in_place": len(organized.in_place),
        "left_out": organized.left_out,
    }


def _escaped(name: bytes) -> str:
    """`name` as PostgreSQL's escape format writes it: a zero or high byte as \\ooo, \\ doubled."""
    if name.isascii() and b"\\" not in name and b"\0" not in name:
        return name.decode()  # most names, at a fraction of the cost
    return "".join(f"\\{b:03o}" if b == 0 or b > 127 else "\\\\" if b == 92 else chr(b) for b in name)


def _unescaped(text: str) -> bytes:
    return codecs.escape_decode(text.encode())[0]  # reads exactly the two escapes PostgreSQL writes


def _chosen(files: pl.DataFrame, into: bytes) -> tuple[pl.DataFrame, dict[str, int]]:
    """The files to organize, a shot (a stack, or a file alone) whole or not at all: shots read
    whole (a stack with a file unreadable or not read yet waits), not reviewed away, and one of
    each content: one the tree holds already (moved there, the tree is one of the catalog's
    folders), else a keeper, else a file of the shot of most files (its sidecars, its clip),
    else the first in path order. A shot whose every photo and video is a copy of one chosen
    stays out whole, its sidecars too, while one with a file of its own (a Live Photo's original
    clip beside an exported copy of its still) goes whole, copies and all: no file without a
    copy is left out. A sidecar goes only with a photo of its stack: alone (its photo
    unreadable, or gone), it stays where it is."""
    files = files.with_columns(read=pl.col("status").is_in(READ).all().over(SHOT),
                               alone=(pl.col("kind") == "sidecar") & pl.col("stack_id").is_null())
    read = files.filter(pl.col("read") & ~pl.col("alone")).drop("read", "alone")
    in_tree = pl.col("source_root") == os.fsdecode(into)
    kept = read.filter(~pl.col("removable")).sort(in_tree, "kept", pl.col("stack_id").is_not_null(),
                                                  pl.len().over(SHOT), "source_root", "path",
                                                  descending=[True, True, True, True, False, False])
    first = (pl.col("kind") != "sidecar") & (pl.col("checksum").is_null() | (pl.int_range(pl.len()) == 0))
    chosen = kept.with_columns(own=first.over("checksum")).filter(pl.col("own").any().over(SHOT)).drop("own")
    left_out = {"reviewed away": len(read) - len(kept), "exact copies": len(kept) - len(chosen),
                "unreadable or unread": int((~files["read"]).sum()),
                "sidecars without their photo": int((files["read"] & files["alone"]).sum())}
    return chosen, left_out


def _placed(files: pl.DataFrame, template: str) -> pl.DataFrame:
    """Each file with its shot (`unit`: its stack, or itself), the shot's folder and date (the
    primary's capture time, else a member's, else the mtime) and the shot's name stem."""
    names = pl.Series([_escaped(path.rpartition(b"/")[2]) for path in files["path"]], dtype=pl.String)
    primary_first = files.with_columns(
        name=names,
        unit=SHOT,
        taken=pl.col("captured_at").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False),
    ).sort("unit", pl.col("stack_primary").fill_null(False), descending=[False, True])
    taken = pl.col("taken").drop_nulls().first().over("unit")
    date = pl.coalesce(taken, pl.from_epoch("mtime_ns", "ns").cast(pl.Datetime("us")).first().over("unit"))
    name = pl.col("name")
    stem = name.str.replace(r"\.[^.]*$", "").str.len_chars().min().over("unit")  # of the shot: IMG_1 of IMG_1.CR2.xmp
    dated = _filled(template, pl.col("date"))
    return primary_first.with_columns(date=date, undated=taken.is_null(), prefix=name.str.slice(0, stem),
                                      rest=name.str.slice(stem)).with_columns(
        folder=pl.when("undated").then(pl.concat_str(pl.lit(UNDATED + "/"), dated)).otherwise(dated),
        year=pl.when("undated").then(pl.lit(UNDATED)).otherwise(pl.col("date").dt.strftime("%Y")),
    ).sort("date", "source_root", "path")  # the order in which shots take free names


def _filled(template: str, date: pl.Expr) -> pl.Expr:
    parts = []
    for literal, field, _, _ in string.Formatter().parse(template):
        parts += [pl.lit(literal), *([date.dt.strftime(FIELDS[field])] if field else [])]
    return pl.concat_str(parts)


def _numbered(files: pl.DataFrame, existing: pl.DataFrame) -> pl.DataFrame:
    """Each file with its shot's number `k` (1: its own name): the first under which every file
    of the shot has a free name, or is there already. Most shots keep their names, decided at
    once; the few that meet another file or shot take numbers one by one, in date order."""
    first = files.with_columns(key=_key(_name(pl.lit(1)))).join(existing, on="key", how="left")
    elsewhere = pl.col("existing_size").is_not_null() & ~IN_PLACE
    first = first.with_columns(clash=elsewhere | (pl.col("unit").n_unique().over("key") > 1))
    first = first.with_columns(clash=pl.col("clash").any().over("unit"))  # one window at a time: nested ones nest
    claimed = set(first.filter(~pl.col("clash"))["key"])
    on_disk = {key: (size, mtime) for key, size, mtime in existing.rows()}
    shots = first.filter("clash").group_by("unit", maintain_order=True).agg(
        pl.col("folder").first(), "prefix", "rest", "size_bytes", "mtime_ns")
    numbers = [(unit, _free_number(claimed, on_disk, *shot)) for unit, *shot in shots.rows()]
    chosen = pl.DataFrame(numbers, schema={"unit": pl.String, "k": pl.Int64}, orient="row")
    return files.join(chosen, on="unit", how="left").with_columns(k=pl.col("k").fill_null(1))


def _free_number(claimed: set[str], on_disk: dict, folder: str, prefixes: list[str], rests: list[str],
                 sizes: list[int], mtimes: list[int]) -> int:
    """The first number under which no file of a shot meets a name `claimed` by another shot or
    a file on disk other than itself; the shot's names are then claimed."""
    k = 1
    while True:
        number = f" ({k})" if k > 1 else ""
        keys = [f"{folder}/" + f"{prefix}{number}{rest}".lower() for prefix, rest in zip(prefixes, rests, strict=True)]
        if all(key not in claimed and on_disk.get(key, (size, mtime)) == (size, mtime)
               for key, size, mtime in zip(keys, sizes, mtimes, strict=True)):
            claimed.update(keys)
            return k
        k += 1


def _name(k: pl.Expr) -> pl.Expr:
    numbered = pl.concat_str(pl.col("prefix"), pl.lit(" ("), k.cast(pl.String), pl.lit(")"), pl.col("rest"))
    return pl.when(k == 1).then(pl.concat_str("prefix", "rest")).otherwise(numbered).alias("name")


def _key(name: pl.Expr) -> pl.Expr:
    """Which names meet: the same folder and name in any case (as on macOS and Windows disks)."""
    return pl.concat_str(pl.col("folder"), pl.lit("/"), name.str.to_lowercase())


def _keyed(existing: pl.DataFrame) -> pl.DataFrame:
    names = pl.Series([_escaped(name) for name in existing["name"]], dtype=pl.String)
    return existing.with_columns(name=names).select(
        key=_key(pl.col("name")), existing_size="size_bytes", existing_mtime="mtime_ns"
    ).unique("key", keep="first", maintain_order=True)
