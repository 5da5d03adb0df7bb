"""The webhook endpoints in the API description (``api_description.OPERATIONS`` takes them in
one line): ``client.beta.organization.webhooks`` and Agentry's delivery log."""

from __future__ import annotations

from application.webhook_delivery import DELIVERY_STATUSES
from application.webhook_events import KNOWN_KINDS, PRODUCED_KINDS
from interfaces.http import webhook_schemas as hooks
from interfaces.http.api_description import Operation, Param, integer, path_id

ENDPOINT = path_id("webhook_endpoint_id", "whep")
DELIVERY = path_id("delivery_id", "whdlv")
PAGE = (
    Param("limit", "query", integer(0, 100), "page size, up to 100 (0 or absent: 20)"),
    Param("after_id", "query", {"type": "string"}, "the items after this one (a page's `last_id`)"),
    Param("before_id", "query", {"type": "string"}, "the first `limit` items that come before this one"),
    Param("order", "query", {"type": "string", "enum": ["asc", "desc"]}, "by time (default desc, newest first)"),
)
STATUS = Param("status", "query", {"type": "string", "enum": list(DELIVERY_STATUSES)}, "only deliveries in this state")
BODY = (400, 413, 415)
ADMIN = (403,)
TAG = "webhooks"

KINDS_TEXT = ", ".join(f"`{kind}`" for kind in sorted(PRODUCED_KINDS))
SIGNING = (
    "Each delivery is a POST of a `WebhookEvent` (`{id, type: \"event\", created_at, data}`; `data` names the "
    "event type, the object's id, its workspace and organization) signed as Standard Webhooks: headers "
    "`webhook-id` (the event's id, the same on every retry), `webhook-timestamp` (Unix seconds) and "
    "`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `<id>.<timestamp>.<raw body>` under the base64 "
    "bytes after `whsec_`), which the SDK's `client.beta.webhooks.unwrap` verifies. A 2xx answer "
    "acknowledges; anything else (redirects too) or no answer is retried with exponential backoff. "
    "Deliveries are at least once and in order per object."
)

WEBHOOK_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post", "/v1/organizations/webhooks", "createWebhookEndpoint",
        "Create an organization webhook endpoint (organization admins)", TAG, hooks.NewWebhookEndpoint,
        request=hooks.WebhookEndpointCreate, errors=(*BODY, *ADMIN),
        description=(
            "The response carries the `signing_secret` once. `enabled_events` are event types: Agentry sends "
            f"{KINDS_TEXT}; the SDK's other types ({len(KNOWN_KINDS) - len(PRODUCED_KINDS)} more) are accepted "
            "and never sent. `url`: http:// or https:// (other schemes are refused; private addresses are "
            "allowed: endpoints are configured by organization admins). The endpoint receives the events of "
            "every workspace of the organization. " + SIGNING
        ),
    ),
    Operation(
        "get", "/v1/organizations/webhooks", "listWebhookEndpoints", "The organization's webhook endpoints", TAG,
        hooks.WebhookEndpointPage, params=PAGE, errors=(400, *ADMIN),
    ),
    Operation(
        "get", "/v1/organizations/webhooks/{webhook_endpoint_id}", "getWebhookEndpoint",
        "Retrieve a webhook endpoint (no secret)", TAG, hooks.WebhookEndpoint, params=(ENDPOINT,), errors=(*ADMIN, 404),
    ),
    Operation(
        "post", "/v1/organizations/webhooks/{webhook_endpoint_id}", "updateWebhookEndpoint",
        "Update a webhook endpoint: only the fields sent change", TAG, hooks.WebhookEndpoint,
        request=hooks.WebhookEndpointUpdate, request_optional=True, params=(ENDPOINT,),
        errors=(*BODY, *ADMIN, 404, 409),
        description=(
            "`state: disabled` stops deliveries: events that happen while it is disabled are never delivered; "
            "deliveries still pending wait and resume when it is enabled again. A new `enabled_events` applies "
            "to events from then on; a new `url` to the next attempt."
        ),
    ),
    Operation(
        "delete", "/v1/organizations/webhooks/{webhook_endpoint_id}", "deleteWebhookEndpoint",
        "Delete a webhook endpoint; its pending deliveries are dropped and its secret destroyed", TAG,
        hooks.WebhookEndpointDeleted, params=(ENDPOINT,), errors=(*ADMIN, 404, 409),
    ),
    Operation(
        "post", "/v1/organizations/webhooks/{webhook_endpoint_id}/regenerate_signing_secret",
        "regenerateWebhookSigningSecret", "Replace the signing secret (shown once; the old one stops at once)", TAG,
        hooks.WebhookSigningSecret, params=(ENDPOINT,), errors=(*ADMIN, 404, 409),
    ),
    Operation(
        "get", "/v1/organizations/webhooks/{webhook_endpoint_id}/deliveries", "listWebhookDeliveries",
        "An endpoint's delivery log, newest first", TAG, hooks.WebhookDeliveryPage,
        params=(ENDPOINT, *PAGE, STATUS), errors=(400, *ADMIN, 404),
        description=(
            "One entry per event sent (or to be sent) to the endpoint: `pending` (waiting for an attempt or "
            "a retry), `succeeded` or `failed` (every retry used up). " + SIGNING
        ),
    ),
    Operation(
        "get", "/v1/organizations/webhooks/{webhook_endpoint_id}/deliveries/{delivery_id}", "getWebhookDelivery",
        "Retrieve a delivery", TAG, hooks.WebhookDelivery, params=(ENDPOINT, DELIVERY), errors=(*ADMIN, 404),
    ),
    Operation(
        "post", "/v1/organizations/webhooks/{webhook_endpoint_id}/deliveries/{delivery_id}/redeliver",
        "redeliverWebhookDelivery", "Send a delivery again", TAG, hooks.WebhookDelivery,
        params=(ENDPOINT, DELIVERY), errors=(*ADMIN, 404),
        description=(
            "The delivery is pending again with a full round of retries and the same event id; it goes after "
            "anything of its object still pending before it (and, at a disabled endpoint, once it is enabled)."
        ),
    ),
)
