"""Settle a grouping (duplicate groups, bursts) against the previous one: keep ids and decisions.

A group is identified by its members' checksums, counted with multiplicity: a file moved or
renamed keeps its checksum and so its place, while a new copy adds one. A new group takes
the id of the previous group from which most members carried over (more than half of that
group's members, the largest overlap winning, then the most files still the same: a stack
and its backup copy have the same checksums but not the same files). It keeps a chosen
primary (or best frame) only if that file is still a member (or, moved, its new file). It
keeps `reviewed` when its members are the same or fewer (copies quarantined from a group
where several were kept, a frame taken out of a burst) and its chosen keeper is still there:
the person judged every file left. Reviewing a group chooses its keeper (storage/decisions.py),
so that no regrouping puts another file in its place while it stays reviewed.

A group that vanishes for a while (its copies quarantined, then put back by undo; a folder
unmounted, then back) has no previous group to carry over from, so the decisions on every
group that does not carry over whole are remembered by its kind and members (`members`, its
checksums as one string), and a group that forms with those members takes them back:
reviewed (so "keep all" and "not duplicates" stay dismissed) and the chosen file when it is
a member again. A remembered decision lives until a group with those members forms again (the
decision is then that group's, and remembered anew when it goes) or another group with those
members goes: its decision, or none if a person took the review back, replaces it. Members
held by several groups at once (a burst and its backup copy) are neither remembered nor
recalled: the decision was on one of them, and recalling it on the other would make files
removable that nobody looked at. Which files a person keeps (`images.kept`, keep several) is
per file and needs no memory. Nothing forgets a decision because its files were purged: the
same bytes may come back from a backup, and a decision is a few checksums."""

import uuid
from typing import NamedTuple

import polars as pl

PREVIOUS_SCHEMA = {
    "group_id": pl.String,
    "reviewed": pl.Boolean,
    "chosen_id": pl.Int64,  # primary / best frame a person chose; null if the rule chose
    "chosen_checksum": pl.String,  # of the primary / best frame, whoever chose it
    "chosen_name": pl.String,  # its file name
}
PREVIOUS_MEMBERS_SCHEMA = {"group_id": pl.String, "kind": pl.String, "checksum": pl.String, "id": pl.Int64}
REMEMBERED_SCHEMA = {
    "kind": pl.String,
    "members": pl.String,  # the group's checksums, sorted, space-separated: a multiset
    "reviewed": pl.Boolean,
    "chosen_id": pl.Int64,
    "chosen_checksum": pl.String,
}
KIND = pl.col("group_key").str.split(":").list.first().alias("kind")  # of a found group


class Found(NamedTuple):
    """What a rule found: `groups`, one row per group, have group_key ("<kind>:...": exact,
    perceptual, burst), `choice` (the image id the rule picks) and the kind's own columns;
    `members`, one row per member, have group_key, id, checksum and the kind's own columns
    (and `name`, the file's, once `with_names` gave it)."""

    groups: pl.DataFrame
    members: pl.DataFrame


class Previous(NamedTuple):
    """The stored result: `groups` (PREVIOUS_SCHEMA) and `members` (PREVIOUS_MEMBERS_SCHEMA),
    and the decisions `remembered` (REMEMBERED_SCHEMA) on groups gone before them."""

    groups: pl.DataFrame
    members: pl.DataFrame
    remembered: pl.DataFrame


class Settled(NamedTuple):
    """Found's frames with `group_id` (kept or new) on both; `groups` also get `reviewed`,
    `choice` (a person's kept choice, else the rule's) and `chosen` (a person's). `remembered`:
    the decisions to remember from now on (REMEMBERED_SCHEMA)."""

    groups: pl.DataFrame
    members: pl.DataFrame
    remembered: pl.DataFrame


def with_names(found: Found, rows: pl.DataFrame) -> Found:
    """`found` with each member's file name, the last part of its `path` in `rows`: of copies
    moved together, the chosen file is the one of its name."""
    names = rows.select("id", name=pl.col("path").str.extract(r"([^/]*)$"))
    return found._replace(members=found.members.join(names, on="id", how="left"))


def settle(found: Found, previous: Previous) -> Settled:
    """Give every found group its id and the decisions people made that still hold.
    Groups only inherit from previous groups of their own kind."""
    members = found.members.with_columns(KIND)
    carried = _carry_over(members, previous)
    # only groups that did not carry over whole are remembered or recalled: the others keep
    # their decisions in their own rows, and a regrouping that changes little costs little
    gone = previous.members.join(carried.filter("unchanged"), on="group_id", how="anti")
    remembered = _remember(previous.remembered, _member_sets(gone, "group_id").join(previous.groups, on="group_id"))
    formed = _member_sets(members.join(carried.filter(~pl.col("unchanged")), on="group_key", how="semi"), "group_key")
    recalled = formed.filter("alone").join(remembered, on=["kind", "members"])
    # a decision comes back with the very file it kept, not a copy of it (which one would be a
    # guess), and a review only with it, not with another file chosen since
    unnamed = recalled.with_columns(chosen_name=pl.lit(None, pl.String))  # a moved file is not taken anyway
    recalled_keeper = _still_member(unnamed, members).filter(~pl.col("moved")).select(
        "group_key", recalled_choice="kept_choice"
    )
    recalled_review = (pl.col("recalled_review") & pl.col("recalled_choice").is_not_null()
                       & pl.coalesce(pl.col("chosen_id") == pl.col("recalled_choice"), pl.lit(True)))
    decided = (
        carried.join(recalled.select("group_key", recalled_review="reviewed"), on="group_key", how="left")
        .join(recalled_keeper, on="group_key", how="left")
        .select("group_key", "group_id", reviewed=pl.col("reviewed") | recalled_review.fill_null(False),
                chosen_id=pl.coalesce("chosen_id", "recalled_choice"))  # the later decision first
    )
    groups = found.groups.join(decided, on="group_key").with_columns(
        choice=pl.coalesce("chosen_id", "choice"), chosen=pl.col("chosen_id").is_not_null()
    ).drop("chosen_id")
    settled_members = found.members.join(carried.select("group_key", "group_id"), on="group_key")
    # a recalled decision lives on in its group's row, until that group is gone again
    return Settled(groups, settled_members, remembered.join(recalled, on=["kind", "members"], how="anti"))


