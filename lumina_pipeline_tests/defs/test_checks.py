"""Asset checks against the embedded database: complete analysis, live references, bit rot."""

import os
import shutil

import dagster as dg
from sqlalchemy import text

from lumina_pipeline.defs.assets.duplicates import duplicate_groups
from lumina_pipeline.defs.assets.images import photo_analysis
from lumina_pipeline.defs.assets.verification import checksum_verification
from lumina_pipeline.defs.checks import every_photo_is_analyzed, groups_point_at_listed_files


def evaluations(result: dg.ExecuteInProcessResult) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def verify(pipeline, share: float = 1.0):
    config = {"ops": {"checksum_verification": {"config": {"share_per_run": share}}}}
    result = dg.materialize(
        [checksum_verification], instance=pipeline.instance, resources=pipeline.resources, run_config=config
    )
    return evaluations(result)["checksums_unchanged"]


def test_a_silently_changed_file_fails_the_check_and_keeps_its_checksum(pipeline, corpus, tmp_path):
    library = tmp_path / "library"
    shutil.copytree(corpus.photos / "Toscana 2008", library)
    pipeline.add_catalog("rot", str(library))
    pipeline.catalog_everything("rot")
    assert verify(pipeline).passed

    victim = library / "DSCN0038.jpg"  # not the first file: verified at once, they are verified again by id
    stat = victim.stat()
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime
    (library / "DSCN0010.jpg").unlink()  # away (unreadable): it waits its turn again, holding no file back
    before = {bytes(r["path"]): r["checksum"] for r in pipeline.rows("rot", "path, checksum")}

    check = verify(pipeline)
    next_night = verify(pipeline, share=0.01)  # one file: the one least recently found as cataloged

    for found in (check, next_night):
        assert not found.passed
        assert found.metadata["corrupted_files"].value == ["rot: DSCN0038.jpg"]
    assert {bytes(r["path"]): r["checksum"] for r in pipeline.rows("rot", "path, checksum")} == before


def grouping_checks(pipeline) -> dict:
    result = dg.materialize(
        [photo_analysis, duplicate_groups, every_photo_is_analyzed, groups_point_at_listed_files],
        selection=dg.AssetSelection.checks(every_photo_is_analyzed, groups_point_at_listed_files),
        instance=pipeline.instance, resources=pipeline.resources,
    )
    return evaluations(result)


def test_grouping_checks_pass_on_a_complete_catalog_and_fail_on_a_stale_one(pipeline, corpus, tmp_path):
    library = tmp_path / "library"
    shutil.copytree(corpus.photos / "Weihnachten 2021", library)
    pipeline.add_catalog("complete", str(library))
    pipeline.catalog_everything("complete")
    checks = grouping_checks(pipeline)
    assert checks["every_photo_is_analyzed"].passed and checks["groups_point_at_listed_files"].passed
    (library / "IMG_2201.JPG").unlink()  # a burst frame leaves; the inventory notices, no regrouping yet
    pipeline.inventory("complete")
    with pipeline.engine.begin() as connection:
        connection.execute(text("UPDATE images SET dhash = NULL WHERE path = 'IMG_2202.JPG'"))
    checks = grouping_checks(pipeline)
    assert not checks["every_photo_is_analyzed"].passed and not checks["groups_point_at_listed_files"].passed
