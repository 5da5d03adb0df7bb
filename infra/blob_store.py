"""The blob store's embedded adapter: a content-addressed folder (``<root>/ab/cd/<sha256>``).

A blob is written to a temporary name and renamed into place, so a reader never sees half
of one and a crash leaves at most a stray temporary file, never a wrong blob."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from application.ports import BlobMissing

KEY = re.compile(r"[0-9a-f]{64}")


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, key: str) -> Path:
        if not KEY.fullmatch(key):
            raise BlobMissing(key)
        return self._root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if path.exists():
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(key) from None

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except BlobMissing:
            return False

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except BlobMissing:
            pass
