"""The organization's webhook endpoints as a list (``GET /v1/organizations/webhooks``), and the
paging the SDK's organization lists share (``after_id``, ``before_id``, ``order``).

Rows hold the endpoint as the API shows it: never the signing secret, sealed or not."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from application.views import iso
from application.webhook_delivery import ListWindow
from application.webhooks import endpoint_view
from domain.webhooks import ENABLED, WebhookEndpoint
from projections.runner import ReadModelProjection
from projections.tables import resource_table

endpoints = resource_table("webhook_endpoints")


class WebhookEndpointsProjection(ReadModelProjection):
    name = "webhook_endpoints"
    tables = (endpoints,)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        if isinstance(event, WebhookEndpoint.Created):
            doc = endpoint_view(
                event.endpoint_id, event.url, event.name, event.description, event.enabled_events, ENABLED, "",
                event.timestamp, event.timestamp,
            )  # fmt: skip
            conn.execute(sa.delete(endpoints).where(endpoints.c.id == event.endpoint_id))
            conn.execute(
                sa.insert(endpoints).values(
                    id=event.endpoint_id, stream_id=str(event.originator_id), tenant_id=event.tenant_id,
                    created_at=doc["created_at"], archived=False, doc=doc,
                )  # fmt: skip
            )
        elif isinstance(event, WebhookEndpoint.Updated):
            fields = {
                "url": event.url, "name": event.name, "description": event.description,
                "enabled_events": list(event.enabled_events), "state": event.state, "disabled_reason": "",
            }  # fmt: skip
            self._patch(conn, event, fields)
        elif isinstance(event, WebhookEndpoint.SigningSecretRegenerated):
            self._patch(conn, event, {})
        elif isinstance(event, WebhookEndpoint.Deleted):
            conn.execute(sa.delete(endpoints).where(endpoints.c.stream_id == str(event.originator_id)))

    @staticmethod
    def _patch(conn: sa.Connection, event: Any, fields: dict[str, Any]) -> None:
        where = endpoints.c.stream_id == str(event.originator_id)
        row = conn.execute(sa.select(endpoints.c.doc).where(where)).first()
        if row is not None:
            conn.execute(sa.update(endpoints).where(where).values(doc={**row.doc, **fields, "updated_at": iso(event.timestamp)}))


def window_page(
    conn: sa.Connection,
    table: Any,
    key: Sequence[Any],
    conditions: list[Any],
    window: ListWindow,
    render: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """One page as the SDK's ``SyncPage`` reads it (``data``, ``has_more``, ``first_id``,
    ``last_id``), in list order (``key`` descending unless ``window.descending`` is False).
    ``after_id``: the items after that one; ``before_id``: the first ``limit`` items that
    come before it (as the SDK documents). An anchor that is not in the list gives an empty
    page."""
    select = sa.select(table).where(*conditions)
    anchor_id = window.after_id or window.before_id
    ordered = sa.tuple_(*key)
    if anchor_id is not None:
        anchor = conn.execute(sa.select(*key).where(*conditions, table.c.id == anchor_id)).first()
        if anchor is None:
            return {"data": [], "has_more": False, "first_id": None, "last_id": None}
        beyond = window.after_id is not None
        later_in_list = ordered < tuple(anchor) if window.descending else ordered > tuple(anchor)
        earlier_in_list = ordered > tuple(anchor) if window.descending else ordered < tuple(anchor)
        select = select.where(later_in_list if beyond else earlier_in_list)
    direction = sa.desc if window.descending else sa.asc
    rows = conn.execute(select.order_by(*(direction(column) for column in key)).limit(window.limit + 1)).all()
    data = [render(row) for row in rows[: window.limit]]
    return {
        "data": data,
        "has_more": len(rows) > window.limit,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


class WebhookReadModels:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def endpoints(self, organization_id: str, window: ListWindow) -> dict[str, Any]:
        with self._engine.connect() as conn:
            return window_page(
                conn, endpoints, (endpoints.c.created_at, endpoints.c.id), [endpoints.c.tenant_id == organization_id],
                window, lambda row: dict(row.doc),
            )  # fmt: skip
