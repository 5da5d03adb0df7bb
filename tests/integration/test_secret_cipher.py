"""The secrets cipher on its real key tables: its own SQLite file, and PostgreSQL."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from application.ports import SecretUnavailable
from infra.secrets import rotate_root
from infra.secrets.roots import FileRoot
from infra.secrets.wiring import key_table
from infra.settings import Settings, SettingsError
from interfaces.bootstrap import build_cipher

REPO = Path(__file__).resolve().parents[2]
ROOT_A = "root-a-" + "a" * 40
ROOT_B = "root-b-" + "b" * 40
CLEARTEXT = "sk-ant-api03-CLEARTEXT-never-stored-anywhere"


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path / "data")
    return Settings(data_dir=tmp_path / "data", database_url=request.getfixturevalue("postgres_url"), root_secret=ROOT_A)


def _with_root(settings: Settings, secret: str) -> Settings:
    return Settings(data_dir=settings.data_dir, database_url=settings.database_url, root_secret=secret)


def test_round_trip_and_one_data_key_per_owner(settings: Settings) -> None:
    cipher = build_cipher(settings)
    first, second = cipher.seal("card_1", CLEARTEXT), cipher.seal("card_1", "other")
    assert CLEARTEXT not in first and first != cipher.seal("card_1", CLEARTEXT)
    assert first.split(".")[1] == second.split(".")[1]  # the same data key
    assert cipher.seal("card_2", CLEARTEXT).split(".")[1] != first.split(".")[1]
    assert cipher.open("card_1", first) == CLEARTEXT
    assert build_cipher(settings).open("card_1", second) == "other"


def test_a_sealed_value_does_not_open_as_another_owner(settings: Settings) -> None:
    cipher = build_cipher(settings)
    sealed = cipher.seal("card_1", CLEARTEXT)
    with pytest.raises(SecretUnavailable):
        cipher.open("card_2", sealed)  # an owner with no key at all
    cipher.seal("card_2", "x")
    with pytest.raises(SecretUnavailable, match="another data key"):
        cipher.open("card_2", sealed)


def test_shred_makes_old_ciphertext_unreadable_in_every_process(settings: Settings) -> None:
    api, worker = build_cipher(settings), build_cipher(settings)
    sealed = api.seal("card_1", CLEARTEXT)
    kept = api.seal("card_2", "kept")
    assert worker.open("card_1", sealed) == CLEARTEXT
    api.shred("card_1")
    for cipher in (api, worker, build_cipher(settings)):
        with pytest.raises(SecretUnavailable, match="destroyed"):
            cipher.open("card_1", sealed)
    assert worker.open("card_2", kept) == "kept"
    api.shred("card_1")  # idempotent
    # A new key for the owner does not revive the old ciphertext.
    assert worker.open("card_1", worker.seal("card_1", "new")) == "new"
    with pytest.raises(SecretUnavailable):
        api.open("card_1", sealed)


def test_concurrent_first_seals_converge_on_one_data_key(settings: Settings) -> None:
    ciphers = [build_cipher(settings) for _ in range(4)]
    owners = [f"card_{n}" for n in range(15)]
    sealed: dict[tuple[int, str], str] = {}

    def seal_all(index: int, barrier: threading.Barrier) -> None:
        for owner in owners:
            barrier.wait()
            sealed[index, owner] = ciphers[index].seal(owner, f"{owner}@{index}")

    barrier = threading.Barrier(len(ciphers))
    threads = [threading.Thread(target=seal_all, args=(i, barrier)) for i in range(len(ciphers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for (index, owner), value in sealed.items():
        for cipher in ciphers:
            assert cipher.open(owner, value) == f"{owner}@{index}"


def test_a_wrong_root_is_a_clear_secret_unavailable(settings: Settings) -> None:
    sealed = build_cipher(settings).seal("card_1", CLEARTEXT)
    wrong = build_cipher(_with_root(settings, ROOT_B))
    with pytest.raises(SecretUnavailable, match="wrapped by another root key"):
        wrong.open("card_1", sealed)
    # Nor does it make new keys under a root the table does not know (they would be lost).
    with pytest.raises(SecretUnavailable, match="another root key"):
        wrong.seal("card_2", "x")


def test_postgres_without_a_root_secret_is_a_settings_error(postgres_url: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="AGENTRY_ROOT_SECRET is required with PostgreSQL"):
        build_cipher(Settings(data_dir=tmp_path, database_url=postgres_url))


def test_embedded_files_are_private_and_hold_no_cleartext(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    cipher = build_cipher(settings)
    cipher.seal("card_1", CLEARTEXT)
    sealed = cipher.seal("card_2", CLEARTEXT)
    for path in (settings.root_secret_path, settings.secret_keys_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    root = settings.root_secret_path.read_text().strip()
    table_bytes = _folder_bytes(settings.data_dir, "secret_keys")
    assert CLEARTEXT.encode() not in table_bytes and root.encode() not in table_bytes
    # A shredded key leaves no copy of its wrapped bytes in the file (secure_delete).
    wrapped = _wrapped_key(settings, "card_2")
    assert wrapped in _folder_bytes(settings.data_dir, "secret_keys")
    cipher.shred("card_2")
    assert wrapped not in _folder_bytes(settings.data_dir, "secret_keys")
    with pytest.raises(SecretUnavailable):
        cipher.open("card_2", sealed)


def test_rotate_root_embedded_through_the_cli(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    server = build_cipher(settings)  # a server left running across the rotation
    values = {f"card_{n}": server.seal(f"card_{n}", f"key-{n}") for n in range(3)}
    old_root = settings.root_secret_path.read_text().strip()

    result = _cli(settings, {})
    assert result.returncode == 0, result.stderr
    assert "re-wrapped 3 data keys" in result.stdout
    new_root = settings.root_secret_path.read_text().strip()
    assert new_root != old_root
    assert stat.S_IMODE(settings.root_secret_path.stat().st_mode) == 0o600
    assert not (settings.data_dir / "root-secret.next").exists()

    for cipher in (build_cipher(settings), server, build_cipher(_with_root(settings, new_root))):
        assert {owner: cipher.open(owner, value) for owner, value in values.items()} == {
            owner: f"key-{owner[5:]}" for owner in values
        }
    with pytest.raises(SecretUnavailable, match="wrapped by another root key"):
        build_cipher(_with_root(settings, old_root)).open("card_0", values["card_0"])
    # The running server keeps sealing, under the new root.
    assert build_cipher(_with_root(settings, new_root)).open("card_9", server.seal("card_9", "late")) == "late"


def test_an_interrupted_embedded_rotation_loses_nothing_and_finishes_on_a_rerun(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    cipher = build_cipher(settings)
    before = cipher.seal("card_1", "one")

    class CrashBeforeRename(FileRoot):
        def finish_rotation(self) -> None:
            raise KeyboardInterrupt  # the process dies after the re-wrap committed

    table = key_table(settings)
    with pytest.raises(KeyboardInterrupt):
        rotate_root(table, CrashBeforeRename(settings.root_secret_path))
    table.close()
    pending = (settings.data_dir / "root-secret.next").read_text().strip()
    # Rows are under the new root while root-secret still holds the old one: both open.
    during = build_cipher(settings)
    assert during.open("card_1", before) == "one"
    made_during = during.seal("card_2", "two")

    result = _cli(settings, {})
    assert result.returncode == 0, result.stderr
    assert "re-wrapped 0 data keys (2 already under the new root)" in result.stdout
    assert settings.root_secret_path.read_text().strip() == pending
    only_new = build_cipher(_with_root(settings, pending))
    assert only_new.open("card_1", before) == "one" and only_new.open("card_2", made_during) == "two"


def test_rotate_root_postgres_through_the_cli(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_url, root_secret=ROOT_A)
    cipher = build_cipher(settings)
    values = {f"card_{n}": cipher.seal(f"card_{n}", f"key-{n}") for n in range(3)}

    missing = _cli(settings, {"AGENTRY_ROOT_SECRET": ROOT_A})
    assert missing.returncode == 2 and "AGENTRY_NEW_ROOT_SECRET is required" in missing.stderr
    # A wrong current root changes nothing.
    wrong = _cli(settings, {"AGENTRY_ROOT_SECRET": "w" * 40, "AGENTRY_NEW_ROOT_SECRET": ROOT_B})
    assert wrong.returncode == 2 and "Nothing was changed" in wrong.stderr
    assert cipher.open("card_0", values["card_0"]) == "key-0"

    result = _cli(settings, {"AGENTRY_ROOT_SECRET": ROOT_A, "AGENTRY_NEW_ROOT_SECRET": ROOT_B})
    assert result.returncode == 0, result.stderr
    assert "re-wrapped 3 data keys" in result.stdout and "set AGENTRY_ROOT_SECRET" in result.stdout
    rotated = build_cipher(_with_root(settings, ROOT_B))
    assert {owner: rotated.open(owner, value) for owner, value in values.items()} == {
        owner: f"key-{owner[5:]}" for owner in values
    }
    with pytest.raises(SecretUnavailable, match="wrapped by another root key"):
        build_cipher(settings).open("card_0", values["card_0"])
    again = _cli(settings, {"AGENTRY_ROOT_SECRET": ROOT_A, "AGENTRY_NEW_ROOT_SECRET": ROOT_B})
    assert again.returncode == 0 and "re-wrapped 0 data keys (3 already under the new root)" in again.stdout


def _cli(settings: Settings, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AGENTRY_")}
    env.update(AGENTRY_DATA_DIR=str(settings.data_dir), AGENTRY_DATABASE_URL=settings.database_url, **extra)
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli.main", "secrets", "rotate-root"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )


def _folder_bytes(folder: Path, prefix: str) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.iterdir()) if path.name.startswith(prefix))


def _wrapped_key(settings: Settings, owner: str) -> bytes:
    engine = sa.create_engine(f"sqlite:///{settings.secret_keys_path}")
    with engine.connect() as conn:
        value = conn.execute(sa.text("SELECT wrapped_key FROM secret_data_keys WHERE owner = :o"), {"o": owner}).scalar()
    engine.dispose()
    assert isinstance(value, bytes)
    return value
