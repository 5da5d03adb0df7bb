"""Where the root key comes from.

``EnvRoot``: the operator gives the root secret (``AGENTRY_ROOT_SECRET``; required with
PostgreSQL, where processes on many hosts must share it). ``FileRoot``: the embedded default,
generated once into ``<data dir>/root-secret`` (0600).

A ``FileRoot`` may hold two roots for a while: ``root-secret.next`` exists between the moment
``agentry secrets rotate-root`` chose the new root and the moment it replaced ``root-secret``
with it. During that window new data keys are wrapped under the new root and either root
opens, so neither a crash nor a server running alongside the rotation loses a key."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from infra.data_dir import FILE_MODE, read_or_create_secret
from infra.secrets.envelope import RootKey


@dataclass(frozen=True)
class Keyring:
    """The roots a process knows: ``primary`` wraps new data keys; any of them unwraps."""

    primary: RootKey
    others: tuple[RootKey, ...] = ()

    def find(self, fingerprint: str) -> RootKey | None:
        return next((root for root in (self.primary, *self.others) if root.fingerprint == fingerprint), None)

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(root.fingerprint for root in (self.primary, *self.others))


class RootSource(Protocol):
    def keyring(self) -> Keyring:
        """The roots as they are now (a file-kept root is read again)."""
        ...

    @property
    def managed(self) -> bool:
        """True when Agentry keeps the root itself (and so chooses the next one on rotation)."""
        ...


class EnvRoot:
    def __init__(self, secret: str) -> None:
        self._keyring = Keyring(RootKey.from_secret(secret))

    def keyring(self) -> Keyring:
        return self._keyring

    @property
    def managed(self) -> bool:
        return False


class FileRoot:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending_path = path.with_name(path.name + ".next")

    def keyring(self) -> Keyring:
        current = RootKey.from_secret(read_or_create_secret(self.path))
        pending = self._pending()
        if pending is None:
            return Keyring(current)
        return Keyring(RootKey.from_secret(pending), (current,))

    @property
    def managed(self) -> bool:
        return True

    def begin_rotation(self) -> str:
        """The next root: the one an interrupted rotation already chose, else a new one,
        made durable under ``root-secret.next`` before any data key is wrapped with it."""
        pending = self._pending()
        if pending is not None:
            return pending
        secret = secrets.token_urlsafe(32)
        temporary = self.path.with_name(self.path.name + ".next.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # Appears whole or not at all: a reader never sees a half-written root.
        os.replace(temporary, self.pending_path)
        _sync_folder(self.path.parent)
        return secret

    def finish_rotation(self) -> None:
        """Every data key is under the new root: it becomes the only one."""
        os.replace(self.pending_path, self.path)
        _sync_folder(self.path.parent)

    def _pending(self) -> str | None:
        try:
            return self.pending_path.read_text().strip() or None
        except FileNotFoundError:
            return None


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
