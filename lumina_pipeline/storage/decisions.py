"""What people decide: star ratings, manual tags, a group's primary, a burst's best frame,
more files to keep, and that a group or burst has been reviewed. The pipeline keeps all of
these across re-runs (`analysis/continuity.py` for groups and bursts; the rest it never
writes)."""

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Row, text

from lumina_pipeline.storage.browse import removable_files
from lumina_pipeline.storage.catalogs import lock_catalog
from lumina_pipeline.storage.groups import DUPLICATES, FILE_NAME, Grouping
from lumina_pipeline.storage.tags import MANUAL


class ContentChanged(Exception):
    """A mark meant for bytes that a file no longer holds: a batch read it anew since it was shown."""


def hold_content(connection: Connection, image_id: int, seen: str | None) -> None:
    """Refuse a mark (ContentChanged) for an image whose file holds other bytes than the
    checksum `seen` (when given), and lock its row until the caller commits. What was said of
    the old bytes left with them (follow_moved_files): a mark given now would land on a photo
    the person never saw. A batch rewriting the row waits for the lock, then carries the mark
    along; one that took the row first is waited for, and its new checksum refused."""
    if seen is None:
        return
    checksum = connection.execute(text("SELECT checksum FROM images WHERE id = :i FOR UPDATE"), {"i": image_id})
    if checksum.scalar() != seen:
        raise ContentChanged("the file holds other bytes since it was shown (it was read again): look again")


def set_rating(connection: Connection, image_id: int, rating: int | None) -> bool:
    changed = connection.execute(text("UPDATE images SET rating = :r WHERE id = :i"), {"r": rating, "i": image_id})
    return changed.rowcount == 1


def keep_files(connection: Connection, image_ids: Sequence[int]) -> None:
    """Mark files as kept by a person, whatever their groups say."""
    connection.execute(text("UPDATE images SET kept = true WHERE id = ANY(:ids)"), {"ids": list(image_ids)})


def add_manual_tag(connection: Connection, image_id: int, name: str) -> None:
    """Tag an image by hand; a model's tag of the same name becomes the person's."""
    connection.execute(text("""
        INSERT INTO tags (catalog_id, name, category)
        SELECT catalog_id, :name, 'manual' FROM images WHERE id = :i
        ON CONFLICT (catalog_id, name) DO NOTHING"""), {"name": name, "i": image_id})
    connection.execute(text("""
        INSERT INTO image_tags (image_id, tag_id, source)
        SELECT i.id, t.id, :manual FROM images i JOIN tags t ON t.catalog_id = i.catalog_id AND t.name = :name
        WHERE i.id = :i
        ON CONFLICT (image_id, tag_id) DO UPDATE SET source = :manual, confidence = NULL"""),
        {"name": name, "i": image_id, "manual": MANUAL})


def remove_tag(connection: Connection, image_id: int, name: str) -> bool:
    """Take a tag off an image, whoever set it (a model's tag comes back only if the image is
    embedded again)."""
    removed = connection.execute(text("""
        DELETE FROM image_tags it USING tags t, images i
        WHERE it.image_id = :i AND it.tag_id = t.id AND t.name = :name AND i.id = it.image_id
          AND t.catalog_id = i.catalog_id"""), {"name": name, "i": image_id})
    return removed.rowcount > 0


# Old and new rows paired one to one within each `by`, in the order of their paths.
_IN_TURN = """
    SELECT n.id AS new_id, o.id AS old_id
    FROM (SELECT *, row_number() OVER (PARTITION BY {by} ORDER BY path) AS k FROM {old}) o
    JOIN (SELECT *, row_number() OVER (PARTITION BY {by} ORDER BY path) AS k FROM {new}) n USING ({by}, k)"""
# The rows a batch has just written, with the checksum and pHash each had before (null: not read before).
_WRITTEN = """SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:before AS text[]), CAST(:phash AS text[]))
              AS w(id, before, phash)"""
