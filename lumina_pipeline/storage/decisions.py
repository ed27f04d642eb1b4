"""What people decide: star ratings, manual tags, a group's primary, a burst's best frame,
and that a group or burst has been reviewed. The pipeline keeps all of these across
re-runs (`analysis/continuity.py` for groups and bursts; the rest it never writes)."""

import uuid

from sqlalchemy import Connection, text

from lumina_pipeline.storage.catalogs import lock_catalog
from lumina_pipeline.storage.groups import Grouping

MANUAL = "manual"  # image_tags.source of a tag a person set


def set_rating(connection: Connection, image_id: int, rating: int | None) -> bool:
    changed = connection.execute(text("UPDATE images SET rating = :r WHERE id = :i"), {"r": rating, "i": image_id})
    return changed.rowcount == 1


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


def decide(
    connection: Connection, grouping: Grouping, group_id: uuid.UUID, image_id: int | None, reviewed: bool
) -> bool:
    """Record a person's choice of a group's primary or a burst's best frame (when given: it
    must be a member) and whether it is reviewed. False when the image is not a member."""
    _lock_catalog_of(connection, grouping.table, group_id)
    if image_id is not None:
        chosen = connection.execute(text(f"""
            UPDATE {grouping.table} SET {grouping.choice} = :i, {grouping.chosen} = true{grouping.on_choice}
            WHERE id IN (SELECT g.id FROM {grouping.table} g {grouping.members} WHERE g.id = :g AND i.id = :i)"""),
            {"g": group_id, "i": image_id})
        if chosen.rowcount != 1:
            return False
    connection.execute(text(f"UPDATE {grouping.table} SET reviewed = :r WHERE id = :g"), {"g": group_id, "r": reviewed})
    return True


def _lock_catalog_of(connection: Connection, table: str, row_id: uuid.UUID) -> None:
    """Wait until a regrouping of the row's catalog has committed: a decision saved while it
    ran would otherwise be overwritten by the previous state it read. Group and burst ids
    carry over, so the decision then lands on the regrouped row."""
    catalog_id = connection.execute(text(f"SELECT catalog_id FROM {table} WHERE id = :i"), {"i": row_id}).scalar()
    if catalog_id is not None:
        lock_catalog(connection, catalog_id)
