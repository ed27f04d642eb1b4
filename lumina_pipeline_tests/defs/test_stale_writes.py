"""A batch writes only rows still as it read them: a file changed or deleted while the batch
runs keeps what the inventory found, and the next batch reads it again."""

import hashlib
import os
import shutil

from lumina_pipeline.defs.resources import ThumbnailStore


def photos_by_camera(corpus) -> dict[str, dict]:
    """One JPEG per camera model, with its path in the corpus copy."""
    return {
        expected["model"]: {**expected, "file": corpus.photos / expected["path"]}
        for expected in corpus.manifest["expected_metadata"]
        if expected["model"] and expected["path"].lower().endswith(".jpg")
    }


def test_a_file_replaced_while_its_batch_runs_stays_pending_and_the_next_batch_reads_the_new_one(
    pipeline, corpus, tmp_path
):
    cameras = photos_by_camera(corpus)
    old, new, other = cameras["E950"], cameras["Canon PowerShot G9"], cameras["COOLPIX P6000"]
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(old["file"], library / "a_x.jpg")
    shutil.copy(other["file"], library / "b_f.jpg")
    pipeline.add_catalog("stale", str(library))
    pipeline.inventory("stale")
    inventories = []

    class ThumbnailsAfterAChange(ThumbnailStore):
        """Between the batch's read and its write (where the issue's FIFO held the batch),
        `a_x.jpg` gets another camera's photo, `b_f.jpg` is deleted and the inventory runs."""

        def save_all(self, catalog, checksums, jpegs):
            if not inventories:
                shutil.copy(new["file"], library / "a_x.jpg")
                (library / "b_f.jpg").unlink()
                inventories.append(pipeline.inventory("stale"))
            return super().save_all(catalog, checksums, jpegs)

    pipeline.resources["thumbnails"] = ThumbnailsAfterAChange(root=str(tmp_path / "thumbnails"))

    first = pipeline.analyze("stale", "00000")

    rows = {bytes(row["path"]): row for row in pipeline.rows("stale")}
    assert (rows[b"a_x.jpg"]["status"], rows[b"a_x.jpg"]["size_bytes"]) == ("pending", os.path.getsize(new["file"]))
    assert (rows[b"a_x.jpg"]["checksum"], rows[b"b_f.jpg"]["status"]) == (None, "deleted")
    assert (inventories[0]["changed"], inventories[0]["deleted"]) == (1, 1)
    assert (first["files_read"], first["ok"], first["stale_skipped"]) == (2, 2, 2)

    second = pipeline.analyze("stale", "00000")

    row = {bytes(row["path"]): row for row in pipeline.rows("stale")}[b"a_x.jpg"]
    assert (row["status"], row["metadata"]["camera_model"]) == ("ok", "Canon PowerShot G9")
    assert row["checksum"] == hashlib.sha256(new["file"].read_bytes()).hexdigest()
    assert (second["files_read"], second["ok"], second["stale_skipped"]) == (1, 1, 0)


def test_a_file_changed_after_the_inventory_stays_pending_until_the_inventory_sees_it(pipeline, corpus, tmp_path):
    cameras = photos_by_camera(corpus)
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(cameras["E950"]["file"], library / "a.jpg")
    shutil.copy(cameras["COOLPIX P6000"]["file"], library / "b.jpg")
    pipeline.add_catalog("moving", str(library))
    pipeline.inventory("moving")
    shutil.copy(cameras["Canon PowerShot G9"]["file"], library / "a.jpg")  # after the inventory, before the batch

    read = pipeline.analyze("moving", "00000")

    row = {bytes(row["path"]): row for row in pipeline.rows("moving")}[b"a.jpg"]
    assert (row["status"], row["checksum"], row["analysis_version"]) == ("pending", None, None)
    assert row["error"] == "changed since the inventory listed it; it will be read again"
    assert (read["files_read"], read["pending"], read["ok"]) == (2, 1, 1)
    assert pipeline.inventory("moving")["changed"] == 1
    assert pipeline.analyze("moving", "00000")["files_read"] == 1
    row = {bytes(row["path"]): row for row in pipeline.rows("moving")}[b"a.jpg"]
    assert (row["status"], row["metadata"]["camera_model"]) == ("ok", "Canon PowerShot G9")
    assert row["checksum"] == hashlib.sha256((library / "a.jpg").read_bytes()).hexdigest()
    assert pipeline.analyze("moving", "00000")["files_read"] == 0  # read for good
