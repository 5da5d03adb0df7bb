"""Use cases of the organization's webhook endpoints (``client.beta.organization.webhooks``:
create, retrieve, update, list, delete, regenerate the signing secret) and of their delivery
log (list, retrieve, redeliver).

Who: organization admins, for every verb. Endpoints belong to the organization (the SDK's
organization webhook endpoints), not to one workspace, and they receive the events of every
workspace of the organization; anyone else gets a 403 whichever workspace they act in.

Secrets: the signing secret (``whsec_`` + base64 of 32 random bytes) is answered once, by
create and by regenerate, and is otherwise only ever sealed: under its own data key per
generation (owner ``<endpoint id>.<generation>``), so regenerating shreds the previous
generation's key and deleting the endpoint shreds the current one — every stored copy of an
old secret's ciphertext (events, Kafka, backups) is then unreadable. The dispatcher opens the
current one when it signs (``target``)."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from application.commands import Commands, Kind, Written, load_as
from application.errors import Forbidden, Invalid, NotFound
from application.ids import new_id
from application.people import ORGANIZATION_ID
from application.ports import EventStore, SecretCipher, SecretUnavailable
from application.tenancy import Principal
from application.views import iso
from application.webhook_delivery import SECRET_PREFIX, DeliveryLog, ListWindow, Target
from application.webhook_events import unknown_kinds
from domain.ids import looks_like, stream_id
from domain.webhooks import WebhookEndpoint, check_url

log = logging.getLogger("agentry.webhooks")

ENDPOINT_PREFIX = "whep"
DELIVERY_PREFIX = "whdlv"
SECRET_BYTES = 32
ENDPOINTS: Kind[WebhookEndpoint] = Kind(WebhookEndpoint, ENDPOINT_PREFIX, "webhook endpoint", gone=lambda endpoint: endpoint.deleted)
View = dict[str, Any]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_owner(endpoint_id: str, generation: int) -> str:
    """Whose data key seals a generation of the endpoint's secret."""
    return f"{endpoint_id}.{generation}"


def endpoint_view(
    endpoint_id: str,
    url: str,
    name: str,
    description: str,
    enabled_events: list[str],
    state: str,
    disabled_reason: str,
    created_at: datetime,
    updated_at: datetime,
) -> View:
    """``BetaOrganizationWebhookEndpoint``: the endpoint without its secret."""
    return {
        "id": endpoint_id,
        "url": url,
        "name": name,
        "description": description,
        "enabled_events": list(enabled_events),
        "state": state,
        "disabled_reason": disabled_reason,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
    }


def render(endpoint: WebhookEndpoint) -> View:
    return endpoint_view(
        endpoint.endpoint_id, endpoint.url, endpoint.name, endpoint.description, endpoint.enabled_events,
        endpoint.state, endpoint.disabled_reason, endpoint.created_on, endpoint.modified_on,
    )  # fmt: skip


def _deleted(endpoint: WebhookEndpoint) -> View:
    return {"id": endpoint.endpoint_id, "type": "webhook_endpoint_deleted"}


def _kinds(kinds: list[str]) -> list[str]:
    unknown = unknown_kinds(kinds)
    if unknown:
        raise Invalid(f"enabled_events: unknown event type {unknown[0][:64]!r}")
    return list(dict.fromkeys(kinds))