# A file rewritten in place as the same picture (its metadata written into it by a photo
# manager, turned losslessly, saved again) takes back what was said of it: its pHash this close
# to the one its old bytes had, its new bytes no other file's.
SAME_PICTURE_BITS = 4
# The rows of `written` that now hold other bytes than before: new files, and files rewritten.
_ARRIVED = f"""
    SELECT i.id, i.catalog_id, i.checksum, i.path, {FILE_NAME} AS name FROM images i JOIN written w USING (id)
    WHERE i.checksum IS NOT NULL AND i.checksum IS DISTINCT FROM w.before"""
_HAS_MARKS = """(i.kept OR i.rating IS NOT NULL
                 OR EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = i.id AND t.source = :manual))"""
# What is said of images rows, and of parked contents, as _pass_on reads it.
_IMAGE_MARKS = ("SELECT id, kept, rating FROM images",
                "SELECT image_id AS id, tag_id FROM image_tags WHERE source = :manual")
_PARKED_MARKS = ("SELECT id, kept, rating FROM parked_marks",
                 "SELECT m.id, t.id AS tag_id FROM parked_marks m JOIN tags t ON t.id = ANY(m.tag_ids)")


def follow_moved_files(connection: Connection, previous: Mapping[int, tuple[str | None, str | None]]) -> None:
    """What a person said of a file (kept, rating, manual tags) is said of its content, and
    follows that content to the file holding it now: a file moved or renamed outside Lumina,
    files whose names were swapped, a numbered series renamed one place along. The inventory
    knows files by name; only the checksums a batch reads tell where each content went.

    `previous` gives the checksum and pHash that each row the batch has just written had
    before. First the marks of every content that left its file are parked by its checksum
    (parked_marks), with its pHash: those of a row rewritten with other bytes, and those of the
    rows that last held a content which has just arrived in another file: deleted rows, and
    pending rows that another batch will read (names swapped across two batches). Then each row
    whose content arrived takes the parked marks of that content, one parked file's each, of its
    own file name first: copies moved together each keep what was said of them.

    The caller holds the catalog's MARKS_LOCK_SPACE lock from before it wrote the rows: two
    batches handing marks between each other's rows at once would lose some."""
    params = {"ids": list(previous), "before": [checksum for checksum, _ in previous.values()],
              "phash": [phash for _, phash in previous.values()], "manual": MANUAL}
    connection.execute(text(f"""
        WITH written AS ({_WRITTEN}),
        departed AS (
            SELECT i.id, w.before AS checksum, w.phash FROM images i JOIN written w USING (id)
            WHERE w.before IS NOT NULL AND i.checksum IS DISTINCT FROM w.before AND {_HAS_MARKS}
            UNION ALL
            SELECT i.id, i.checksum, i.phash FROM images i
            JOIN (SELECT DISTINCT catalog_id, checksum FROM ({_ARRIVED}) a) a USING (catalog_id, checksum)
            WHERE (i.status = 'deleted' OR (i.status = 'pending' AND i.id NOT IN (SELECT id FROM written)))
              AND {_HAS_MARKS}),
        parked AS (
            INSERT INTO parked_marks (catalog_id, checksum, path, phash, kept, rating, tag_ids)
            SELECT i.catalog_id, d.checksum, i.path, d.phash, i.kept, i.rating,
                   ARRAY(SELECT t.tag_id FROM image_tags t WHERE t.image_id = i.id AND t.source = :manual)
            FROM departed d JOIN images i USING (id)),
        unmarked AS (
            UPDATE images SET kept = false, rating = NULL WHERE id IN (SELECT id FROM departed))
        DELETE FROM image_tags WHERE image_id IN (SELECT id FROM departed) AND source = :manual"""), params)
    pairs = connection.execute(text(f"""
        WITH written AS ({_WRITTEN}),
        arrived AS ({_ARRIVED}),
        parked AS (
            SELECT m.id, m.checksum, m.path, {FILE_NAME} AS name FROM parked_marks m
            JOIN (SELECT DISTINCT catalog_id, checksum FROM arrived) a USING (catalog_id, checksum)),
        named AS ({_IN_TURN.format(by="checksum, name", old="parked", new="arrived")}),
        parked_left AS (SELECT * FROM parked WHERE id NOT IN (SELECT old_id FROM named)),
        arrived_left AS (SELECT * FROM arrived WHERE id NOT IN (SELECT new_id FROM named)),
        renamed AS ({_IN_TURN.format(by="checksum", old="parked_left", new="arrived_left")})
        SELECT * FROM named UNION ALL SELECT * FROM renamed"""), params).all()
    _give_parked(connection, pairs)


