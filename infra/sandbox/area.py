"""A session's piece of the host: a uid of its own and a size-capped tmpfs.

The tmpfs (mounted by the worker, which runs as root) is the size cap: bash, the file tools,
package installs and /tmp all write into it, and the kernel answers ENOSPC past it whoever
writes. The uid is what keeps two sessions apart (another session's directory is 0700 under
its own uid) and keeps rlimits per session; it is held with a lock file under /run, so two
worker processes on one machine never hand out the same uid, and a crashed worker's uids and
areas are free again (the kernel drops its locks).

Layout of `ROOT/SESSION_ID` (root-owned 0711 tmpfs):
  workspace/ home/ tmp/ shm/   owned by the uid, 0700 — bound to /workspace, /home/user,
                               /tmp (and /var/tmp), /dev/shm inside
  mnt/                         root-owned 0755, bound at /mnt inside: memory stores under
                               mnt/memory, file resources under mnt/session/uploads (see
                               mounts.py); a nosymfollow bind of itself
  etc/passwd, etc/group        root-owned, bound read-only over /etc's
  egress.sock                  the egress proxy's socket (networked sandboxes only)
  exposed/N                    read-only binds of host directories the uid cannot reach (the
                               worker's Python when it lives under /root)
  helper.log                   the helper's stderr
  inside.py                    the helper's code, copied (the installed package may live where
                               the uid cannot read it)"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import random
import re
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.sandbox.errors import SandboxError, SandboxUnavailable

UID_LOCKS = Path("/run/agentry-sandbox/uids")
UID_FIRST = 1_900_000
UID_COUNT = 100_000
USER_NAME = "user"
HOME = f"/home/{USER_NAME}"

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_LOCKS = ".locks"
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOSYMFOLLOW, MS_REMOUNT, MS_BIND = 1, 2, 4, 256, 32, 4096
MNT_DETACH = 2


def open_to_others(path: Path) -> bool:
    """Whether an unprivileged uid can reach `path` (every directory on the way searchable)."""
    current = Path("/")
    for part in path.parts[1:]:
        current = current / part
        try:
            mode = current.stat().st_mode
        except OSError:
            return False
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return False
    return True


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def mount_tmpfs(target: Path, size_bytes: int) -> None:
    options = f"size={size_bytes},nr_inodes={max(4096, size_bytes // 4096)},mode=0711,uid=0,gid=0"
    if _libc().mount(b"agentry-sandbox", str(target).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options.encode()) != 0:
        errno = ctypes.get_errno()
        raise SandboxUnavailable(f"cannot mount the session's size-capped tmpfs at {target}: {os.strerror(errno)}")


def bind_readonly(source: Path, target: Path) -> None:
    libc = _libc()
    if libc.mount(str(source).encode(), str(target).encode(), None, MS_BIND, None) != 0 or (
        libc.mount(None, str(target).encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None) != 0
    ):
        errno = ctypes.get_errno()
        raise SandboxUnavailable(f"cannot expose {source} to the sandbox: {os.strerror(errno)}")


def bind_nosymfollow(target: Path) -> None:
    """Make `target` a mount of its own on which no path walk follows a symlink (Linux 5.10+)."""
    libc = _libc()
    if libc.mount(str(target).encode(), str(target).encode(), None, MS_BIND, None) != 0 or (
        libc.mount(None, str(target).encode(), None, MS_REMOUNT | MS_BIND | MS_NOSYMFOLLOW | MS_NOSUID | MS_NODEV, None)
        != 0
    ):
        errno = ctypes.get_errno()
        raise SandboxUnavailable(
            f"cannot make {target} a nosymfollow mount (Linux 5.10 or later): {os.strerror(errno)}"
        )


def unmount(target: Path) -> None:
    # Detached: whatever still holds it open (nothing, once the sandbox is dead) lets go later.
    _libc().umount2(str(target).encode(), MNT_DETACH)


def _lock(path: Path) -> int | None:
    """An exclusive flock on `path`, or None when someone holds it. The file is unlinked by
    whoever releases it, so a lock taken on a file that was unlinked meanwhile is retried."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _unlock(path: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
    with contextlib.suppress(OSError):
        os.close(fd)


def allocate_uid() -> tuple[int, int]:
    """A uid no other live sandbox on this machine has, and the lock fd that holds it."""
    UID_LOCKS.mkdir(mode=0o700, parents=True, exist_ok=True)
    start = random.randrange(UID_COUNT)
    for step in range(UID_COUNT):
        uid = UID_FIRST + (start + step) % UID_COUNT
        fd = _lock(UID_LOCKS / str(uid))
        if fd is not None:
            return uid, fd
    raise SandboxUnavailable("every sandbox uid on this machine is in use")


