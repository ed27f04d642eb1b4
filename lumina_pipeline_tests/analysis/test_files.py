import ast
import os
import tempfile
from pathlib import Path

import pytest

from lumina_pipeline.analysis.files import (
    OWN_FOLDER,
    classify,
    count_files,
    display_path,
    path_from_display,
    walk_sources,
)
from lumina_pipeline.analysis.fingerprint import fingerprint_units


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        (b"IMG_0001.JPG", "image"),
        (b"photo.heic", "image"),
        (b"NZ9_0001.dng", "raw"),
        (b"clip.MOV", "video"),
        (b"IMG_0001.xmp", "sidecar"),
        (b".DS_Store", "system"),
        (b"._IMG_0001.jpg", "system"),
        (b"notes.txt", "other"),
        (b"no-extension", "other"),
    ],
)
def test_classify_by_name(name, kind):
    assert classify(name) == kind


def test_walk_lists_every_file_with_size_and_raw_name(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "one.jpg").write_bytes(b"12345")
    latin1 = os.fsencode(tmp_path) + b"/a/Gr\xfc\xdfe.jpg"
    with open(latin1, "wb") as file:
        file.write(b"xy")
    walk = walk_sources([str(tmp_path)])
    rows = {row["path"]: row for row in walk.files.iter_rows(named=True)}
    assert set(rows) == {b"a/b/one.jpg", b"a/Gr\xfc\xdfe.jpg"}
    assert rows[b"a/b/one.jpg"]["size_bytes"] == 5
    assert rows[b"a/Gr\xfc\xdfe.jpg"]["source_root"] == str(tmp_path)
    assert walk.unreadable == [] and walk.empty_roots == []


def test_walk_names_the_roots_that_hold_nothing_of_a_persons(tmp_path):
    (tmp_path / "mount point").mkdir()
    (tmp_path / "emptied" / "2024").mkdir(parents=True)
    (tmp_path / "left by a Mac").mkdir()
    (tmp_path / "left by a Mac" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "left by a Synology" / "@eaDir").mkdir(parents=True)
    roots = [str(tmp_path / name) for name in ("mount point", "emptied", "left by a Mac", "left by a Synology")]
    walk = walk_sources(roots)
    assert walk.files["path"].to_list() == [b".DS_Store"]
    assert walk.empty_roots == [roots[0], roots[2], roots[3]]


def test_walk_and_count_never_enter_a_folder_of_luminas_own(tmp_path):
    """A home kept inside the photos: its thumbnails are JPEGs, its quarantine holds photos."""
    (tmp_path / ".lumina" / "thumbnails" / "ab").mkdir(parents=True)
    (tmp_path / ".lumina" / os.fsdecode(OWN_FOLDER)).write_text("")
    (tmp_path / ".lumina" / "thumbnails" / "ab" / "abcd.jpg").write_bytes(b"x")
    (tmp_path / "IMG_0001.JPG").write_bytes(b"x")
    assert walk_sources([str(tmp_path)]).files["path"].to_list() == [b"IMG_0001.JPG"]
    assert count_files([str(tmp_path)]) == 1


def test_walk_count_and_fingerprint_skip_the_folders_systems_nas_and_photo_apps_keep(tmp_path):
    """A Synology share: thumbnails in @eaDir, deleted files in #recycle, whole copies in #snapshot;
    a library of Apple's Photos, which a file moved out of would break."""
    made = ["2024/IMG_0001.JPG", "2024/@eaDir/IMG_0001.JPG/SYNOPHOTO_THUMB_XL.jpg", "#recycle/IMG_0000.JPG",
            "#snapshot/GMT+01_2024-06-01/2024/IMG_0001.JPG", ".Trash-1000/files/old.jpg", "$RECYCLE.BIN/S-1-5/x.jpg",
            "Photos Library.photoslibrary/originals/0/0A1B.jpeg"]
    for path in made:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"x")
    walk = walk_sources([str(tmp_path)])
    assert walk.files["path"].to_list() == [b"2024/IMG_0001.JPG"]
    assert walk.app_libraries == [(str(tmp_path), b"Photos Library.photoslibrary")]  # said, as it holds photos
    assert count_files([str(tmp_path)]) == 1
    assert fingerprint_units([str(tmp_path)]) == [(str(tmp_path), None), (str(tmp_path), "2024")]


