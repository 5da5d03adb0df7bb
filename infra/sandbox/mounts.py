"""What a session sees under /mnt, and the trees the worker (root) writes for it.

`AREA/mnt` is bound at /mnt inside. It is a bind of itself with ``nosymfollow``: the worker
and the SDK's memory sync read and write there as root while the session's uid owns its
writable memory stores, so a symlink the uid plants there (or swaps in for a directory
between a listing and a read) must never lead root elsewhere on the host. Inside, the
sandbox inherits the flag; memory stores refuse symlinks anyway.

- ``mnt/memory/<slug>/``: the SDK's ``SessionMemoryStores`` makes each store's folder (root,
  0700) when an item starts and removes it when the item ends. A writable store is handed to
  the uid; a read-only one stays root's, made world-readable, so a write inside fails with
  EACCES.
- ``mnt/session/uploads/...``: the session's file resources, root-owned 0444 in 0555
  directories.

Every walk here is by file descriptor and never follows a symlink (`os.fwalk`), so it is
safe on a tree the uid can change while it runs."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath

log = logging.getLogger("agentry.sandbox")

MNT = PurePosixPath("/mnt")
MEMORY = MNT / "memory"
UPLOADS = MNT / "session" / "uploads"
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _each(root: Path, apply: Callable[[int, bool, os.stat_result], None]) -> None:
    """`apply(fd, is_dir, st)` on `root` and everything below it: directories and regular
    files only, each through an fd of its own (a symlink is never followed)."""
    for _dirpath, _dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        apply(dirfd, True, os.fstat(dirfd))
        for name in filenames:
            try:
                fd = os.open(name, _OPEN_FILE, dir_fd=dirfd)
            except OSError:
                continue  # a symlink (ELOOP), a vanished file, a socket
            try:
                st = os.fstat(fd)
                if stat.S_ISREG(st.st_mode):
                    apply(fd, False, st)
            finally:
                os.close(fd)


def hand_over(root: Path, uid: int) -> None:
    """The tree becomes the uid's (what the worker wrote there since, too)."""

    def chown(fd: int, _is_dir: bool, st: os.stat_result) -> None:
        if st.st_uid != uid or st.st_gid != uid:
            os.fchown(fd, uid, uid)

    _each(root, chown)


def open_to_read(root: Path) -> None:
    """Root's entries of the tree become readable by everyone (directories 0755, files 0644,
    or 0755 when executable), still root's; whatever the uid owns is left as it is."""

    def chmod(fd: int, is_dir: bool, st: os.stat_result) -> None:
        if st.st_uid != 0:
            return
        executable = is_dir or st.st_mode & stat.S_IXUSR
        mode = 0o755 if executable else 0o644
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)

    _each(root, chmod)


def host_path(mnt: Path, inside: str) -> Path | None:
    """Where `inside` (a path under /mnt in the sandbox) is on the host; None elsewhere."""
    path = PurePosixPath(inside)
    if not path.is_absolute() or ".." in path.parts or not path.is_relative_to(MNT) or path == MNT:
        return None
    return mnt.joinpath(*path.relative_to(MNT).parts)


def clear_memory(mnt: Path) -> None:
    """Remove what an earlier item left under /mnt/memory: the SDK refuses to mount a store
    whose folder exists, and removes its own at the end unless it distrusts what is there
    (then it was not synced either)."""
    memory = mnt / "memory"
    for entry in list(memory.iterdir()):
        log.warning("removing %s, left by an earlier item (not synced to its store)", entry)
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()


def clear_skills_link(workspace: Path) -> None:
    """The SDK extracts skills as root into ``{workdir}/skills`` after resolving it: a
    symlink (or file) the session left there is removed first, while none of its processes
    runs, so the extraction cannot be pointed elsewhere on the host."""
    skills = workspace / "skills"
    try:
        mode = os.lstat(skills).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        log.warning("removing %s: not a directory", skills)
        os.unlink(skills)


def place_read_only(mnt: Path, inside: str, data: bytes) -> None:
    """Put a file at `inside` (under /mnt, never under /mnt/memory): root-owned 0444, the
    directories made for it 0555. Only root writes under /mnt outside the memory stores."""
    target = host_path(mnt, inside)
    if target is None or PurePosixPath(inside).is_relative_to(MEMORY):
        raise ValueError(f"{inside} is not a place for a file resource (only under /mnt, outside /mnt/memory)")
    current = mnt
    for part in target.relative_to(mnt).parts[:-1]:
        current = current / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(current, 0o555)
        if not stat.S_ISDIR(os.lstat(current).st_mode):
            raise ValueError(f"{inside}: a file is in the way")
    temporary = target.parent / f".placing-{os.urandom(6).hex()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o444)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o444)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def remove_placed(mnt: Path, inside: str) -> None:
    target = host_path(mnt, inside)
    if target is not None:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            target.unlink()
