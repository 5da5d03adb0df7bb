"""Vaults: a tenant's named set of credentials that sessions reach their users' tools with.

The Vault is the one aggregate, and its credentials live inside it. Every rule that spans
credentials — one active credential per ``mcp_server_url``, at most 20 per vault, an archive
that reaches all of them — is then a check on one stream, and the store's optimistic
concurrency settles two racing writers: the loser re-runs on fresh state and sees the
winner's credential. A vault holds at most 20 small credentials, so its stream stays small.

Secrets never reach this module in clear: the application seals each one under the
credential's own data key first (so deleting one credential shreds only its key), and the
events carry the sealed values (``sealed``, secret name → ciphertext) beside the public part
of ``auth``. Which fields are secret, and which are the credential's identity, is said here
once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Archived, DomainError, InvalidState, Taken
from domain.ids import stream_id

MAX_CREDENTIALS = 20
KINDS = ("static_bearer", "mcp_oauth", "environment_variable")
# The write-only fields of each kind's ``auth`` (``refresh.*`` and its client auth nested).
SECRET_FIELDS = frozenset({"token", "access_token", "refresh_token", "client_secret", "secret_value"})
# Fields that name what a credential is for: fixed at create (archive and replace to change).
IDENTITY_FIELDS = ("mcp_server_url", "secret_name")
REFRESH_IDENTITY_FIELDS = ("token_endpoint", "client_id", "resource")


class UrlTaken(Taken):
    """Another active credential of the vault already serves this MCP server URL."""


class TooManyCredentials(DomainError):
    """The vault holds its maximum number of credentials."""


class ImmutableField(DomainError):
    """An update tried to change a credential's identity (or its kind)."""


class UnknownCredential(DomainError):
    """The vault holds no credential with that id (the application answers 404)."""


@dataclass
class Credential:
    """One credential as the vault holds it: ``auth`` without secrets, ``sealed`` with them."""

    credential_id: str
    display_name: str | None
    metadata: dict[str, str]
    auth: dict[str, Any]
    sealed: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None

    @property
    def kind(self) -> str:
        return str(self.auth["type"])

    @property
    def mcp_server_url(self) -> str | None:
        url = self.auth.get("mcp_server_url")
        return str(url) if url is not None else None


def check_identity_unchanged(current: dict[str, Any], changes: dict[str, Any]) -> None:
    """Refuses an update whose ``auth`` names another type or another identity."""
    if changes.get("type", current["type"]) != current["type"]:
        raise ImmutableField(
            f"auth.type must stay {current['type']!r}: a credential's type cannot change "
            "(archive it and create a new one)"
        )
    for name in IDENTITY_FIELDS:
        if name in changes and changes[name] != current.get(name):
            raise ImmutableField(f"auth.{name} is immutable: archive this credential and create a new one")
    refresh_changes = changes.get("refresh")
    if isinstance(refresh_changes, dict):
        refresh = current.get("refresh") or {}
        for name in REFRESH_IDENTITY_FIELDS:
            if name in refresh_changes and refresh_changes[name] != refresh.get(name):
                raise ImmutableField(f"auth.refresh.{name} is immutable: archive this credential and create a new one")


