"""Request and response bodies of the webhook endpoints (``client.beta.organization.webhooks``)
and of Agentry's delivery log beside them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from application.webhook_delivery import DELIVERY_STATUSES
from application.webhook_events import KNOWN_KINDS
from domain.webhooks import MAX_URL_LENGTH, STATES
from interfaces.http.responses import Described
from interfaces.http.schemas import Strict

# Every type the SDK defines is accepted; Agentry sends those in ``webhook_events.KINDS``.
KIND_NAMES = tuple(sorted(KNOWN_KINDS))
EventKind = Literal[KIND_NAMES]  # type: ignore[valid-type]
Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH, description="an http:// or https:// URL")]
Name = Annotated[str, Field(max_length=256)]
Description = Annotated[str, Field(max_length=2048)]
State = Literal[STATES]  # type: ignore[valid-type]
DeliveryStatus = Literal[DELIVERY_STATUSES]  # type: ignore[valid-type]

# -- requests ------------------------------------------------------------------------------


class WebhookEndpointCreate(Strict):
    enabled_events: list[EventKind] = Field(min_length=1, max_length=100)
    url: Url
    description: Description | None = None
    name: Name | None = None


class WebhookEndpointUpdate(Strict):
    """Only the fields sent change (null is the same as absent)."""

    description: Description | None = None
    enabled_events: list[EventKind] | None = Field(
        default=None, max_length=100, description="replaces the whole set; an empty list leaves it unchanged"
    )
    name: Name | None = None
    state: State | None = Field(default=None, description="`disabled` stops deliveries; `enabled` resumes them")
    url: Url | None = None


# -- responses -----------------------------------------------------------------------------


class WebhookEndpoint(Described):
    id: str
    url: str
    name: str
    description: str
    enabled_events: list[str]
    state: State
    disabled_reason: str = Field(description="always empty: Agentry never disables an endpoint by itself")
    created_at: datetime
    updated_at: datetime


class NewWebhookEndpoint(WebhookEndpoint):
    signing_secret: str = Field(description="`whsec_…`, shown once: deliveries are signed with it")


class WebhookEndpointPage(Described):
    data: list[WebhookEndpoint]
    has_more: bool
    first_id: str | None
    last_id: str | None


class WebhookEndpointDeleted(Described):
    id: str
    type: Literal["webhook_endpoint_deleted"]


class WebhookSigningSecret(Described):
    signing_secret: str = Field(description="the new `whsec_…` secret, shown once; the old one stops at once")


class WebhookEventData(Described):
    type: str = Field(description="the event type, e.g. `session.status_idled`")
    id: str = Field(description="the id of the object the event is about")
    organization_id: str
    workspace_id: str


class WebhookEvent(Described):
    """What a receiver gets: the SDK's ``BetaWebhookEvent``."""

    id: str = Field(description="the same on every delivery and retry: deduplicate by it")
    type: Literal["event"]
    created_at: datetime
    data: WebhookEventData


class WebhookDelivery(Described):
    id: str
    type: Literal["webhook_delivery"]
    webhook_endpoint_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="while pending: when the next attempt is due")
    delivered_at: datetime | None
    response_status_code: int | None = Field(description="the endpoint's status at the last attempt, if it answered")
    error: str | None
    event: WebhookEvent


class WebhookDeliveryPage(Described):
    data: list[WebhookDelivery]
    has_more: bool
    first_id: str | None
    last_id: str | None


def given(body: Strict) -> dict[str, Any]:
    """The fields sent, without nulls (an update treats null as absent)."""
    return {key: value for key, value in body.given().items() if value is not None}
