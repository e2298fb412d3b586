"""The trace folder on disk: private creation, refusal of unsafe folders, free space.

Traces hold code paths, thread names and command lines, so the folder is created
``0700`` and every file ``0600``.  A folder that another user owns, or that is
reached through a symbolic link (the folder itself, or a link on its path owned by
someone other than root or us), could let that user read the traces or redirect
our writes: it is refused.  A folder of root's is accepted when no one else can
replace our files in it (not writable by others, or sticky like ``/tmp``): root can
read everything anyway, and files are created exclusively (``O_EXCL``).
"""

from __future__ import annotations

import os
import stat

MB = 1024 * 1024
# Below this much free space (or this share of the filesystem, if more) recording
# pauses: a trace is never worth filling a disk that the program needs.
DEFAULT_MIN_FREE_MB = 256
DEFAULT_MIN_FREE_SHARE = 0.05
# One run's parts together never exceed this by default (the oldest are deleted).
DEFAULT_MAX_TOTAL_MB = 512


class UnsafeFolder(OSError):
    """The trace folder exists but is not safe to write to."""


def _euid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None  # None: no owners (Windows)


def _check_path(path: str) -> None:
    """Refuse symbolic links on ``path`` that someone else could have planted."""
    me = _euid()
    parts = path.split(os.sep)
    current = os.sep
    for i, part in enumerate(parts):
        if not part:
            continue
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            if i == len(parts) - 1:
                raise UnsafeFolder(f"{path} is a symbolic link")
            if st.st_uid not in (0, me):
                raise UnsafeFolder(f"{current} is a symbolic link owned by another user")


def open_folder(path: str) -> int:
    """Create ``path`` (mode 0700) if needed and return a descriptor of it.

    Raises UnsafeFolder for a folder owned by another user or a symlinked one, and
    OSError when it cannot be created or opened."""
    path = os.path.abspath(path)
    _check_path(path)
    try:
        os.makedirs(path, mode=0o700)
    except FileExistsError:
        pass
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafeFolder(f"{path} is a symbolic link") from None
        raise exc
    st = os.fstat(fd)
    if not _trusted(st):
        os.close(fd)
        raise UnsafeFolder(f"{path} is owned by another user (uid {st.st_uid})")
    return fd


def _trusted(st: os.stat_result) -> bool:
    me = _euid()
    if me is None or st.st_uid == me:
        return True
    shared = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return st.st_uid == 0 and (not shared or bool(st.st_mode & stat.S_ISVTX))


def free_bytes(path: str) -> int | None:
    """Bytes an unprivileged writer may still use on ``path``'s filesystem (None: unknown)."""
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return None
    if not st.f_blocks:  # a filesystem that does not say (some FUSE, pseudo filesystems)
        return None
    return st.f_bavail * st.f_frsize


def default_min_free(path: str) -> int:
    """The default free-space floor: max(256 MB, 5 % of the filesystem)."""
    try:
        st = os.statvfs(path)
        size = st.f_blocks * st.f_frsize
    except (OSError, AttributeError):
        size = 0
    return max(DEFAULT_MIN_FREE_MB * MB, int(size * DEFAULT_MIN_FREE_SHARE))
