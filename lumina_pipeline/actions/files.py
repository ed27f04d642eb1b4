"""The only code that changes a person's files: one planned operation (move or copy a file to a
planned place) brought to its end, or back, whatever state a killed run left it in.

Every function may be called again after a kill at any instant and finishes the job: a copy
is written under a temporary name and takes its final name only once fsynced and verified,
a file is never placed over another (hard link, then unlink), and a move deletes its source
only once the target holds the same bytes. So a file is always whole in one place or both.
"""

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace

from lumina_pipeline.analysis.files import PARTIAL, mtime_ns, shown  # PARTIAL: a copy being written


@dataclass(frozen=True)
class FileOperation:
    """Move or copy `source` to `target` (absolute paths, raw bytes), the file being as cataloged."""

    source: bytes
    target: bytes
    operation: str  # move / copy
    size_bytes: int
    mtime_ns: int
    checksum: str  # SHA-256, hex


def mismatch(path: bytes, operation: FileOperation, *, read: bool) -> str | None:
    """Why the file at `path` is not the operation's file (None when it is); the content is
    compared only when `read`."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size != operation.size_bytes:
        return f"size changed ({info.st_size} bytes, cataloged {operation.size_bytes})"
    if mtime_ns(info) != operation.mtime_ns:
        return "modified since it was cataloged (mtime)"
    if read and sha256(path) != operation.checksum:
        return "content differs from the catalog (checksum)"
    return None


def carry_out(operation: FileOperation, *, always_copy: bool = False, resuming: bool = False) -> str | None:
    """Bring `operation` to its end; None when the target holds the file (and, for a move, the
    source no longer does), else why the file was left where it was. On the same filesystem a
    move is a rename; otherwise (or with `always_copy`) a verified copy. `resuming`: a killed
    run may have carried it out already."""
    return _explained(_carry_out, operation, always_copy, resuming)


def undo(operation: FileOperation, *, always_copy: bool = False, resuming: bool = False) -> str | None:
    """Reverse a done `operation`; None when undone, else why it was not. A move goes back,
    never over a file that appeared in its place; a copy is removed only while the original
    still holds the same bytes."""
    if operation.operation == "move":
        back = replace(operation, source=operation.target, target=operation.source)
        return carry_out(back, always_copy=always_copy, resuming=resuming)
    return _explained(_remove_copy, operation)


def sha256(path: bytes) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _explained(function: Callable[..., str | None], *args) -> str | None:
    """`function`'s answer, or its OSError as a reason: one file's trouble never stops a run."""
    try:
        return function(*args)
    except OSError as error:
        return f"{error.strerror}: {shown(os.fsencode(error.filename))}" if error.filename else str(error)


def _carry_out(operation: FileOperation, always_copy: bool, resuming: bool) -> str | None:
    source, target = operation.source, operation.target
    _remove(target + PARTIAL)  # a copy a kill interrupted
    if os.path.lexists(target):  # done, or done but for the source's removal, or someone else's file
        if problem := mismatch(target, operation, read=True):
            if operation.operation == "move" and not os.path.lexists(source):
                if resuming:
                    return None  # moved before a kill, then changed where it lies: the journal must say it is there
                return f"missing, and {shown(target)} holds another file ({problem})"
            return f"{shown(target)} is in the way ({problem})"
        if operation.operation == "move" and mismatch(source, operation, read=True) is None:
            return _drop_source(operation, None)
        return None
    renaming = operation.operation == "move" and not always_copy
    if problem := mismatch(source, operation, read=renaming):  # a copy is verified once made
        return problem
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if renaming:
        try:
            _rename_without_replacing(source, target)
            return None
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
    if problem := _copy_verified(operation):
        return problem
    if operation.operation == "move":
        return _drop_source(operation, mismatch(source, operation, read=False))
    return None


def _copy_verified(operation: FileOperation) -> str | None:
    """Copy to a temporary name, fsync, check the copy's SHA-256 against the catalog's, then
    give it its name and fsync the folder, so that the name survives a crash before the source
    is deleted (on another filesystem, nothing orders the two)."""
    partial = operation.target + PARTIAL
    try:
        shutil.copyfile(operation.source, partial)  # in the kernel (sendfile) where it can
        shutil.copystat(operation.source, partial)  # the original's mtime
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        if problem := mismatch(partial, operation, read=True):
            os.unlink(partial)
            return f"copy not verified: {problem}"
        _rename_without_replacing(partial, operation.target)
    except OSError:
        _remove(partial)
        raise
    folder = os.open(os.path.dirname(operation.target), os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return None


def _drop_source(operation: FileOperation, problem: str | None) -> str | None:
    """Delete a moved file's source once the target holds it. If the source changed meanwhile
    (`problem`) or cannot be deleted (a read-only share), delete the copy instead: the file
    stays where it was."""
    if problem is None:
        try:
            os.unlink(operation.source)
            return None
        except OSError as error:
            problem = error.strerror
    os.unlink(operation.target)
    return f"left at the source ({problem})"


def _rename_without_replacing(source: bytes, target: bytes) -> None:
    """os.rename, except that it fails if `target` exists: a hard link (which never replaces a
    name) then unlink. Where links are not supported, look first, then rename. Where the
    source cannot be unlinked (a folder only readable), the new name goes again: the file
    keeps one name."""
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target) from error
        os.rename(source, target)
        return
    try:
        os.unlink(source)
    except OSError:
        os.unlink(target)
        raise


def _remove_copy(operation: FileOperation) -> str | None:
    if not os.path.lexists(operation.target):
        return None
    if problem := mismatch(operation.source, operation, read=True):
        return f"the copy stays, as the original is no longer as cataloged: {problem}"
    if problem := mismatch(operation.target, operation, read=True):
        return f"the copy stays, changed since it was made: {problem}"
    os.unlink(operation.target)
    return None


def _remove(path: bytes) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