def test_walk_never_follows_nor_lists_a_symlink(tmp_path):
    library, outside = tmp_path / "library", tmp_path / "outside"
    (library / "album").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"x")
    (library / "album" / "kept.jpg").write_bytes(b"x")
    (library / "escape").symlink_to(outside)
    (library / "escape.jpg").symlink_to(outside / "secret.jpg")
    (library / "loop").symlink_to(library)
    (library / "inside.jpg").symlink_to(library / "album" / "kept.jpg")  # else an exact copy of kept.jpg
    (library / "linked album").symlink_to(library / "album", target_is_directory=True)
    (library / "a").symlink_to(library / "album", target_is_directory=True)  # walked before album/
    assert walk_sources([str(library)]).files["path"].to_list() == [b"album/kept.jpg"]  # by its own path


def test_a_folder_that_may_be_listed_but_not_entered_is_reported_as_unlisted_so_its_files_are_kept():
    with tempfile.TemporaryDirectory() as library:  # not below pytest's own folders, which only root may enter
        os.chmod(library, 0o755)
        for folder in ("open", "listed only", "listed only/inside"):
            os.mkdir(os.path.join(library, folder))
            Path(library, folder, "IMG_0001.JPG").write_bytes(b"x")
        os.chmod(os.path.join(library, "listed only"), 0o744)  # r--: its names may be read, its files not
        reader, writer = os.pipe()
        if (child := os.fork()) == 0:  # root enters any folder: walk as an unprivileged user
            try:  # whatever happens, this copy of pytest ends here
                if os.geteuid() == 0:
                    os.setuid(65534)
                walk = walk_sources([library])
                os.write(writer, repr((walk.files["path"].to_list(), walk.unreadable)).encode())
            finally:
                os._exit(0)
        os.close(writer)  # so that the read ends, should the child write nothing
        os.waitpid(child, 0)
        files, unreadable = ast.literal_eval(os.read(reader, 1000).decode())
        assert files == [b"open/IMG_0001.JPG"] and unreadable[0] == (library, b"listed only")
        assert all(folder.startswith(b"listed only") for _, folder in unreadable)  # inside/ too, if listed first


def test_walk_lists_each_name_of_a_file_and_says_which_are_one_file(tmp_path):
    """Hard links, as date-folder scripts and snapshot backups make them (diff_inventory lists each file once)."""
    first, more = tmp_path / "first", tmp_path / "more"
    for folder in ("2024", "z"):
        (first / folder).mkdir(parents=True)
    more.mkdir()
    (first / "z" / "IMG_0001.JPG").write_bytes(b"photo")
    for name in (first / "2024" / "IMG_0001.JPG", more / "IMG_0001.JPG", tmp_path / "outside.jpg"):
        os.link(first / "z" / "IMG_0001.JPG", name)
    (first / "2024" / "copy.jpg").write_bytes(b"photo")  # a copy, not a name
    walk = walk_sources([str(first), str(more)])
    assert len(walk.files) == 4 and walk.linked["file"].n_unique() == 1
    assert sorted(walk.linked.select("source_root", "path").rows()) == [
        (str(first), b"2024/IMG_0001.JPG"), (str(first), b"z/IMG_0001.JPG"), (str(more), b"IMG_0001.JPG")]


def test_display_path_keeps_undecodable_bytes_and_control_characters_in_hex():
    assert display_path("Café.jpg".encode()) == ("Café.jpg", None)
    assert display_path(b"Gr\xfc\xdfe.jpg") == ("Gr\\xfc\\xdfe.jpg", "4772fcdf652e6a7067")
    for name in (b"\x1b[2J\x1b[31mFAKE\x1b[0m.jpg", b"new\nline.jpg", b"cr\rOVER\xff.jpg"):
        shown, hexed = display_path(name)
        assert shown.isprintable() and path_from_display(shown) == name and bytes.fromhex(hexed) == name
