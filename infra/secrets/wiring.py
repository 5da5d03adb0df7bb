"""The cipher and the rotation from the settings (called by the composition root only)."""

from __future__ import annotations

from infra.data_dir import prepare_data_dir
from infra.secrets.cipher import EnvelopeCipher
from infra.secrets.key_table import KeyTable, key_table_engine, sqlite_url
from infra.secrets.roots import EnvRoot, FileRoot, RootSource
from infra.secrets.rotation import RotationOutcome, rotate_root
from infra.settings import Settings, SettingsError


def cipher_for(settings: Settings) -> EnvelopeCipher:
    roots = root_source(settings)
    return EnvelopeCipher(key_table(settings), roots)


def rotate_for(settings: Settings, new_root_secret: str) -> RotationOutcome:
    roots = root_source(settings)
    table = key_table(settings)
    try:
        return rotate_root(table, roots, new_root_secret)
    finally:
        table.close()


def key_table(settings: Settings) -> KeyTable:
    """Embedded: its own SQLite file in the data folder; PostgreSQL: the application's database."""
    if settings.database_url and not settings.uses_postgres:
        raise SettingsError(
            "AGENTRY_DATABASE_URL must be a postgresql:// URL (leave it unset for the embedded SQLite store)"
        )
    if settings.uses_postgres:
        url = settings.postgres.sqlalchemy_url
    else:
        prepare_data_dir(settings)
        url = sqlite_url(settings.secret_keys_path)
    table = KeyTable(key_table_engine(url))
    table.setup()
    return table


def root_source(settings: Settings) -> RootSource:
    """Like the API-key secret: generated once into the data folder when embedded; given by
    the operator with PostgreSQL, where every API and worker process must share it."""
    if settings.root_secret:
        return EnvRoot(settings.root_secret)
    if settings.uses_postgres:
        raise SettingsError(
            "AGENTRY_ROOT_SECRET is required with PostgreSQL: it wraps the data key of every stored secret and "
            "every API and worker process needs the same one (at least 32 characters, e.g. python -c 'import "
            "secrets; print(secrets.token_urlsafe(32))'). Keep a copy: without it no stored secret opens"
        )
    prepare_data_dir(settings)
    return FileRoot(settings.root_secret_path)
