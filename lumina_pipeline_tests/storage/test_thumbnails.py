"""The thumbnail folder: one file per content, named by checksum; served only from inside."""

import os

from lumina_pipeline.storage.thumbnails import read_thumbnail, remove_thumbnails, save_thumbnails, thumbnail_file

SHA = "ab" + "0" * 62


def test_a_thumbnail_is_written_once_per_content_under_its_checksum(tmp_path):
    saved = save_thumbnails(tmp_path, "family", [SHA, None, "cd" + "0" * 62], [b"jpeg", None, None])
    again = save_thumbnails(tmp_path, "family", [SHA], [b"other bytes of the same content"])

    assert saved == [f"family/ab/{SHA}.jpg", None, None] and again == saved[:1]
    assert read_thumbnail(tmp_path, saved[0]) == b"jpeg"  # named by content: never written twice
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [f"{SHA}.jpg"]  # no partial file left
    assert read_thumbnail(tmp_path, "family/ab/gone.jpg") is None


def test_only_files_inside_the_root_are_served(tmp_path):
    root, outside = tmp_path / "thumbnails", tmp_path / "secret.jpg"
    [relative] = save_thumbnails(root, "family", [SHA], [b"jpeg"])
    outside.write_bytes(b"not a thumbnail")
    os.symlink(outside, root / "family" / "ab" / "link.jpg")

    assert thumbnail_file(root, relative) == os.fsencode(os.path.realpath(root / relative))
    assert thumbnail_file(root, "../secret.jpg") is None and thumbnail_file(root, str(outside)) is None
    assert thumbnail_file(root, "family/ab/link.jpg") is None and thumbnail_file(root, "family/ab/gone.jpg") is None


def test_removing_a_catalogs_thumbnails_leaves_the_others(tmp_path):
    [kept] = save_thumbnails(tmp_path, "kept", [SHA], [b"jpeg"])
    save_thumbnails(tmp_path, "removed", [SHA], [b"jpeg"])

    remove_thumbnails(tmp_path, "removed")
    remove_thumbnails(tmp_path, "never there")

    assert not (tmp_path / "removed").exists() and read_thumbnail(tmp_path, kept) == b"jpeg"
