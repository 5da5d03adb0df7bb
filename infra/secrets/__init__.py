"""Secrets at rest: AES-256-GCM envelope encryption behind ``application.ports.SecretCipher``.

``envelope`` holds the cryptography, ``key_table`` the wrapped data keys (outside the event
log, so destroying a row crypto-shreds every copy of its ciphertext), ``roots`` where the root
key comes from, ``cipher`` the port's adapter and ``rotation`` the root-key rotation."""

from infra.secrets.cipher import EnvelopeCipher
from infra.secrets.key_table import KeyTable, key_table_engine, sqlite_url
from infra.secrets.roots import EnvRoot, FileRoot, RootSource
from infra.secrets.rotation import RotationOutcome, rotate_root

__all__ = [
    "EnvRoot",
    "EnvelopeCipher",
    "FileRoot",
    "KeyTable",
    "RootSource",
    "RotationOutcome",
    "key_table_engine",
    "rotate_root",
    "sqlite_url",
]
