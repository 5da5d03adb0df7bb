"""The embedded data folder: readable by the server's user only, whatever the umask.

It holds the whole event history, the read models, the admin key and the secret API-key
hashes are keyed with, so the folder is 0700 and every file in it 0600. SQLite creates its
``-wal`` and ``-shm`` files with the mode of the database file itself, so creating the two
database files 0600 before SQLite first opens them covers those too; files left by an older
version are narrowed on every start."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from infra.settings import Settings, SettingsError

FOLDER_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def prepare_data_dir(settings: Settings) -> None:
    folder = settings.data_dir
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(folder, FOLDER_MODE)  # mkdir's mode is cut by the umask, and an old folder keeps its own
    # Folders inside it (the vector index, the blob store) are private too, made or narrowed here.
    for inner in (settings.vector_dir, settings.blob_dir):
        inner.mkdir(mode=FOLDER_MODE, exist_ok=True)
        os.chmod(inner, FOLDER_MODE)
    for database in (settings.event_store_path, settings.read_model_path):
        create_private(database)
        for suffix in SQLITE_SIDE_FILES:
            _narrow(database.with_name(database.name + suffix))
    keys = settings.secret_keys_path  # made by the cipher's key table, narrowed here like the rest
    for name in (
        settings.admin_key_path,
        settings.key_pepper_path,
        settings.sandbox_worker_key_path,
        settings.root_secret_path,
        settings.root_secret_path.with_name(settings.root_secret_path.name + ".next"),
        keys,
        *(keys.with_name(keys.name + suffix) for suffix in SQLITE_SIDE_FILES),
    ):
        _narrow(name)


def create_private(path: Path) -> None:
    """Creates ``path`` empty (an empty file is an empty SQLite database) or narrows it to 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)
        handle.write(text)


def read_or_create_secret(path: Path) -> str:
    """The secret in ``path``, generated on first use. Created exclusively, so two processes
    starting at once on one folder cannot each keep a different secret."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        # Another process starting on the same folder may have created it a moment ago and
        # not written it yet: give it a moment before calling the file damaged.
        for _ in range(20):
            secret = path.read_text().strip()
            if secret:
                return secret
            time.sleep(0.1)
        raise SettingsError(f"{path} is empty; restore it from a backup (API keys are hashed with it)") from None
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)
        secret = secrets.token_urlsafe(32)
        handle.write(secret + "\n")
    return secret


def _narrow(path: Path) -> None:
    if path.exists():
        os.chmod(path, FILE_MODE)


class PrivateTextFile:
    """A 0600 file in the data folder (the embedded admin key)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self.location = str(path.resolve())

    def exists(self) -> bool:
        return self._path.exists()

    def write(self, text: str) -> None:
        write_private(self._path, text)
