"""Writing a user's file so that no failure can leave it half-written or silently clobbered.

The new bytes go to a temporary file in the same directory (a rename is atomic only within
one filesystem), are fsynced, get the original's permission bits, and replace the file by
rename; the directory is fsynced so the rename itself survives a crash. A symlink is
followed and its target is replaced, so the link stays a link. Just before the rename the
file is compared with what the caller read: if an editor saved it meanwhile, nothing is
written (FileChanged) rather than losing that edit.
"""

from __future__ import annotations

import os
import stat
import tempfile


class FileChanged(Exception):
    """The file is not what the caller read any more; it was left alone."""


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not supported on this platform (Windows); the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_temp(directory: str, name: str, data: bytes, mode: int | None, owner: tuple | None) -> str:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".dropout-audit.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if mode is not None:
                os.chmod(tmp, mode)
            if owner is not None and hasattr(os, "chown"):
                try:
                    os.chown(tmp, *owner)
                except OSError:
                    pass  # only root may give a file away; the owner is then the writer
            os.fsync(fh.fileno())
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def replace(path: str, data: bytes, expected: bytes) -> None:
    """Replace the contents of existing file `path` (or its symlink target) with `data`,
    provided it still holds exactly `expected`."""
    target = os.path.realpath(path)
    before = os.stat(target)
    with open(target, "rb") as fh:
        if fh.read() != expected:
            raise FileChanged(f"{path}: changed since it was read; not written")
    directory, name = os.path.split(target)
    tmp = _write_temp(directory, name, data, stat.S_IMODE(before.st_mode), (before.st_uid, before.st_gid))
    try:
        now = os.stat(target)
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino):
            raise FileChanged(f"{path}: changed while being fixed; not written")
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(directory)


def write_new(path: str, data: bytes) -> None:
    """Create or overwrite a file the tool owns (a baseline, a report) atomically."""
    target = os.path.realpath(path)
    directory, name = os.path.split(target)
    mode = None
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    tmp = _write_temp(directory or ".", name, data, mode, None)
    try:
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(directory or ".")
