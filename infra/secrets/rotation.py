"""``agentry secrets rotate-root``: every data key re-wrapped under a new root, in one
transaction; no event is touched and no sealed value changes (its data key is the same).

Embedded (``FileRoot``), crash-safe in this order: the new root is made durable as
``root-secret.next`` (from then on every process wraps new keys under it and opens with
either root), the rows are re-wrapped in one transaction, and only then does
``root-secret.next`` replace ``root-secret``. A crash at any point leaves every key openable,
and running the command again finishes the same rotation (rows already under the new root
are left alone).

Operator-given root (``EnvRoot``, always so with PostgreSQL): the new secret comes from
``AGENTRY_NEW_ROOT_SECRET``; the operator then switches ``AGENTRY_ROOT_SECRET`` to it and
restarts. Running it again with the same pair is safe and re-wraps only what is still under
the old root."""

from __future__ import annotations

from dataclasses import dataclass

from infra.secrets.envelope import RootKey
from infra.secrets.key_table import KeyTable, WrappedKey
from infra.secrets.roots import FileRoot, RootSource
from infra.settings import MIN_SECRET_LENGTH, SettingsError


@dataclass(frozen=True)
class RotationOutcome:
    rewrapped: int
    already_new: int
    old_fingerprint: str
    new_fingerprint: str
    root_file_replaced: bool


def rotate_root(table: KeyTable, roots: RootSource, new_secret: str = "") -> RotationOutcome:
    before = roots.keyring()
    if isinstance(roots, FileRoot):
        if new_secret:
            raise SettingsError(
                "AGENTRY_NEW_ROOT_SECRET is for an operator-given root (AGENTRY_ROOT_SECRET); the embedded "
                "root is generated: unset it"
            )
        new = RootKey.from_secret(roots.begin_rotation())
    else:
        if not new_secret:
            raise SettingsError(
                "AGENTRY_NEW_ROOT_SECRET is required: the root to re-wrap every data key under (at least "
                f"{MIN_SECRET_LENGTH} characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if len(new_secret) < MIN_SECRET_LENGTH:
            raise SettingsError(f"AGENTRY_NEW_ROOT_SECRET must be at least {MIN_SECRET_LENGTH} characters long")
        new = RootKey.from_secret(new_secret)
        if new.fingerprint == before.primary.fingerprint:
            raise SettingsError("AGENTRY_NEW_ROOT_SECRET is the current root secret; give a new one")
    old = [root for root in (before.primary, *before.others) if root.fingerprint != new.fingerprint]

    def rewrap(row: WrappedKey) -> WrappedKey | None:
        if row.root_fingerprint == new.fingerprint:
            return None
        root = next((candidate for candidate in old if candidate.fingerprint == row.root_fingerprint), None)
        if root is None:
            # Raised inside the transaction: nothing is re-wrapped.
            raise SettingsError(
                f"{row.owner!r}'s data key is wrapped by a root key that is neither the current one nor the new "
                f"one (fingerprint {row.root_fingerprint}): is AGENTRY_ROOT_SECRET right? Nothing was changed"
            )
        data_key = root.unwrap(row.owner, row.key_id, row.wrapped)
        return WrappedKey(row.owner, row.key_id, new.wrap(row.owner, row.key_id, data_key), new.fingerprint)

    rewrapped, already = table.rewrap_all(rewrap)
    if isinstance(roots, FileRoot):
        roots.finish_rotation()
    return RotationOutcome(
        rewrapped=rewrapped,
        already_new=already,
        old_fingerprint=next((root.fingerprint for root in old), before.primary.fingerprint),
        new_fingerprint=new.fingerprint,
        root_file_replaced=isinstance(roots, FileRoot),
    )