class Vault(Aggregate):
    @staticmethod
    def create_id(vault_id: str, **_: Any) -> UUID:
        return stream_id(vault_id)

    class Created(Aggregate.Created):
        vault_id: str
        tenant_id: str
        display_name: str
        metadata: dict[str, str]

    class Updated(Aggregate.Event):
        """The vault's name and metadata, both as they now are."""

        display_name: str
        metadata: dict[str, str]

    class Archived(Aggregate.Event):
        """The vault and every credential in it not yet archived are archived."""

    class Deleted(Aggregate.Event):
        """The vault is gone; its credentials' data keys are shredded right after."""

    class CredentialAdded(Aggregate.Event):
        credential_id: str
        display_name: str | None
        metadata: dict[str, str]
        auth: dict[str, Any]
        sealed: dict[str, str]

    class CredentialUpdated(Aggregate.Event):
        """The credential as it now is: public ``auth`` and every sealed secret it keeps."""

        credential_id: str
        display_name: str | None
        metadata: dict[str, str]
        auth: dict[str, Any]
        sealed: dict[str, str]

    class CredentialArchived(Aggregate.Event):
        credential_id: str

    class CredentialDeleted(Aggregate.Event):
        """The credential is gone; its data key is shredded right after."""

        credential_id: str

    @event(Created)
    def __init__(self, vault_id: str, tenant_id: str, display_name: str, metadata: dict[str, str]) -> None:
        self.vault_id = vault_id
        self.tenant_id = tenant_id
        self.display_name = display_name
        self.metadata = dict(metadata)
        # The vault's own last change: a credential's changes are the credential's.
        self.updated_at: datetime = self.created_on
        self.archived_at: datetime | None = None
        self.deleted = False
        self.credentials: dict[str, Credential] = {}
        # Every credential id the vault ever held: a delete shreds all their keys.
        self.credential_ids_ever: list[str] = []

    # -- the vault -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.archived_at is not None:
            raise Archived(f"vault {self.vault_id} is archived")

    def update(self, display_name: str, metadata_patch: dict[str, str | None] | None) -> bool:
        self._check_open()
        name = display_name
        metadata = patched(self.metadata, metadata_patch)
        if (name, metadata) == (self.display_name, self.metadata):
            return False
        self._record_update(display_name=name, metadata=metadata)
        return True

    @event(Updated)
    def _record_update(self, display_name: str, metadata: dict[str, str]) -> None:
        self.display_name = display_name
        self.metadata = metadata
        self.updated_at = self.modified_on

    def archive(self) -> bool:
        if self.archived_at is not None:
            return False
        self._record_archive()
        return True

    @event(Archived)
    def _record_archive(self) -> None:
        self.archived_at = self.modified_on
        self.updated_at = self.modified_on
        for credential in self.credentials.values():
            if credential.archived_at is None:
                credential.archived_at = self.modified_on
                credential.updated_at = self.modified_on

    def delete(self) -> bool:
        if self.deleted:
            return False
        self._record_deletion()
        return True

    @event(Deleted)
    def _record_deletion(self) -> None:
        self.deleted = True

    # -- its credentials -------------------------------------------------------------

    def credential(self, credential_id: str) -> Credential:
        found = self.credentials.get(credential_id)
        if found is None:
            raise UnknownCredential(f"credential {credential_id!r} not found")
        return found

    def add_credential(
        self,
        credential_id: str,
        display_name: str | None,
        metadata: dict[str, str],
        auth: dict[str, Any],
        sealed: dict[str, str],
    ) -> None:
        self._check_open()
        if auth.get("type") not in KINDS:
            raise InvalidState(f"auth.type must be one of {', '.join(KINDS)}")
        _check_no_clear_secret(auth)
        _check_injection(auth)
        if len(self.credentials) >= MAX_CREDENTIALS:
            raise TooManyCredentials(
                f"vault {self.vault_id} already holds {MAX_CREDENTIALS} credentials, the most a vault "
                "may hold (archived ones count): delete one first"
            )
        self._check_url_free(auth.get("mcp_server_url"), credential_id)
        self._record_credential(
            credential_id=credential_id, display_name=display_name, metadata=dict(metadata), auth=auth, sealed=sealed
        )

    def _check_url_free(self, url: str | None, credential_id: str) -> None:
        if url is None:
            return
        for other in self.credentials.values():
            if other.credential_id != credential_id and other.archived_at is None and other.mcp_server_url == url:
                raise UrlTaken(
                    f"vault {self.vault_id} already has an active credential for {url} "
                    f"({other.credential_id}): archive it first, or update it"
                )

    @event(CredentialAdded)
    def _record_credential(
        self, credential_id: str, display_name: str | None, metadata: dict[str, str], auth: dict[str, Any], sealed: dict[str, str]
    ) -> None:
        self.credentials[credential_id] = Credential(
            credential_id, display_name, metadata, auth, sealed, self.modified_on, self.modified_on
        )
        self.credential_ids_ever.append(credential_id)

    def update_credential(
        self,
        credential_id: str,
        display_name: str | None,
        metadata_patch: dict[str, str | None] | None,
        auth: dict[str, Any],
        sealed: dict[str, str],
    ) -> bool:
        """``display_name``, ``auth`` and ``sealed`` are the credential's whole new name, public
        auth and secrets (the application merged the request into them); its type and identity
        must be unchanged."""
        self._check_open()
        credential = self.credential(credential_id)
        if credential.archived_at is not None:
            raise Archived(f"credential {credential_id} is archived")
        check_identity_unchanged(credential.auth, auth)
        if auth.get("refresh") is not None and credential.auth.get("refresh") is None:
            raise ImmutableField("auth.refresh can only be updated or cleared, not added: create a new credential")
        _check_no_clear_secret(auth)
        _check_injection(auth)
        metadata = patched(credential.metadata, metadata_patch)
        current = (credential.display_name, credential.metadata, credential.auth, credential.sealed)
        if (display_name, metadata, auth, sealed) == current:
            return False
        self._record_credential_update(
            credential_id=credential_id, display_name=display_name, metadata=metadata, auth=auth, sealed=sealed
        )
        return True

    @event(CredentialUpdated)
    def _record_credential_update(
        self, credential_id: str, display_name: str | None, metadata: dict[str, str], auth: dict[str, Any], sealed: dict[str, str]
    ) -> None:
        credential = self.credentials[credential_id]
        credential.display_name = display_name
        credential.metadata = metadata
        credential.auth = auth
        credential.sealed = sealed
        credential.updated_at = self.modified_on

    def archive_credential(self, credential_id: str) -> bool:
        credential = self.credential(credential_id)
        if credential.archived_at is not None:
            return False
        self._record_credential_archive(credential_id=credential_id)
        return True

    @event(CredentialArchived)
    def _record_credential_archive(self, credential_id: str) -> None:
        credential = self.credentials[credential_id]
        credential.archived_at = self.modified_on
        credential.updated_at = self.modified_on

    def delete_credential(self, credential_id: str) -> bool:
        self.credential(credential_id)
        self._record_credential_deletion(credential_id=credential_id)
        return True

    @event(CredentialDeleted)
    def _record_credential_deletion(self, credential_id: str) -> None:
        del self.credentials[credential_id]


def patched(metadata: dict[str, str], patch: dict[str, str | None] | None) -> dict[str, str]:
    """A metadata patch: a string upserts its key, null deletes it, absent keys stay."""
    result = dict(metadata)
    for key, value in (patch or {}).items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    if len(result) > 16:
        raise InvalidState("metadata may hold at most 16 pairs")
    return result


def _check_no_clear_secret(auth: dict[str, Any]) -> None:
    """The domain's own guard that a secret was sealed before it got here: ``auth`` is the
    public part, and it is recorded as is."""
    pending: list[Any] = [auth]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            leaked = SECRET_FIELDS & value.keys()
            if leaked:
                raise InvalidState(f"{sorted(leaked)[0]} must be sealed before it is recorded")
            pending.extend(value.values())


def _check_injection(auth: dict[str, Any]) -> None:
    location = auth.get("injection_location")
    if auth.get("type") == "environment_variable" and not (location and (location.get("header") or location.get("body"))):
        raise InvalidState("auth.injection_location must keep header or body true: the secret must go somewhere")