class WebhookService:
    def __init__(
        self,
        store: EventStore,
        cipher: SecretCipher,
        deliveries: DeliveryLog,
        on_due: Callable[[], None] = lambda: None,
        organization_id: str = ORGANIZATION_ID,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._deliveries = deliveries
        self._on_due = on_due
        self._organization_id = organization_id
        self._commands = Commands(store, ENDPOINTS, render)

    def organization(self, who: Principal) -> Principal:
        """The caller acting for the organization: only an organization admin may."""
        if not who.organization_admin:
            raise Forbidden("only an organization admin may manage webhook endpoints")
        return replace(who, tenant_id=self._organization_id)

    def organization_of(self, workspace_id: str) -> str:
        """The organization a workspace belongs to (Agentry serves one: every workspace is its)."""
        return self._organization_id

    # -- endpoints ---------------------------------------------------------------------------

    def create(self, who: Principal, fields: dict[str, Any]) -> Written:
        organization = self.organization(who)
        kinds = _kinds(fields["enabled_events"])
        url = check_url(fields["url"])
        endpoint_id = new_id(ENDPOINT_PREFIX)
        secret = new_secret()
        owner = secret_owner(endpoint_id, 1)
        sealed = self._cipher.seal(owner, secret)
        try:
            endpoint = WebhookEndpoint(
                endpoint_id=endpoint_id, tenant_id=organization.tenant_id, url=url, name=fields.get("name") or "",
                description=fields.get("description") or "", enabled_events=kinds, ciphertext=sealed,
            )  # fmt: skip
            written = self._commands.create(endpoint)
        except Exception:
            self._cipher.shred(owner)
            raise
        return Written({**written.view, "signing_secret": secret}, written.position)

    def retrieve(self, who: Principal, endpoint_id: str) -> View:
        return self._commands.view(self.organization(who), endpoint_id)

    def update(self, who: Principal, endpoint_id: str, changes: dict[str, Any]) -> Written:
        organization = self.organization(who)
        if changes.get("enabled_events"):
            changes = {**changes, "enabled_events": _kinds(changes["enabled_events"])}
        return self._commands.change(organization, endpoint_id, lambda endpoint: endpoint.update(changes))

    def delete(self, who: Principal, endpoint_id: str) -> Written:
        """Records the deletion, then shreds the secret's data key (its deliveries go with
        its subscription, at the dispatcher)."""
        generation: list[int] = []

        def delete(endpoint: WebhookEndpoint) -> None:
            generation[:] = [endpoint.secret_generation]
            endpoint.delete()

        written = self._commands.change(self.organization(who), endpoint_id, delete, render=_deleted)
        for number in generation:
            self._cipher.shred(secret_owner(endpoint_id, number))
        return written

    def regenerate_secret(self, who: Principal, endpoint_id: str) -> Written:
        """A new secret, sealed under the next generation's data key; the previous one's key
        is shredded once the change is recorded."""
        organization = self.organization(who)
        secret = new_secret()
        generation: list[int] = []

        def regenerate(endpoint: WebhookEndpoint) -> None:
            number = endpoint.secret_generation + 1
            endpoint.regenerate_secret(self._cipher.seal(secret_owner(endpoint_id, number), secret))
            generation[:] = [number]

        written = self._commands.change(organization, endpoint_id, regenerate, render=lambda endpoint: {"signing_secret": secret})
        for number in generation:
            self._cipher.shred(secret_owner(endpoint_id, number - 1))
        return written

    # -- deliveries ----------------------------------------------------------------------------

    def deliveries(self, who: Principal, endpoint_id: str, window: ListWindow, status: str | None) -> View:
        self._commands.load(self.organization(who), endpoint_id)
        return self._deliveries.page(endpoint_id, window, status)

    def delivery(self, who: Principal, endpoint_id: str, delivery_id: str) -> View:
        self._commands.load(self.organization(who), endpoint_id)
        found = self._deliveries.get(endpoint_id, delivery_id) if looks_like(DELIVERY_PREFIX, delivery_id) else None
        if found is None:
            raise NotFound(f"webhook delivery {delivery_id[:64]!r} not found")
        return found

    def redeliver(self, who: Principal, endpoint_id: str, delivery_id: str) -> View:
        """Sends the delivery again (same event id), after anything of its resource that is
        still pending before it, with a full round of retries (once the endpoint is enabled,
        if it is not)."""
        self._commands.load(self.organization(who), endpoint_id)
        now = iso(datetime.now(UTC)) or ""
        found = self._deliveries.redeliver(endpoint_id, delivery_id, now) if looks_like(DELIVERY_PREFIX, delivery_id) else None
        if found is None:
            raise NotFound(f"webhook delivery {delivery_id[:64]!r} not found")
        self._on_due()
        return found

    # -- for the dispatcher ----------------------------------------------------------------

    def target(self, endpoint_id: str) -> Target | None:
        """The endpoint's URL, current secret (opened now) and state; None once it is gone."""
        endpoint = load_as(self._store, stream_id(endpoint_id), WebhookEndpoint)
        if endpoint is None or endpoint.deleted:
            return None
        try:
            secret = self._cipher.open(secret_owner(endpoint_id, endpoint.secret_generation), endpoint.ciphertext)
        except SecretUnavailable as unavailable:
            log.warning("webhook endpoint %s: its signing secret cannot be opened (%s)", endpoint_id, unavailable)
            return None
        return Target(endpoint.url, secret, endpoint.enabled)
