"""The cryptography of the envelope, and nothing else: no I/O.

- The root key is HKDF-SHA256 of the root secret; its fingerprint is a second, independent
  HKDF output, so storing it says nothing about the key yet tells which root wrapped a row.
- A data key (256 random bits per owner) is wrapped with AES-256-GCM under the root key, the
  owner and key id bound as associated data: a wrapped key copied onto another owner's row
  does not unwrap.
- A sealed value is ``v1.<key id>.<base64url(nonce ‖ ciphertext+tag)>``, AES-256-GCM under the
  data key with the owner and key id as associated data, so it cannot be opened as another
  owner even by someone who can edit the key table.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from application.ports import SecretUnavailable

VERSION = "v1"
NONCE_BYTES = 12
KEY_BYTES = 32
_ROOT_SALT = b"agentry.root-key.v1"
_WRAP_AAD = b"agentry.data-key.v1"
_SEAL_AAD = b"agentry.secret.v1"


def _hkdf(secret: str, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_ROOT_SALT, info=info).derive(secret.encode())


def _bound(label: bytes, owner: str, key_id: str) -> bytes:
    # NUL separators: neither an owner id nor a key id can contain one, so no two
    # (owner, key id) pairs give the same associated data.
    return label + b"\x00" + owner.encode() + b"\x00" + key_id.encode()


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class RootKey:
    """The key-encryption key one root secret gives."""

    fingerprint: str
    _key: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret: str) -> RootKey:
        if not secret:
            raise ValueError("an empty root secret")
        return cls(fingerprint=_hkdf(secret, b"fingerprint", 8).hex(), _key=_hkdf(secret, b"wrap", KEY_BYTES))

    def wrap(self, owner: str, key_id: str, data_key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self._key).encrypt(nonce, data_key, _bound(_WRAP_AAD, owner, key_id))

    def unwrap(self, owner: str, key_id: str, wrapped: bytes) -> bytes:
        try:
            return AESGCM(self._key).decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _bound(_WRAP_AAD, owner, key_id)
            )
        except InvalidTag:
            raise SecretUnavailable(f"the data key of {owner!r} does not unwrap: the key table row was altered") from None


def new_data_key() -> tuple[str, bytes]:
    """A fresh data key and its id (base64url, so it never contains the sealed value's dots)."""
    return b64encode(os.urandom(12)), AESGCM.generate_key(bit_length=256)


def seal(owner: str, key_id: str, data_key: bytes, plaintext: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(data_key).encrypt(nonce, plaintext.encode(), _bound(_SEAL_AAD, owner, key_id))
    return f"{VERSION}.{key_id}.{b64encode(nonce + sealed)}"


def key_id_of(sealed: str) -> str:
    """The data key a sealed value needs; a value ``seal`` did not make is unavailable."""
    parts = sealed.split(".") if isinstance(sealed, str) else []
    if len(parts) != 3 or parts[0] != VERSION or not parts[1]:
        raise SecretUnavailable("not a sealed secret (expected v1.<key id>.<ciphertext>)")
    return parts[1]


def open_sealed(owner: str, data_key: bytes, sealed: str) -> str:
    key_id = key_id_of(sealed)
    try:
        blob = b64decode(sealed.split(".")[2])
    except (binascii.Error, ValueError):
        raise SecretUnavailable("not a sealed secret (its ciphertext is not base64url)") from None
    try:
        plaintext = AESGCM(data_key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _bound(_SEAL_AAD, owner, key_id))
    except (InvalidTag, ValueError):
        raise SecretUnavailable(f"the sealed secret does not authenticate as {owner!r}'s") from None
    return plaintext.decode()
