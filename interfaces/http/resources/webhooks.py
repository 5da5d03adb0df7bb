"""/v1/organizations/webhooks as ``client.beta.organization.webhooks`` calls it, and the delivery
log beside each endpoint (Agentry's: ``…/{id}/deliveries``, ``…/deliveries/{delivery_id}`` and
``…/redeliver``). Lists page as the SDK's ``SyncPage``: ``limit`` (0 = 20, at most 100),
``after_id``, ``before_id``, ``order`` (default ``desc``, newest first).

The SDK also sends ``anthropic-beta: webhooks-2026-10-07``; Agentry serves these routes with
or without it."""

from __future__ import annotations

import falcon
import falcon.asgi

from application.webhook_delivery import DELIVERY_STATUSES, ListWindow
from application.webhooks import WebhookService
from interfaces.http.common import ReadYourWrites, choice_param, int_param, optional_choice_param, parse, principal, run
from interfaces.http.webhook_schemas import WebhookEndpointCreate, WebhookEndpointUpdate, given
from projections.webhooks import WebhookReadModels

DEFAULT_PAGE = 20
MOST_PER_PAGE = 100


def window(req: falcon.asgi.Request) -> ListWindow:
    return ListWindow(
        limit=int_param(req, "limit", 0, 0, MOST_PER_PAGE) or DEFAULT_PAGE,
        after_id=req.get_param("after_id") or None,
        before_id=req.get_param("before_id") or None,
        descending=choice_param(req, "order", ("asc", "desc"), "desc") == "desc",
    )


class WebhooksResource:
    """Routes: ``/v1/organizations/webhooks`` and, by suffix, ``/{webhook_endpoint_id}``
    (item), ``/regenerate_signing_secret``, ``/deliveries``."""

    def __init__(self, webhooks: WebhookService, lists: WebhookReadModels, written: ReadYourWrites) -> None:
        self._webhooks = webhooks
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, WebhookEndpointCreate)
        await self._written.answer(resp, await run(self._webhooks.create, principal(req), given(body)))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        organization = self._webhooks.organization(principal(req))
        resp.media = await run(self._lists.endpoints, organization.tenant_id, window(req))

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, webhook_endpoint_id: str) -> None:
        resp.media = await run(self._webhooks.retrieve, principal(req), webhook_endpoint_id)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, webhook_endpoint_id: str) -> None:
        body = await parse(req, WebhookEndpointUpdate, optional=True)
        await self._written.answer(resp, await run(self._webhooks.update, principal(req), webhook_endpoint_id, given(body)))

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, webhook_endpoint_id: str) -> None:
        await self._written.answer(resp, await run(self._webhooks.delete, principal(req), webhook_endpoint_id))

    async def on_post_regenerate_signing_secret(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, webhook_endpoint_id: str
    ) -> None:
        await self._written.answer(resp, await run(self._webhooks.regenerate_secret, principal(req), webhook_endpoint_id))

    async def on_get_deliveries(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, webhook_endpoint_id: str) -> None:
        status = optional_choice_param(req, "status", DELIVERY_STATUSES)
        resp.media = await run(self._webhooks.deliveries, principal(req), webhook_endpoint_id, window(req), status)


class WebhookDeliveriesResource:
    """Routes: ``/v1/organizations/webhooks/{webhook_endpoint_id}/deliveries/{delivery_id}``
    and, by suffix, ``/redeliver``."""

    def __init__(self, webhooks: WebhookService) -> None:
        self._webhooks = webhooks

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, webhook_endpoint_id: str, delivery_id: str
    ) -> None:
        resp.media = await run(self._webhooks.delivery, principal(req), webhook_endpoint_id, delivery_id)

    async def on_post_redeliver(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, webhook_endpoint_id: str, delivery_id: str
    ) -> None:
        resp.media = await run(self._webhooks.redeliver, principal(req), webhook_endpoint_id, delivery_id)


def add_webhook_routes(
    app: falcon.asgi.App, webhooks: WebhookService, lists: WebhookReadModels, written: ReadYourWrites
) -> None:
    endpoints = WebhooksResource(webhooks, lists, written)
    item = "/v1/organizations/webhooks/{webhook_endpoint_id}"
    app.add_route("/v1/organizations/webhooks", endpoints)
    app.add_route(item, endpoints, suffix="item")
    app.add_route(f"{item}/regenerate_signing_secret", endpoints, suffix="regenerate_signing_secret")
    app.add_route(f"{item}/deliveries", endpoints, suffix="deliveries")
    deliveries = WebhookDeliveriesResource(webhooks)
    app.add_route(f"{item}/deliveries/{{delivery_id}}", deliveries)
    app.add_route(f"{item}/deliveries/{{delivery_id}}/redeliver", deliveries, suffix="redeliver")
