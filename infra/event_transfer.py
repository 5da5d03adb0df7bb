"""``application.transfer.RawEventLog`` on the event store: stored events read and appended
as stored, below the aggregates (no mapper, no snapshots: an imported stream is loaded from
its events, and takes snapshots again as it grows); ``application.transfer.DataKeys`` on the
secrets' key table."""

from __future__ import annotations

import binascii
import dataclasses
import os
from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from application.errors import Conflict
from application.transfer import RawEvent, TransferError
from infra.event_store import EventsourcingEventStore
from infra.secrets.envelope import NONCE_BYTES, b64decode, b64encode
from infra.secrets.key_table import ForeignRoot, KeyTable, WrappedKey, secret_data_keys
from infra.secrets.roots import RootSource


class StoredEventLog:
    def __init__(self, store: EventsourcingEventStore) -> None:
        self._store = store

    def max_notification_id(self) -> int:
        return self._store.max_notification_id()

    def notifications(self, after: int, limit: int) -> Sequence[Any]:
        return self._store.notifications(after, limit)

    def stream_version(self, stream_id: UUID) -> int:
        rows = self._store.read_stored(stream_id, limit=1, descending=True)
        return int(rows[0][0]) if rows else 0

    def stored_rows(self, stream_id: UUID) -> Sequence[tuple[int, str, bytes]]:
        return self._store.read_stored(stream_id)

    def check_decodes(self, event: RawEvent) -> None:
        try:
            decoded = self._store.decode_stored(event.stream_id, (event.version, event.topic, event.state))
        except Exception as error:  # whatever the mapper or an upcast raises, the import refuses
            raise TransferError(_one_line(f"{type(error).__name__}: {error}")) from None
        if not isinstance(decoded, DomainEvent) or not dataclasses.is_dataclass(decoded):
            raise TransferError(f"{event.topic!r} names no event class")
        missing = [
            f.name
            for f in dataclasses.fields(decoded)
            if f.name not in vars(decoded) and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise TransferError(f"its state lacks {', '.join(missing)}")

    def append_raw(self, events: Sequence[RawEvent]) -> Sequence[int]:
        """One call of the recorder: one group of its group commit, so one savepoint (SQLite)
        or sub-transaction (PostgreSQL) that commits whole or not at all."""
        stored = [StoredEvent(e.stream_id, e.version, e.topic, e.state) for e in events]
        try:
            ids = self._store.app.recorder.insert_events(stored)
        except IntegrityError as error:
            raise Conflict(
                "a stream of the export was written to meanwhile; run the import again to go on"
            ) from error
        if ids is None:  # the group commit's refusal of a taken version
            raise Conflict("a stream of the export was written to meanwhile; run the import again to go on")
        return ids

    @property
    def kind(self) -> str:
        return "postgresql" if isinstance(self._store.app.recorder, PostgresApplicationRecorder) else "sqlite"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 300 else line[:297] + "..."


class DataKeyTransfer:
    """``application.transfer.DataKeys`` on the key table: the data keys an export's sealed
    values need, unwrapped by this instance's root and wrapped again under a key derived from
    the operator's passphrase (scrypt), and on import unwrapped with it and wrapped under the
    target's root. Owner and key id are bound as associated data, as in the key table."""

    def __init__(self, table: KeyTable, roots: RootSource) -> None:
        self._table = table
        self._roots = roots

    def close(self) -> None:
        self._table.close()

    def export_keys(self, key_ids: Collection[str], passphrase: str) -> dict[str, Any]:
        salt = os.urandom(16)
        transfer = AESGCM(_transfer_key(passphrase, salt))
        keyring = self._roots.keyring()
        wanted = set(key_ids)
        keys = []
        with self._table.engine.connect() as conn:
            rows = conn.execute(sa.select(secret_data_keys).order_by(secret_data_keys.c.owner)).all()
        for row in rows:
            if row.key_id not in wanted:
                continue
            root = keyring.find(row.root_fingerprint)
            if root is None:
                raise TransferError(
                    f"the data key of {row.owner!r} is wrapped by a root key this process does not have "
                    f"(fingerprint {row.root_fingerprint}): check AGENTRY_ROOT_SECRET"
                )
            data_key = root.unwrap(row.owner, row.key_id, bytes(row.wrapped_key))
            nonce = os.urandom(NONCE_BYTES)
            wrapped = nonce + transfer.encrypt(nonce, data_key, _transfer_aad(row.owner, row.key_id))
            keys.append({"owner": row.owner, "key_id": row.key_id, "wrapped": b64encode(wrapped)})
        return {"kdf": "scrypt", "n": SCRYPT_N, "r": 8, "p": 1, "salt": b64encode(salt), "keys": keys}

    def import_keys(self, section: dict[str, Any], passphrase: str, write: bool = True) -> int:
        """Checks every key first (the passphrase opens it; an owner the target holds has the
        same key id), then, with ``write``, stores the missing ones; returns how many."""
        try:
            if section.get("kdf") != "scrypt" or section.get("n") != SCRYPT_N:
                raise ValueError("an unknown key derivation")
            transfer = AESGCM(_transfer_key(passphrase, b64decode(str(section["salt"]))))
            entries = [(str(k["owner"]), str(k["key_id"]), b64decode(str(k["wrapped"]))) for k in section["keys"]]
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            raise TransferError(f"the export's data keys are malformed ({error})") from None
        opened: list[tuple[str, str, bytes]] = []
        for owner, key_id, wrapped in entries:
            try:
                data_key = transfer.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _transfer_aad(owner, key_id))
            except (InvalidTag, ValueError):
                raise TransferError("AGENTRY_EXPORT_PASSPHRASE does not open the export's data keys") from None
            held = self._table.get(owner)
            if held is not None and held.key_id != key_id:
                raise TransferError(f"{owner!r} already has another data key in this store: nothing was imported")
            if held is None:
                opened.append((owner, key_id, data_key))
        if not write:
            return len(opened)
        keyring = self._roots.keyring()
        for owner, key_id, data_key in opened:
            root = keyring.primary
            try:
                self._table.insert_if_absent(
                    WrappedKey(owner, key_id, root.wrap(owner, key_id, data_key), root.fingerprint), keyring.fingerprints
                )
            except ForeignRoot as foreign:
                raise TransferError(
                    f"this store's key table holds data keys under another root key ({foreign.fingerprint}): "
                    "check AGENTRY_ROOT_SECRET"
                ) from None
        return len(opened)


# Parameters of the passphrase's key: about 0.1 s and 32 MiB per derivation, once per command.
SCRYPT_N = 2**15


def _transfer_key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=8, p=1).derive(passphrase.encode())


def _transfer_aad(owner: str, key_id: str) -> bytes:
    return b"agentry.export-key.v1\x00" + owner.encode() + b"\x00" + key_id.encode()
