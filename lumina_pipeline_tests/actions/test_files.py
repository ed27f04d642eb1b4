"""One file operation on real files: moved or copied whole, verified, never over another file,
and finished (not repeated) when it is carried out again from any state a kill leaves."""

import hashlib
import os
import tempfile
from pathlib import Path

import pytest

from lumina_pipeline.actions.files import PARTIAL, FileOperation, carry_out, undo

MTIME_NS = 1_704_110_400_123_456_789


def photo(path: Path, content: bytes = b"\xff\xd8 a photo " * 5000) -> FileOperation:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, ns=(MTIME_NS, MTIME_NS))
    target = path.parent.parent / "quarantine" / path.name
    return FileOperation(os.fsencode(path), os.fsencode(target), "move", len(content), MTIME_NS,
                         hashlib.sha256(content).hexdigest())


def state(path: bytes) -> tuple[str, int] | None:
    if not os.path.exists(path):
        return None
    return hashlib.sha256(Path(os.fsdecode(path)).read_bytes()).hexdigest(), os.stat(path).st_mtime_ns


@pytest.mark.parametrize("always_copy", [False, True])
def test_a_move_leaves_the_same_bytes_and_mtime_at_the_target_only(tmp_path, always_copy):
    operation = photo(tmp_path / "photos" / "a.jpg")
    assert carry_out(operation, always_copy=always_copy) is None
    assert state(operation.source) is None and state(operation.target) == (operation.checksum, MTIME_NS)
    assert not os.path.exists(operation.target + PARTIAL)
    assert carry_out(operation, always_copy=always_copy) is None  # again: nothing more to do
    assert undo(operation, always_copy=always_copy) is None
    assert state(operation.source) == (operation.checksum, MTIME_NS) and state(operation.target) is None


def test_a_kill_during_a_copy_or_before_the_source_went_is_finished_on_the_next_call(tmp_path):
    operation = photo(tmp_path / "photos" / "a.jpg")
    os.makedirs(os.path.dirname(operation.target))
    Path(os.fsdecode(operation.target + PARTIAL)).write_bytes(b"\xff\xd8 half")  # killed while copying
    assert carry_out(operation, always_copy=True) is None
    assert state(operation.source) is None and state(operation.target) == (operation.checksum, MTIME_NS)
    os.link(operation.target, operation.source)  # killed after the copy, before the source's removal
    assert carry_out(operation) is None
    assert state(operation.source) is None and state(operation.target) == (operation.checksum, MTIME_NS)


def test_a_move_a_kill_kept_from_the_journal_is_done_though_the_file_changed_since_where_it_lies(tmp_path):
    operation = photo(tmp_path / "photos" / "a.jpg")
    assert carry_out(operation) is None  # then killed before the journal heard of it
    with open(operation.target, "ab") as moved:
        moved.write(b"edited in its new place")
    assert carry_out(operation) == (f"missing, and {os.fsdecode(operation.target)} holds another file "
                                    "(size changed (55023 bytes, cataloged 55000))")  # not after a kill: not ours
    assert carry_out(operation, resuming=True) is None  # finishing the killed run: done, not "in the way"
    assert state(operation.source) is None and os.path.getsize(operation.target) > operation.size_bytes
    assert undo(operation) == "size changed (55023 bytes, cataloged 55000)"  # a changed file is never moved back


def test_a_changed_source_and_a_file_in_the_way_are_left_alone(tmp_path):
    operation = photo(tmp_path / "photos" / "a.jpg")
    photo(Path(os.fsdecode(operation.source)), b"\xff\xd8 other bytes".ljust(operation.size_bytes, b"!"))
    assert carry_out(operation) == "content differs from the catalog (checksum)"
    assert carry_out(operation, always_copy=True) == "copy not verified: content differs from the catalog (checksum)"
    assert state(operation.target) is None and not os.path.exists(operation.target + PARTIAL)
    os.utime(operation.source, ns=(MTIME_NS, MTIME_NS + 1))
    assert carry_out(operation) == "modified since it was cataloged (mtime)"
    other = photo(Path(os.fsdecode(operation.target)), b"someone else's")
    original = photo(Path(os.fsdecode(operation.source)))
    assert "is in the way" in str(carry_out(original))
    assert state(original.source) == (original.checksum, MTIME_NS) and state(other.source) is not None


def test_a_move_out_of_a_folder_it_may_not_change_leaves_the_file_where_it_was_only():
    with tempfile.TemporaryDirectory() as folder:  # not below pytest's own folders, which only root may enter
        os.chmod(folder, 0o755)
        operation = photo(Path(folder) / "photos" / "a.jpg")
        os.makedirs(os.path.dirname(operation.target), mode=0o777)
        os.chmod(os.path.dirname(operation.target), 0o777)  # the quarantine may be written, the photos may not
        os.chown(operation.source, 65534, 65534)  # the user's photo, in a folder they made read-only
        os.chmod(os.path.dirname(operation.source), 0o555)
        reader, writer = os.pipe()
        if (child := os.fork()) == 0:  # root changes any folder: move as an unprivileged user
            if os.geteuid() == 0:
                os.setuid(65534)
            os.write(writer, repr(carry_out(operation)).encode())
            os._exit(0)
        os.waitpid(child, 0)
        assert os.read(reader, 1000).decode() == repr(f"Permission denied: {os.fsdecode(operation.source)}")
        assert state(operation.source) == (operation.checksum, MTIME_NS) and state(operation.target) is None


def test_a_copy_is_undone_only_while_the_original_holds_the_same_bytes(tmp_path):
    moved = photo(tmp_path / "photos" / "a.jpg")
    operation = FileOperation(*(getattr(moved, f) for f in ("source", "target")), "copy",
                              moved.size_bytes, moved.mtime_ns, moved.checksum)
    assert carry_out(operation) is None
    assert state(operation.source) == state(operation.target) == (operation.checksum, MTIME_NS)
    os.unlink(operation.source)
    assert "the copy stays" in str(undo(operation))  # the copy is now the only one
    photo(Path(os.fsdecode(operation.source)))
    assert undo(operation) is None and state(operation.target) is None and state(operation.source) is not None