def hand_over_deleted_files(connection: Connection, catalog_id: uuid.UUID) -> None:
    """What was said of a deleted file goes to a file that holds its content, once the catalog
    has no file left to read: a file copied elsewhere and then deleted (a move across drives
    that a scan saw half done), or deleted where a copy stays. While files wait to be read,
    one of them may be the file itself, moved: it takes them when it is read
    (follow_moved_files). Each goes to one file, of its own name first, then in path order.
    And what was said of a file rewritten in place goes back to it (_take_back_rewritten).
    The caller holds the catalog's MARKS_LOCK_SPACE lock from before it changed any row."""
    _take_back_rewritten(connection, catalog_id)
    params = {"c": catalog_id, "manual": MANUAL}
    pairs = connection.execute(text(f"""
        WITH gone AS (
            SELECT i.id, i.checksum, {FILE_NAME} AS name FROM images i
            WHERE i.catalog_id = :c AND i.status = 'deleted' AND {_HAS_MARKS}
              AND NOT EXISTS (SELECT 1 FROM images p WHERE p.catalog_id = :c AND p.status = 'pending')),
        holders AS (
            SELECT id, checksum, path, {FILE_NAME} AS name FROM images
            WHERE catalog_id = :c AND status = 'ok' AND checksum IN (SELECT checksum FROM gone))
        SELECT DISTINCT ON (g.id) h.id AS keeper, g.id FROM gone g JOIN holders h USING (checksum)
        ORDER BY g.id, h.name = g.name DESC, h.path"""), params).all()
    if pairs:
        params = {"handed": _give(connection, pairs, _IMAGE_MARKS), "manual": MANUAL}
        connection.execute(text("UPDATE images SET kept = false, rating = NULL WHERE id = ANY(:handed)"), params)
        connection.execute(text("DELETE FROM image_tags WHERE image_id = ANY(:handed) AND source = :manual"), params)


def _take_back_rewritten(connection: Connection, catalog_id: uuid.UUID) -> None:
    """Parked marks go back to the file they were parked from, once the catalog has no file
    left to read (a content moved elsewhere has taken its own by then), where that file holds
    the same picture in other bytes that no other file holds, and nothing said of it since."""
    pairs = connection.execute(text(f"""
        SELECT DISTINCT ON (m.id) i.id AS keeper, m.id FROM parked_marks m
        JOIN images i ON i.catalog_id = m.catalog_id AND i.path = m.path AND i.status = 'ok'
        WHERE m.catalog_id = :c AND m.phash IS NOT NULL AND i.phash IS NOT NULL
          AND bit_count(CAST('x' || m.phash AS bit(64)) # CAST('x' || i.phash AS bit(64))) <= {SAME_PICTURE_BITS}
          AND NOT {_HAS_MARKS}
          AND NOT EXISTS (SELECT 1 FROM images o WHERE o.catalog_id = :c AND o.checksum = i.checksum AND o.id <> i.id)
          AND NOT EXISTS (SELECT 1 FROM images p WHERE p.catalog_id = :c AND p.status = 'pending')
        ORDER BY m.id, i.id"""), {"c": catalog_id, "manual": MANUAL}).all()
    _give_parked(connection, pairs)


class GroupChanged(Exception):
    """A decision made on members a group no longer has: a regrouping came first."""