@dataclass
class Area:
    root: Path
    uid: int
    _uid_lock: int
    _session_lock: int
    exposed: dict[Path, Path]
    """Host directories the uid could not reach, bound read-only into the area (host path →
    its copy in the area), for the sandbox to bind where they belong."""

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def shm(self) -> Path:
        return self.root / "shm"

    @property
    def mnt(self) -> Path:
        return self.root / "mnt"

    @property
    def passwd(self) -> Path:
        return self.root / "etc" / "passwd"

    @property
    def group(self) -> Path:
        return self.root / "etc" / "group"

    @property
    def egress_socket(self) -> Path:
        return self.root / "egress.sock"

    @property
    def log(self) -> Path:
        return self.root / "helper.log"

    @property
    def helper(self) -> Path:
        return self.root / "inside.py"

    @classmethod
    def create(cls, sessions_root: Path, session_id: str, size_bytes: int, expose: Sequence[Path] = ()) -> Area:
        if not _SESSION_ID.match(session_id):
            raise ValueError(f"session id {session_id!r} cannot name a sandbox directory")
        if os.geteuid() != 0:
            raise SandboxUnavailable("the sandbox worker must run as root (it mounts and drops to a uid per session)")
        sessions_root.mkdir(parents=True, exist_ok=True)
        os.chmod(sessions_root, 0o711)  # the uids must reach their own area; nobody may list the others
        if not open_to_others(sessions_root):
            # bubblewrap runs as the session's uid and must reach the area to bind it.
            raise SandboxUnavailable(f"{sessions_root} must be reachable (searchable) by other users to hold sandboxes")
        locks = sessions_root / _LOCKS
        locks.mkdir(mode=0o700, exist_ok=True)
        sweep_stale(sessions_root)
        session_lock = _lock(locks / session_id)
        if session_lock is None:
            raise SandboxError(f"session {session_id} already has a live sandbox on this machine")
        root = sessions_root / session_id
        uid, uid_lock = 0, -1
        try:
            unmount_and_remove(root)  # what a crashed worker left: a session starts from an empty area
            root.mkdir(mode=0o711)
            uid, uid_lock = allocate_uid()
            mount_tmpfs(root, size_bytes)
            area = cls(root, uid, uid_lock, session_lock, {})
            area._populate()
            bind_nosymfollow(area.mnt)
            for index, source in enumerate(expose):
                target = root / "exposed" / str(index)
                target.mkdir(mode=0o755, parents=True)
                bind_readonly(source, target)
                area.exposed[source] = target
        except BaseException:
            unmount_and_remove(root)
            if uid_lock >= 0:
                _unlock(UID_LOCKS / str(uid), uid_lock)
            _unlock(locks / session_id, session_lock)
            raise
        return area

    def _populate(self) -> None:
        for directory in (self.workspace, self.home, self.tmp, self.shm):
            directory.mkdir(mode=0o700)
            os.chown(directory, self.uid, self.uid)
        (self.root / "etc").mkdir(mode=0o755)
        self.mnt.mkdir(mode=0o755)
        # Made here (the SDK would make it 0700, which the uid could not cross).
        (self.mnt / "memory").mkdir(mode=0o755)
        for directory in (self.mnt, self.mnt / "memory"):
            os.chmod(directory, 0o755)
        self.passwd.write_text(
            f"root:x:0:0:root:/root:/usr/sbin/nologin\n{USER_NAME}:x:{self.uid}:{self.uid}::{HOME}:/bin/bash\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        )
        self.group.write_text(f"root:x:0:\n{USER_NAME}:x:{self.uid}:\nnogroup:x:65534:\n")
        shutil.copyfile(Path(__file__).with_name("inside.py"), self.helper)
        for name in (self.passwd, self.group, self.helper):
            os.chmod(name, 0o644)
        self.log.touch(mode=0o600)

    def remove(self) -> None:
        unmount_and_remove(self.root)
        _unlock(UID_LOCKS / str(self.uid), self._uid_lock)
        _unlock(self.root.parent / _LOCKS / self.root.name, self._session_lock)


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first (from this process's mount table)."""
    prefix = str(root)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_and_remove(root: Path) -> None:
    """Unmount everything at or below `root`, then delete it. Nothing is deleted while anything
    is still mounted there: a bind of the worker's Python must never be emptied by accident."""
    for _ in range(10):
        points = _mounts_under(root)
        if not points:
            break
        for point in points:
            unmount(Path(point))
    else:
        raise SandboxError(f"cannot unmount {root}; left in place")
    if root.exists():
        shutil.rmtree(root, ignore_errors=True)


def sweep_stale(sessions_root: Path) -> None:
    """Remove the areas no live sandbox holds (left by a worker that died without closing)."""
    locks = sessions_root / _LOCKS
    for entry in sessions_root.iterdir():
        if entry.name == _LOCKS or not _SESSION_ID.match(entry.name):
            continue
        fd = _lock(locks / entry.name)
        if fd is None:
            continue
        try:
            unmount_and_remove(entry)
        finally:
            _unlock(locks / entry.name, fd)
