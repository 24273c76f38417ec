"""Files in the state folder, created private to the user that runs digest.

The state folder holds readers' addresses and tokens (the database, the outbox),
the web key and downloaded media. On a shared machine none of it is any other
user's business, whatever the umask says: folders are made 0700, files 0600.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Make `path` (and missing parents, each 0700 too) and leave it readable by its
    owner only."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            folder.mkdir(mode=DIR_MODE)
    with contextlib.suppress(PermissionError):  # not ours: the owner decides
        os.chmod(path, DIR_MODE)
    return path


def touch_private(path: Path) -> None:
    """Create an empty file 0600 unless it exists, so whatever fills it (SQLite, which
    gives its -wal and -shm files the same mode) starts private."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (a reader sees the old file or the new)."""
    tmp = _private_tmp(path, data)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_private_once(path: Path, data: bytes) -> None:
    """Write `path` unless it exists; when two processes race, the first one's stays, and
    neither ever reads it half-written (it appears whole, by a hard link)."""
    if path.exists():
        return
    tmp = _private_tmp(path, data)
    try:
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _private_tmp(path: Path, data: bytes) -> Path:
    """`data` in a new 0600 file beside `path`, for a rename or a link into place."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
