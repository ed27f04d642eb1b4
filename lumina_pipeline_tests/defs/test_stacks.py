"""`stacks` on the corpus, end to end through the assets and the export: one shot stored as
several files is found, never grouped with itself, and never half removed."""

import itertools

import dagster as dg
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from lumina_pipeline.defs.checks import no_group_holds_one_shot_twice
from lumina_pipeline.defs.jobs import CATALOG_ASSETS
from lumina_pipeline.export import export_catalog
from lumina_pipeline.storage.decisions import decide
from lumina_pipeline.storage.groups import DUPLICATES

CATALOG = "stacks"


@pytest.fixture(scope="module")
def cataloged(corpus_pipeline):
    pipeline, inventory = corpus_pipeline
    for batch in inventory["batches_to_process"]:
        pipeline.analyze(CATALOG, batch)
    result = pipeline.materialize(CATALOG_ASSETS, CATALOG)
    stacks = next(m for m in result.asset_materializations_for_node("stacks"))
    return pipeline, {key: value.value for key, value in stacks.metadata.items()}


def exported(pipeline) -> dict:
    with Session(pipeline.engine) as session:
        return export_catalog(session, CATALOG)


def test_every_stack_of_the_manifest_is_found_and_nothing_else(cataloged, corpus):
    pipeline, metadata = cataloged
    document = exported(pipeline)
    found = {(s["kind"], frozenset(s["members"])) for s in document["stacks"]}
    assert found == {(s["kind"], frozenset(s["members"])) for s in corpus.manifest["stacks"]}
    for look_alike in corpus.manifest["not_stacks"]:
        assert not any(set(look_alike["members"]) <= members for _, members in found)
    assert metadata["stacks"] == len(corpus.manifest["stacks"])
    assert metadata["raw_jpeg_stacks"] == sum(s["kind"] == "raw_jpeg" for s in corpus.manifest["stacks"])


def test_the_still_is_the_primary_and_every_file_names_its_stack(cataloged):
    document = exported(pipeline := cataloged[0])
    stack_of = {f["path"]: f["stack"] for f in document["files"]}
    for stack in document["stacks"]:
        assert stack["primary"].lower().endswith((".jpg", ".heic")), stack
        assert {stack_of[path] for path in stack["members"]} == {stack["id"]}
    assert sum(s is not None for s in stack_of.values()) == sum(len(s["members"]) for s in document["stacks"])
    assert pipeline.materialize(CATALOG_ASSETS, CATALOG).success
    assert {s["id"] for s in exported(pipeline)["stacks"]} == {s["id"] for s in document["stacks"]}  # ids carry over


def test_no_group_holds_one_shot_twice_or_two_frames_of_a_burst(cataloged, corpus):
    document = exported(cataloged[0])
    stack_of = {f["path"]: f["stack"] for f in document["files"]}
    checksum = {f["path"]: f["checksum"] for f in document["files"]}
    frames = {frame: burst["id"] for burst in document["bursts"] for frame in burst["members"]}
    for group in document["duplicate_groups"]:
        for a, b in itertools.combinations(group["members"], 2):
            assert stack_of[a] is None or stack_of[a] != stack_of[b], (a, b)
            assert checksum[a] == checksum[b] or a not in frames or frames[a] != frames.get(b), (a, b)
    burst_frames = [frame["path"] for burst in corpus.manifest["bursts"] for frame in burst["frames"]]
    assert any(path in frames for path in burst_frames)


def test_a_copy_of_a_whole_stack_is_its_duplicate_as_one_card(cataloged, corpus):
    document = exported(cataloged[0])
    original, backup = (next(s for s in document["stacks"] if s["members"] == m["members"])
                        for m in corpus.manifest["stacks"] if m["id"] in ("S2", "S3"))
    groups = [g for g in document["duplicate_groups"] if original["primary"] in g["members"]]
    assert len(groups) == 1 and set(groups[0]["members"]) == {original["primary"], backup["primary"]}
    videos = next(g for g in document["duplicate_groups"] if g["primary"].endswith(".MOV"))
    assert videos["similarity_type"] == "exact" and len(videos["members"]) == 2
    assert videos["primary"] in original["members"] and groups[0]["primary"] == original["primary"]  # one kept stack


def test_after_review_a_stack_goes_whole_or_stays_whole(cataloged):
    pipeline = cataloged[0]
    document = exported(pipeline)
    stacked = {path: s for s in document["stacks"] for path in s["members"]}
    with pipeline.engine.begin() as connection:
        for group in document["duplicate_groups"]:
            if any(path in stacked for path in group["members"]):
                decide(connection, DUPLICATES, group["id"], None, reviewed=True)
    removable = {r["path"] for r in exported(pipeline)["removable"]}
    kept = {path for path in stacked if path not in removable}
    assert removable & set(stacked), "some reviewed stack is removable"
    for path in removable & set(stacked):
        assert set(stacked[path]["members"]) <= removable, path  # RAW, JPEG, video: all of them
        assert not set(stacked[path]["members"]) & kept


def test_the_check_fails_when_a_group_holds_two_files_of_one_stack(cataloged):
    pipeline = cataloged[0]
    assert check_passes(pipeline)
    document = exported(pipeline)
    group, stack = next((g, s) for g in document["duplicate_groups"] for s in document["stacks"]
                        if s["primary"] in g["members"])
    partner = next(path for path in stack["members"] if path != stack["primary"])
    with pipeline.engine.begin() as connection:
        connection.execute(text("""
            INSERT INTO duplicate_members (group_id, image_id, similarity_score)
            SELECT :g, id, 100 FROM images WHERE path = :p AND stack_id = :s"""),
            {"g": group["id"], "p": partner.encode(), "s": stack["id"]})
    assert not check_passes(pipeline)
    assert pipeline.materialize(CATALOG_ASSETS, CATALOG).success
    assert not check_passes(pipeline)  # nothing the regrouping reads changed: it left the groups as they were
    pipeline.forget_groupings(CATALOG)
    assert pipeline.materialize(CATALOG_ASSETS, CATALOG).success  # the next regrouping puts it right
    assert check_passes(pipeline)


def check_passes(pipeline) -> bool:
    result = dg.materialize(
        [*CATALOG_ASSETS, no_group_holds_one_shot_twice],
        selection=dg.AssetSelection.checks(no_group_holds_one_shot_twice),
        instance=pipeline.instance, resources=pipeline.resources,
    )
    return result.get_asset_check_evaluations()[0].passed
