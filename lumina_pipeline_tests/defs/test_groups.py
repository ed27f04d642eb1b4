"""`duplicate_groups` and `bursts` on a copy of the corpus, and decisions across re-runs."""

import itertools
import shutil

import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.export import export_catalog

CATALOG = "groups"  # the corpus copy, grouped once for the tests that only read what was found
CHANGED = "changed"  # a copy of the corpus of a test's own, for the tests that change files or decisions


@pytest.fixture(scope="module")
def grouped(corpus_pipeline):
    pipeline, inventory = corpus_pipeline
    return pipeline, pipeline.catalog_everything(CATALOG, inventory)


@pytest.fixture
def library(corpus, tmp_path):
    copy = tmp_path / "photos"
    shutil.copytree(corpus.photos, copy)
    return copy


@pytest.fixture
def regrouped(pipeline, library):
    pipeline.add_catalog(CHANGED, str(library))
    pipeline.catalog_everything(CHANGED)


def exported(pipeline, catalog: str = CHANGED) -> dict:
    with Session(pipeline.engine) as session:
        return export_catalog(session, catalog)


def group_of(document, path, kind="perceptual") -> dict:
    return next(g for g in document["duplicate_groups"] if path in g["members"] and g["similarity_type"] == kind)


def test_exact_groups_are_the_manifests(grouped, corpus):
    pipeline, _ = grouped
    groups = exported(pipeline, CATALOG)["duplicate_groups"]
    found = {frozenset(g["members"]) for g in groups if g["similarity_type"] == "exact"}
    assert found == {frozenset(g["members"]) for g in corpus.manifest["exact_duplicate_groups"]}


def test_every_edited_copy_is_grouped_with_its_original(grouped, corpus):
    pipeline, _ = grouped
    document = exported(pipeline, CATALOG)
    for group in corpus.manifest["near_duplicate_groups"]:
        for member in group["members"]:
            assert member["path"] in group_of(document, group["original"])["members"], (group["id"], member["path"])


def test_no_two_scenes_share_a_group_unless_the_manifest_tolerates_them(grouped, corpus):
    pipeline, _ = grouped
    scene = {f["path"]: f["scene"] for f in corpus.manifest["files"]}
    tolerated = {frozenset((p["a"], p["b"])) for p in corpus.manifest["tolerated_similar_pairs"]}
    for group in exported(pipeline, CATALOG)["duplicate_groups"]:
        for a, b in itertools.combinations(group["members"], 2):
            assert scene[a] == scene[b] or frozenset((a, b)) in tolerated, (a, b)


def test_bursts_are_the_manifests_and_decoys_stay_out(grouped, corpus):
    pipeline, _ = grouped
    document = exported(pipeline, CATALOG)
    found = [burst["members"] for burst in document["bursts"]]
    assert sorted(found) == sorted([frame["path"] for frame in burst["frames"]] for burst in corpus.manifest["bursts"])
    in_bursts = {path for members in found for path in members}
    for decoy in corpus.manifest["non_bursts"]:
        assert in_bursts.isdisjoint(decoy["files"]), decoy["id"]
    numbered = pipeline.rows(CATALOG, "burst_sequence")
    assert sorted(row["burst_sequence"] for row in numbered if row["burst_sequence"]) == [1, 1, 2, 2, 3, 3, 4, 4, 5]


def test_the_ui_figures_add_up(grouped, corpus):
    _, (duplicates, bursts) = grouped
    assert duplicates["exact_groups"] == len(corpus.manifest["exact_duplicate_groups"])
    constant = ("0" * 16, "f" * 16)
    flat = [
        f for f in corpus.manifest["files"] if sum(h in constant for h in f.get("reference_hashes", {}).values()) >= 2
    ]
    assert duplicates["too_flat_to_compare"] == len(flat)  # a tiny thumbnail, flat RAW previews
    assert duplicates["reclaimable_bytes"] > 0
    table = [line.split(" | ") for line in duplicates["largest_groups"].splitlines()[2:]]
    sizes = [int(row[1]) for row in table]
    assert sizes == sorted(sizes, reverse=True) and len(table) == min(10, len(grouped_paths(corpus)))
    assert all(row[-1].rstrip(" |") in {f["path"] for f in corpus.manifest["files"]} for row in table)  # paths as text
    assert (bursts["bursts"], bursts["frames_in_bursts"]) == (2, 9)


