"""``SecretCipher``: AES-256-GCM envelope encryption with a data key per owner."""

from __future__ import annotations

from application.ports import SecretUnavailable
from infra.secrets import envelope
from infra.secrets.key_table import ForeignRoot, KeyTable, WrappedKey
from infra.secrets.roots import Keyring, RootSource


class EnvelopeCipher:
    """Data keys are not cached: every ``seal`` and ``open`` reads its owner's row (a
    primary-key lookup, far below the cost of the provider call the key is opened for), so a
    ``shred`` in any process — the API deleting a card while a worker runs its turn — takes
    effect at once everywhere. Only the root keys are kept; a file-kept root is read again
    when a row names a root this process does not know (a rotation ran meanwhile)."""

    def __init__(self, table: KeyTable, roots: RootSource) -> None:
        self._table = table
        self._roots = roots
        self._keyring = roots.keyring()

    def seal(self, owner: str, plaintext: str) -> str:
        _check_owner(owner)
        row = self._table.get(owner) or self._create(owner)
        return envelope.seal(owner, row.key_id, self._unwrap(row), plaintext)

    def open(self, owner: str, sealed: str) -> str:
        _check_owner(owner)
        key_id = envelope.key_id_of(sealed)
        row = self._table.get(owner)
        if row is None:
            raise SecretUnavailable(f"{owner!r} has no data key: it was destroyed (or never made)")
        if row.key_id != key_id:
            raise SecretUnavailable(
                f"the secret was sealed under another data key than {owner!r}'s (another owner's, or a destroyed one)"
            )
        return envelope.open_sealed(owner, self._unwrap(row), sealed)

    def shred(self, owner: str) -> None:
        _check_owner(owner)
        self._table.delete(owner)

    def close(self) -> None:
        self._table.close()

    def _create(self, owner: str) -> WrappedKey:
        key_id, data_key = envelope.new_data_key()
        keyring = self._keyring
        for retry in (False, True):
            root = keyring.primary
            try:
                self._table.insert_if_absent(
                    WrappedKey(owner, key_id, root.wrap(owner, key_id, data_key), root.fingerprint), keyring.fingerprints
                )
                break
            except ForeignRoot as foreign:
                keyring = self._refresh()
                if retry or keyring.find(foreign.fingerprint) is None:
                    raise SecretUnavailable(
                        f"the key table holds data keys wrapped by another root key (fingerprint "
                        f"{foreign.fingerprint}; this process knows {', '.join(keyring.fingerprints)}): was the root "
                        "rotated? Restart with the current AGENTRY_ROOT_SECRET"
                    ) from None
        # Whoever inserted first, this process or another sealing for the same owner, won.
        row = self._table.get(owner)
        if row is None:
            raise SecretUnavailable(f"{owner!r}'s data key was destroyed while it was being made")
        return row

    def _unwrap(self, row: WrappedKey) -> bytes:
        root = self._keyring.find(row.root_fingerprint) or self._refresh().find(row.root_fingerprint)
        if root is None:
            raise SecretUnavailable(
                f"{row.owner!r}'s data key is wrapped by another root key (fingerprint {row.root_fingerprint}; "
                f"this process has {', '.join(self._keyring.fingerprints)}): check AGENTRY_ROOT_SECRET"
            )
        return root.unwrap(row.owner, row.key_id, row.wrapped)

    def _refresh(self) -> Keyring:
        self._keyring = self._roots.keyring()
        return self._keyring


def _check_owner(owner: str) -> None:
    if not isinstance(owner, str) or not owner or "\x00" in owner:
        raise ValueError("a secret's owner is a non-empty id")