def decide(
    connection: Connection,
    grouping: Grouping,
    group_id: uuid.UUID,
    image_id: int | None,
    reviewed: bool,
    keep: Sequence[int] | None = None,
    keep_all: bool = False,
    seen: Sequence[int] | None = None,
) -> bool:
    """Record a person's choice of a group's primary or a burst's best frame (when given: it
    must be a member), the other members to keep too (`keep`, when given: the members not
    in it are no longer kept; `keep_all`: every member, "not duplicates"), and whether it is
    reviewed. A reviewed group's left-over files hand their manual tags and best rating to
    the keeper. False when an image is not a member; GroupChanged when the members are no
    longer those the person saw (`seen`, when given)."""
    _lock_catalog_of(connection, grouping.table, group_id)
    members = set(connection.execute(
        text(f"SELECT i.id FROM {grouping.table} g {grouping.members} WHERE g.id = :g"), {"g": group_id}
    ).scalars())
    if seen is not None and set(seen) != members:
        raise GroupChanged(f"its members changed since it was shown (it now has {len(members)} files): look again")
    if not {image_id, *(keep or ())} - {None} <= members:
        return False
    keep = sorted(members) if keep_all else keep
    if image_id is not None:
        connection.execute(text(f"""
            UPDATE {grouping.table} SET {grouping.choice} = :i, {grouping.chosen} = true{grouping.on_choice}
            WHERE id = :g"""), {"g": group_id, "i": image_id})
    if keep is not None:
        connection.execute(text("UPDATE images SET kept = (id = ANY(:keep)) WHERE id = ANY(:members)"),
                           {"keep": list(keep), "members": list(members)})
    # reviewing chooses the keeper shown, so that a regrouping never puts another in its place
    connection.execute(text(f"UPDATE {grouping.table} SET reviewed = :r, {grouping.chosen} = {grouping.chosen} OR :r"
                            " WHERE id = :g"), {"g": group_id, "r": reviewed})
    if reviewed:
        _hand_over_to_keepers(connection, grouping, [group_id])
    return True


@dataclass(frozen=True)
class Accepted:
    """Unreviewed duplicate groups a bulk accept takes (or took), keeping their suggested
    keepers, and the files that leaves removable."""

    groups: int
    files: int
    size_bytes: int
    seen: str  # the groups and their members, digested: an accept given it takes exactly those


def accept_suggestions(
    connection: Connection, catalog_id: uuid.UUID, *, exact: bool, min_confidence: int | None, apply: bool,
    seen: str | None = None,
) -> Accepted:
    """The unreviewed duplicate groups that are exact (with `exact`) or at least
    `min_confidence` alike, with the files their suggested keepers would make removable (as
    the removable list will say, stacks and keepers elsewhere considered: the groups are
    accepted, the list read, and that undone unless `apply`). GroupChanged when the groups,
    their keepers or members, or the files made removable are not those `seen` (a preview's)
    any more: a regrouping came in between."""
    lock_catalog(connection, catalog_id)
    groups = connection.execute(text("""
        SELECT g.id, g.primary_image_id, array_agg(m.image_id ORDER BY m.image_id) AS members
        FROM duplicate_groups g JOIN duplicate_members m ON m.group_id = g.id
        WHERE g.catalog_id = :c AND NOT g.reviewed AND (g.similarity_type = 'exact' OR NOT :exact)
          AND g.confidence >= coalesce(CAST(:min AS integer), 0)
        GROUP BY g.id ORDER BY g.id"""), {"c": catalog_id, "exact": exact, "min": min_confidence}).all()
    ids = [group.id for group in groups]
    before = {file.id for file in removable_files(connection, catalog_id)}
    connection.execute(text("SAVEPOINT accepting"))
    accepted = "UPDATE duplicate_groups SET reviewed = true, primary_chosen = true WHERE id = ANY(:groups)"
    connection.execute(text(accepted), {"groups": ids})
    newly = [file for file in removable_files(connection, catalog_id) if file.id not in before]
    outcome = [(str(group.id), group.primary_image_id, group.members) for group in groups], sorted(f.id for f in newly)
    digest = hashlib.sha256(repr(outcome).encode()).hexdigest()
    taken = apply and seen in (None, digest)
    connection.execute(text("RELEASE SAVEPOINT accepting" if taken else "ROLLBACK TO SAVEPOINT accepting"))
    if apply and not taken:
        raise GroupChanged("the groups to accept changed since they were counted (a regrouping came first): look again")
    if taken:
        _hand_over_to_keepers(connection, DUPLICATES, ids)
    return Accepted(len(ids), len(newly), sum(file.size_bytes for file in newly), digest)


