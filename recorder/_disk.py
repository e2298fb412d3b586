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


def create_file(folder: int, name: str, first: bytes | None = None) -> int:
    """Create ``name`` in the open ``folder`` (0600, for appending; not if it exists)
    holding ``first``, and return its descriptor.

    Where the system has O_TMPFILE (Linux) the file is written unnamed and then
    linked in: it appears with ``first`` in it, so a process killed in between
    (a pool's worker terminated on purpose) leaves no file rather than an empty
    one.  Elsewhere it is created, then written."""
    if first and hasattr(os, "O_TMPFILE"):
        try:
            fd = os.open(".", os.O_TMPFILE | os.O_WRONLY | os.O_APPEND, 0o600, dir_fd=folder)
        except OSError:  # (a filesystem without unnamed files: the usual way)
            fd = -1
        if fd >= 0:
            try:
                write_all(fd, first)  # (a full disk: raised, and no file made)
            except BaseException:
                os.close(fd)
                raise
            try:
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=folder)
                return fd
            except FileExistsError:
                os.close(fd)
                raise
            except OSError:  # (no /proc to link it from: the usual way)
                os.close(fd)
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600,
                 dir_fd=folder)
    if first:
        try:
            write_all(fd, first)
        except BaseException:
            os.close(fd)
            try:
                os.unlink(name, dir_fd=folder)
            except OSError:
                pass
            raise
    return fd


def write_all(fd: int, data: bytes) -> None:
    """os.write until all of ``data`` is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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
