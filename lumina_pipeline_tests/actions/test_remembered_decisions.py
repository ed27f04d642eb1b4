"""People's decisions on groups and bursts that a quarantine dissolves come back with undo:
remembered by their members' checksums (analysis/continuity.py), on a reviewed corpus copy."""

from sqlalchemy import text

from lumina_pipeline.defs.jobs import CATALOG_ASSETS
from lumina_pipeline.storage.decisions import decide
from lumina_pipeline.storage.groups import BURSTS, DUPLICATES, catalog_groups

CATALOG = "remembered"
TOSCANA = b"Toscana 2008/DSCN0038.jpg"  # chosen in its exact group of three, and one copy kept too
SCAN = b"Scans/alt/Cr\xc3\xa9mieux11 Kopie.TIFF"  # chosen over the rule's keeper of its exact pair


def decisions(library) -> dict[tuple[str, tuple[bytes, ...]], tuple[bool, bytes | None]]:
    """Each group and burst by its kind and members' paths: (reviewed, its keeper's path)."""
    catalog_id = library.pipeline.catalog_id(CATALOG)
    with library.pipeline.engine.connect() as connection:
        return {(grouping.table, tuple(sorted(group.paths))): (group.reviewed, group.chosen_path)
                for grouping in (DUPLICATES, BURSTS) for group in catalog_groups(connection, catalog_id, grouping)}


def regroup(library) -> None:
    assert library.pipeline.materialize(CATALOG_ASSETS, CATALOG).success


def members_of_group_holding(library, path: bytes) -> tuple[str, list[int]]:
    """The exact group holding `path`: its id and its members' image ids, `path`'s first."""
    with library.pipeline.engine.connect() as connection:
        rows = connection.execute(text("""
            SELECT g.id, i.id AS image_id FROM duplicate_groups g JOIN duplicate_members m ON m.group_id = g.id
            JOIN images i ON i.id = m.image_id
            WHERE g.id IN (SELECT m.group_id FROM duplicate_members m JOIN images i ON i.id = m.image_id
                           WHERE i.path = :p)
            ORDER BY i.path <> :p, i.id"""), {"p": path}).all()
    return rows[0].id, [row.image_id for row in rows]


def test_groups_and_bursts_a_quarantine_dissolved_come_back_from_undo_as_they_were_decided(library):
    toscana, (keeper, kept, _) = members_of_group_holding(library, TOSCANA)
    scans, (scan, _) = members_of_group_holding(library, SCAN)
    with library.pipeline.engine.begin() as connection:
        assert decide(connection, DUPLICATES, toscana, keeper, reviewed=True, keep=[kept])
        assert decide(connection, DUPLICATES, scans, scan, reviewed=True)
    before = decisions(library)
    assert all(reviewed for reviewed, _ in before.values()) and {(True, SCAN), (True, TOSCANA)} < set(before.values())

    library.quarantine_removable()
    regroup(library)
    dissolved = decisions(library)
    assert not [members for _, members in dissolved if SCAN in members]
    # the two kept copies are left: the person judged them, so they are not asked about again
    assert [decided for (_, members), decided in dissolved.items() if TOSCANA in members] == [(True, TOSCANA)]

    library.undo()
    regroup(library)
    assert decisions(library) == before
