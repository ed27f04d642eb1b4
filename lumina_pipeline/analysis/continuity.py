"""Settle a grouping (duplicate groups, bursts) against the previous one: keep ids and decisions.

A group is identified by its members' checksums, counted with multiplicity: a file moved or
renamed keeps its checksum and so its place, while a new copy adds one. A new group takes
the id of the previous group from which most members carried over (more than half of that
group's members, the largest overlap winning, then the most files still the same: a stack
and its backup copy have the same checksums but not the same files); it keeps `reviewed` only if its members are
the same, and keeps a chosen primary (or best frame) only if that file is still a member.
"""

import uuid
from typing import NamedTuple

import polars as pl

PREVIOUS_SCHEMA = {
    "group_id": pl.String,
    "reviewed": pl.Boolean,
    "chosen_id": pl.Int64,  # primary / best frame a person chose; null if the rule chose
    "chosen_checksum": pl.String,
}
PREVIOUS_MEMBERS_SCHEMA = {"group_id": pl.String, "kind": pl.String, "checksum": pl.String, "id": pl.Int64}


class GroupFrames(NamedTuple):
    """A grouping as two frames: `groups`, one row per group, and `members`, one per member."""

    groups: pl.DataFrame
    members: pl.DataFrame


class Found(GroupFrames):
    """What a rule found: `groups` have group_key ("<kind>:...": exact, perceptual, burst),
    `choice` (the image id the rule picks) and the kind's own columns; `members` have
    group_key, id, checksum and the kind's own columns."""


class Previous(GroupFrames):
    """The stored result: `groups` (PREVIOUS_SCHEMA) and `members` (PREVIOUS_MEMBERS_SCHEMA)."""


class Settled(GroupFrames):
    """Found's frames with `group_id` (kept or new) on both; `groups` also get `reviewed`,
    `choice` (a person's kept choice, else the rule's) and `chosen` (a person's)."""


def settle(found: Found, previous: Previous) -> Settled:
    """Give every found group its id and the decisions people made that still hold.
    Groups only inherit from previous groups of their own kind."""
    carried = _carry_over(found.members, previous)
    groups = found.groups.join(carried, on="group_key").with_columns(
        choice=pl.coalesce("chosen_id", "choice"), chosen=pl.col("chosen_id").is_not_null()
    ).drop("chosen_id")
    return Settled(groups, found.members.join(carried.select("group_key", "group_id"), on="group_key"))


def _carry_over(members: pl.DataFrame, previous: Previous) -> pl.DataFrame:
    """One row per group_key with `group_id`, `reviewed` and `chosen_id` (null: the rule's)."""
    kind = pl.col("group_key").str.split(":").list.first().alias("kind")
    new_counts = members.group_by("group_key", "checksum").agg(new=pl.len()).with_columns(kind)
    old_counts = previous.members.group_by("group_id", "kind", "checksum").agg(old=pl.len())
    old_sizes = old_counts.group_by("group_id").agg(old_size=pl.col("old").sum())
    new_sizes = new_counts.group_by("group_key").agg(new_size=pl.col("new").sum())
    same_files = members.join(previous.members, on="id").group_by("group_key", "group_id").agg(same_files=pl.len())
    overlap = (
        new_counts.join(old_counts, on=["kind", "checksum"])
        .group_by("group_key", "group_id")
        .agg(shared=pl.min_horizontal("new", "old").sum())
        .join(old_sizes, on="group_id")
        .join(new_sizes, on="group_key")
        .filter(pl.col("shared") * 2 > pl.col("old_size"))
        .join(same_files, on=["group_key", "group_id"], how="left")
        .sort(["shared", "same_files", "group_key", "group_id"], descending=[True, True, False, False], nulls_last=True)
        .unique("group_id", keep="first", maintain_order=True)
        .unique("group_key", keep="first", maintain_order=True)
    )
    keys = members.select("group_key").unique(maintain_order=True)
    keys = keys.with_columns(fresh_id=pl.Series([str(uuid.uuid4()) for _ in range(len(keys))], dtype=pl.String))
    matched = keys.join(overlap, on="group_key", how="left").join(previous.groups, on="group_id", how="left")
    same_members = (pl.col("shared") == pl.col("old_size")) & (pl.col("shared") == pl.col("new_size"))
    chosen = _still_member(matched, members)
    return matched.join(chosen, on="group_key", how="left").select(
        "group_key",
        group_id=pl.col("group_id").fill_null(pl.col("fresh_id")),
        reviewed=(same_members & pl.col("reviewed")).fill_null(False),
        chosen_id="kept_choice",
    )


def _still_member(matched: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """The chosen file if it is still a member, else a member with its checksum (moved)."""
    candidates = matched.filter(pl.col("chosen_id").is_not_null()).join(
        members.select("group_key", "id", "checksum"), on="group_key"
    )
    same_file = candidates.filter(pl.col("id") == pl.col("chosen_id"))
    moved = candidates.filter(pl.col("checksum") == pl.col("chosen_checksum"))
    return (
        pl.concat([same_file.with_columns(order=0), moved.with_columns(order=1)])
        .sort("order", "id")
        .unique("group_key", keep="first")
        .select("group_key", kept_choice="id")
    )
