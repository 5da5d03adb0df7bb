"""The embedded data folder is 0700 and every file in it 0600 — the SQLite databases with their
WAL and shared-memory files, the admin key, the key-hashing secret — even under umask 000,
and an older, wider folder is narrowed on start. The secret survives restarts, so keys do."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from application.api_keys import generate_key
from infra.settings import Settings
from interfaces.bootstrap import build
from tests.support.server import running_server


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(folder: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}


def _wider(folder: Path) -> dict[str, str]:
    """Entries wider than private: a file not 0600, a folder (the vector index, the blob
    store) not 0700."""
    return {
        path.name: oct(stat.S_IMODE(path.stat().st_mode))
        for path in folder.iterdir()
        if stat.S_IMODE(path.stat().st_mode) != (0o700 if path.is_dir() else 0o600)
    }


def _exercise(data_dir: Path) -> None:
    """Starts the embedded platform (no bootstrap key: it writes the admin key file) and
    records something, so both databases have their WAL files."""
    platform = build(Settings(data_dir=data_dir))
    try:
        platform.start()
        key = (data_dir / "admin-api-key").read_text().strip()
        who = platform.services.api_keys.authenticate(key)
        platform.services.agents.create(who, {"name": "a", "model": "m"})
        platform.projections.catch_up()
        found = _modes(data_dir)
    finally:
        platform.close()
    assert {"events.sqlite3", "read_models.sqlite3", "admin-api-key", "key-pepper", "qdrant", "blobs"} <= set(found)
    assert any(name.endswith("-wal") for name in found), found


def test_the_data_folder_and_its_files_are_private_under_a_permissive_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with _umask(0):
        _exercise(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert _wider(data_dir) == {}


def test_an_older_wider_data_folder_is_narrowed_on_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with _umask(0):
        _exercise(data_dir)
    os.chmod(data_dir, 0o755)
    for path in data_dir.iterdir():
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    with _umask(0):
        _exercise(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert _wider(data_dir) == {}


def test_the_key_secret_is_kept_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    issued = generate_key()  # not the bootstrap key, which is recorded again on every start
    with running_server(data_dir) as first:
        secret = (data_dir / "key-pepper").read_text()
        first.platform.services.api_keys.issue(issued, name="cli")
    assert len(secret.strip()) >= 32
    with running_server(data_dir) as second:
        assert (data_dir / "key-pepper").read_text() == secret
        with httpx.Client(base_url=second.base_url, headers={"x-api-key": issued}) as http:
            assert http.get("/v1/agents").status_code == 200
