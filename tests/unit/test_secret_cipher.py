"""The envelope's cryptography on its own: no key table, no files."""

from __future__ import annotations

import re

import pytest

from application.ports import SecretUnavailable
from infra.secrets import envelope
from infra.secrets.envelope import RootKey

ROOT = "r" * 40


def test_a_sealed_value_is_compact_ascii_and_opens_for_its_owner() -> None:
    key_id, data_key = envelope.new_data_key()
    sealed = envelope.seal("card_1", key_id, data_key, "sk-ant-é-🔑")
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", sealed)
    assert sealed.split(".")[1] == key_id
    assert "sk-ant" not in sealed
    assert envelope.open_sealed("card_1", data_key, sealed) == "sk-ant-é-🔑"


def test_each_seal_uses_a_fresh_nonce() -> None:
    key_id, data_key = envelope.new_data_key()
    assert envelope.seal("o", key_id, data_key, "same") != envelope.seal("o", key_id, data_key, "same")


def test_the_owner_is_bound_even_under_the_same_data_key() -> None:
    key_id, data_key = envelope.new_data_key()
    sealed = envelope.seal("card_1", key_id, data_key, "secret")
    with pytest.raises(SecretUnavailable, match="does not authenticate"):
        envelope.open_sealed("card_2", data_key, sealed)


def test_a_tampered_or_malformed_value_is_unavailable() -> None:
    key_id, data_key = envelope.new_data_key()
    sealed = envelope.seal("o", key_id, data_key, "secret")
    head, body = sealed.rsplit(".", 1)
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(SecretUnavailable):
        envelope.open_sealed("o", data_key, f"{head}.{flipped}")
    for bad in ("", "v1..abc", "v2.k.abc", "plain text", "v1.k.@@@@"):
        with pytest.raises(SecretUnavailable):
            envelope.open_sealed("o", data_key, bad)


def test_a_wrapped_key_unwraps_only_under_its_root_owner_and_id() -> None:
    root = RootKey.from_secret(ROOT)
    key_id, data_key = envelope.new_data_key()
    wrapped = root.wrap("o", key_id, data_key)
    assert data_key not in wrapped
    assert root.unwrap("o", key_id, wrapped) == data_key
    for owner, kid, other in (("p", key_id, root), ("o", "other", root), ("o", key_id, RootKey.from_secret("s" * 40))):
        with pytest.raises(SecretUnavailable):
            other.unwrap(owner, kid, wrapped)


def test_the_fingerprint_names_a_root_without_being_its_key() -> None:
    first, again, other = RootKey.from_secret(ROOT), RootKey.from_secret(ROOT), RootKey.from_secret("s" * 40)
    assert first.fingerprint == again.fingerprint != other.fingerprint
    assert re.fullmatch(r"[0-9a-f]{16}", first.fingerprint)
    assert bytes.fromhex(first.fingerprint) not in first._key
    assert first._key.hex() not in repr(first)