def _hand_over_to_keepers(connection: Connection, grouping: Grouping, group_ids: Sequence[uuid.UUID]) -> None:
    """What a person said of a group's left-over files goes to its keeper: their manual tags
    (a union) and the highest rating, so that choosing a keeper never loses either."""
    left_over = f"""
        SELECT g.{grouping.choice} AS keeper, i.id FROM {grouping.table} g {grouping.members}
        WHERE g.id = ANY(CAST(:groups AS uuid[])) AND i.id <> g.{grouping.choice} AND NOT i.kept"""
    _pass_on(connection, left_over, {"groups": [str(group) for group in group_ids], "manual": MANUAL}, _IMAGE_MARKS)


def _give(connection: Connection, pairs: Sequence[Row], marks: tuple[str, str]) -> list[int]:
    """_pass_on for (keeper, id) rows: the ids whose marks were given."""
    given = [source for _, source in pairs]
    params = {"keepers": [keeper for keeper, _ in pairs], "given": given, "manual": MANUAL}
    _pass_on(connection, "SELECT * FROM unnest(CAST(:keepers AS bigint[]), CAST(:given AS bigint[])) AS p(keeper, id)",
             params, marks)
    return given


def _give_parked(connection: Connection, pairs: Sequence[Row]) -> None:
    """The parked marks of (keeper, parked id) `pairs` go to their keepers, and are parked no more."""
    if pairs:
        taken = _give(connection, pairs, _PARKED_MARKS)
        connection.execute(text("DELETE FROM parked_marks WHERE id = ANY(:taken)"), {"taken": taken})


def _pass_on(connection: Connection, pairs: str, params: dict, marks: tuple[str, str]) -> None:
    """Give each `keeper` of `pairs` (SQL of keeper and id rows) the manual tags (a union),
    the highest rating and the `kept` mark of its ids (a moved file's; a group's left-over
    files are never kept), read from `marks`: SQL of (id, kept, rating) rows and of (id,
    tag_id) rows of manual tags."""
    said, tagged = marks
    connection.execute(text(f"""
        INSERT INTO image_tags (image_id, tag_id, source)
        SELECT DISTINCT p.keeper, t.tag_id, :manual FROM ({pairs}) p JOIN ({tagged}) t ON t.id = p.id
        ON CONFLICT (image_id, tag_id) DO UPDATE SET source = :manual, confidence = NULL"""), params)
    connection.execute(text(f"""
        UPDATE images SET kept = images.kept OR m.kept, rating = greatest(images.rating, m.rating)
        FROM (SELECT p.keeper, bool_or(s.kept) AS kept, max(s.rating) AS rating
              FROM ({pairs}) p JOIN ({said}) s ON s.id = p.id GROUP BY p.keeper) m
        WHERE images.id = m.keeper AND (m.kept OR m.rating IS NOT NULL)"""), params)


def _lock_catalog_of(connection: Connection, table: str, row_id: uuid.UUID) -> None:
    """Wait until a regrouping of the row's catalog has committed: a decision saved while it
    ran would otherwise be overwritten by the previous state it read. Group and burst ids
    carry over, so the decision then lands on the regrouped row."""
    catalog_id = connection.execute(text(f"SELECT catalog_id FROM {table} WHERE id = :i"), {"i": row_id}).scalar()
    if catalog_id is not None:
        lock_catalog(connection, catalog_id)
