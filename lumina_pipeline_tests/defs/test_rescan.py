"""Rescans: new, changed and deleted files touch only what they must."""

import shutil

CATALOG = "rescan"


def photos_of(corpus, count: int) -> list:
    return [corpus.photos / r["path"] for r in corpus.files(expected_status="ok") if r["format"] == "JPEG"][:count]


def test_adding_three_photos_reads_only_them_in_the_batch_they_joined(pipeline, corpus, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    for index, photo in enumerate(photos_of(corpus, 8)):
        shutil.copy(photo, library / f"{index:02d}.jpg")
    pipeline.add_catalog(CATALOG, str(library), batch_size=4)
    first = pipeline.inventory(CATALOG)
    assert first["batches_to_process"] == ["00000", "00001"]
    for batch in first["batches_to_process"]:
        pipeline.analyze(CATALOG, batch)
    (library / "05.jpg").unlink()  # batch 00001 keeps its four slots: batches are append-only
    for index, photo in enumerate(photos_of(corpus, 11)[8:]):
        shutil.copy(photo, library / f"new-{index}.jpg")

    rescan = pipeline.inventory(CATALOG)

    assert (rescan["new"], rescan["deleted"], rescan["changed"]) == (3, 1, 0)
    assert rescan["batches_to_process"] == ["00002"]
    assert pipeline.analyze(CATALOG, "00002")["files_read"] == 3
    assert pipeline.analyze(CATALOG, "00001")["files_read"] == 0
    statuses = {bytes(row["path"]): row["status"] for row in pipeline.rows(CATALOG, "path, status")}
    assert statuses[b"05.jpg"] == "deleted"
    assert sum(status == "ok" for status in statuses.values()) == 10


def test_a_changed_photo_is_read_again_and_nothing_else(pipeline, corpus, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    photos = photos_of(corpus, 3)
    for index, photo in enumerate(photos):
        shutil.copy(photo, library / f"{index}.jpg")
    pipeline.add_catalog("changed", str(library), batch_size=2)
    for batch in pipeline.inventory("changed")["batches_to_process"]:
        pipeline.analyze("changed", batch)
    shutil.copy(photos[2], library / "0.jpg")  # new content under an old name

    rescan = pipeline.inventory("changed")

    assert (rescan["new"], rescan["changed"], rescan["batches_to_process"]) == (0, 1, ["00000"])
    assert pipeline.analyze("changed", "00000")["files_read"] == 1
    checksums = {bytes(row["path"]): row["checksum"] for row in pipeline.rows("changed", "path, checksum")}
    assert checksums[b"0.jpg"] == checksums[b"2.jpg"]


def test_a_rescan_of_an_unchanged_folder_changes_nothing(pipeline, corpus, tmp_path):
    pipeline.add_catalog("still", str(corpus.photos))
    pipeline.inventory("still")
    again = pipeline.inventory("still")
    assert (again["new"], again["changed"], again["deleted"], again["batches_to_process"]) == (0, 0, 0, [])
    assert again["unchanged"] == len(corpus.manifest["files"])