def grouped_paths(corpus) -> list:
    return corpus.manifest["exact_duplicate_groups"] + corpus.manifest["near_duplicate_groups"]


def mark_reviewed(pipeline, path):
    """As the review page's Enter does: the group reviewed, keeping its keeper."""
    with pipeline.engine.begin() as connection:
        connection.execute(text("""
            UPDATE duplicate_groups SET reviewed = true, primary_chosen = true WHERE id IN (
                SELECT m.group_id FROM duplicate_members m JOIN images i ON i.id = m.image_id
                WHERE i.catalog_id = :c AND i.path = :p AND i.status <> 'deleted')"""),
            {"c": pipeline.catalog_id(CHANGED), "p": path.encode()})


def test_a_review_survives_a_rerun(regrouped, pipeline):
    mark_reviewed(pipeline, "Toscana 2008/Tag 2/DSCN0021.jpg")
    before = group_of(exported(pipeline), "Toscana 2008/Tag 2/DSCN0021.jpg")
    pipeline.catalog_everything(CHANGED)
    after = group_of(exported(pipeline), "Toscana 2008/Tag 2/DSCN0021.jpg")
    assert after == before and after["reviewed"]


def test_a_new_copy_extends_the_group_keeps_id_and_primary_and_asks_for_review(regrouped, pipeline, library):
    original = "exif.org samples/fujifilm-dx10.jpg"
    mark_reviewed(pipeline, original)
    before = group_of(exported(pipeline), original)
    (library / "Backup (alter Laptop)" / "fujifilm-dx10 Kopie.jpg").write_bytes((library / original).read_bytes())
    pipeline.catalog_everything(CHANGED)
    after = group_of(exported(pipeline), original)
    assert (after["id"], after["primary"]) == (before["id"], before["primary"])
    assert set(after["members"]) == set(before["members"]) | {"Backup (alter Laptop)/fujifilm-dx10 Kopie.jpg"}
    assert not after["reviewed"]


def test_moving_a_file_keeps_its_group_and_the_review(regrouped, pipeline, library):
    moved = "Exports/web/DSCN0021_small.jpg"
    mark_reviewed(pipeline, moved)
    before = group_of(exported(pipeline), moved)
    (library / "Archiv").mkdir()
    (library / moved).rename(library / "Archiv" / "DSCN0021_small.jpg")
    pipeline.catalog_everything(CHANGED)
    after = group_of(exported(pipeline), "Archiv/DSCN0021_small.jpg")
    assert after["id"] == before["id"] and after["reviewed"]
    assert moved not in after["members"]


def test_a_member_edited_in_place_takes_its_groups_review_back(regrouped, pipeline, library):
    """The group people reviewed held the file as it was: its new content is not what they judged."""
    edited = "Exports/web/DSCN0021_small.jpg"
    mark_reviewed(pipeline, edited)
    with Image.open(library / edited) as image:
        image.convert("RGB").save(library / edited, quality=70)  # still a near-duplicate, other bytes
    pipeline.catalog_everything(CHANGED)
    after = group_of(exported(pipeline), edited)
    assert not after["reviewed"]
    assert edited not in [file["path"] for file in exported(pipeline)["removable"]]


def test_a_chosen_primary_survives_a_rerun(regrouped, pipeline):
    choice = "Chats/WhatsApp Images/IMG-20000531-WA0001.jpg"
    with pipeline.engine.begin() as connection:
        connection.execute(text("""
            UPDATE duplicate_groups g SET primary_image_id = i.id, primary_chosen = true
            FROM duplicate_members m JOIN images i ON i.id = m.image_id
            WHERE m.group_id = g.id AND i.catalog_id = :c AND i.path = :p AND g.similarity_type = 'perceptual'"""),
            {"c": pipeline.catalog_id(CHANGED), "p": choice.encode()})
    pipeline.catalog_everything(CHANGED)
    assert group_of(exported(pipeline), choice)["primary"] == choice