def _member_sets(members: pl.DataFrame, group: str) -> pl.DataFrame:
    """One row per `group` with its kind and `members`, and whether no other group has the same."""
    return (
        members.group_by(group)
        .agg(pl.col("kind").first(), members=pl.col("checksum").sort().str.join(" "))
        .with_columns(alone=pl.len().over("kind", "members") == 1)
    )


def _remember(remembered: pl.DataFrame, gone: pl.DataFrame) -> pl.DataFrame:
    """The remembered decisions with those on the `gone` groups (member sets with their
    PREVIOUS_SCHEMA decisions): each group's members take its decision, or are forgotten when
    it has none or another gone group has the same members."""
    decided = gone.filter(pl.col("alone") & (pl.col("reviewed") | pl.col("chosen_id").is_not_null()))
    older = remembered.join(gone, on=["kind", "members"], how="anti")
    return pl.concat([older, decided.select(list(REMEMBERED_SCHEMA))])


def _carry_over(members: pl.DataFrame, previous: Previous) -> pl.DataFrame:
    """One row per group_key with `group_id`, `reviewed`, `chosen_id` (null: the rule's) and
    whether it is `unchanged` (the same members as the previous group it carries on).
    Members are counted by checksum: one without (a stack's sidecar, which is never read, or a
    file that could not be read) is not recognized once moved, and so not counted at all."""
    checksummed = pl.col("checksum").is_not_null()
    new_counts = members.filter(checksummed).group_by("group_key", "kind", "checksum").agg(new=pl.len())
    old_counts = previous.members.filter(checksummed).group_by("group_id", "kind", "checksum").agg(old=pl.len())
    same_files = members.join(previous.members, on="id").group_by("group_key", "group_id").agg(same_files=pl.len())
    overlap = (
        new_counts.with_columns(new_size=pl.col("new").sum().over("group_key"))
        .join(old_counts.with_columns(old_size=pl.col("old").sum().over("group_id")), on=["kind", "checksum"])
        .group_by("group_key", "group_id")
        .agg(pl.col("new_size", "old_size").first(), shared=pl.min_horizontal("new", "old").sum())
        .filter(pl.col("shared") * 2 > pl.col("old_size"))
        .join(same_files, on=["group_key", "group_id"], how="left")
        .sort(["shared", "same_files", "group_key", "group_id"], descending=[True, True, False, False], nulls_last=True)
        .unique("group_id", keep="first", maintain_order=True)
        .unique("group_key", keep="first", maintain_order=True)
    )
    keys = members.select("group_key").unique(maintain_order=True)
    keys = keys.with_columns(fresh_id=pl.Series([str(uuid.uuid4()) for _ in range(len(keys))], dtype=pl.String))
    matched = keys.join(overlap, on="group_key", how="left").join(previous.groups, on="group_id", how="left")
    only_lost = pl.col("shared") == pl.col("new_size")
    same_members = only_lost & (pl.col("shared") == pl.col("old_size"))
    return matched.join(_still_member(matched, members, previous.members), on="group_key", how="left").select(
        "group_key",
        group_id=pl.col("group_id").fill_null(pl.col("fresh_id")),
        # the person's keeper is still there, and every file left is one they judged
        reviewed=(only_lost & pl.col("reviewed") & pl.col("kept_choice").is_not_null()).fill_null(False),
        chosen_id="kept_choice",
        unchanged=same_members.fill_null(False),
    )


def _still_member(matched: pl.DataFrame, members: pl.DataFrame, before: pl.DataFrame | None = None) -> pl.DataFrame:
    """The chosen file if it is still a member, else (`moved`) a member with its checksum: first
    one that was no member of the group `before` (the file it moved to), then another copy;
    of several, one of its name (copies moved together)."""
    candidates = matched.filter(pl.col("chosen_id").is_not_null()).join(
        members.select("group_key", "id", "checksum", "name"), on="group_key"
    )
    was_member = pl.lit(False)
    if before is not None:
        candidates = candidates.join(before.select("group_id", "id", was=pl.lit(True)), on=["group_id", "id"],
                                     how="left")
        was_member = pl.col("was").fill_null(False)
    moved_to = 1 + 2 * was_member.cast(pl.Int32) + pl.col("name").ne_missing(pl.col("chosen_name")).cast(pl.Int32)
    order = (pl.when(pl.col("id") == pl.col("chosen_id")).then(0)
             .when(pl.col("checksum") == pl.col("chosen_checksum")).then(moved_to))
    return (
        candidates.with_columns(order=order)
        .filter(pl.col("order").is_not_null())
        .sort("order", "id")
        .unique("group_key", keep="first")
        .select("group_key", kept_choice="id", moved=pl.col("order") > 0)
    )
