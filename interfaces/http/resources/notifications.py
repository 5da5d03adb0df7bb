"""/v1/notifications (list, unread count, mark read, read all, live stream) and
/v1/dashboard/stats."""

from __future__ import annotations

import re
from functools import partial

import falcon
import falcon.asgi

from application.errors import NotFound
from application.notifications import NotificationService, audience_of
from interfaces.http.common import ReadYourWrites, bool_param, int_param, list_query, parse, principal, run
from interfaces.http.live import receive_of
from interfaces.http.notification_feed import NotificationFeed
from interfaces.http.notification_schemas import ReadAll
from projections.dashboard import DashboardReadModels
from projections.notifications import NotificationReadModels

LAST_EVENT_ID = re.compile(r"^[0-9]{1,18}$")
MAX_STREAM_SECONDS = 86_400


class NotificationsResource:
    """Routes: ``/v1/notifications`` and, by suffix, ``/{notification_id}`` (item), ``/read``,
    ``/unread_count``, ``/read_all``, ``/stream``."""

    def __init__(
        self, notifications: NotificationService, lists: NotificationReadModels, feed: NotificationFeed, written: ReadYourWrites
    ) -> None:
        self._notifications = notifications
        self._lists = lists
        self._feed = feed
        self._written = written

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        read = bool_param(req, "read") if req.get_param("read") is not None else None
        page = await run(self._lists.notifications_of, audience_of(principal(req)), list_query(req), read)
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, notification_id: str) -> None:
        found = await run(self._lists.find, audience_of(principal(req)), notification_id[:64])
        if found is None:
            raise NotFound(f"notification {notification_id[:64]!r} not found")
        resp.media = found

    async def on_post_read(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, notification_id: str) -> None:
        await self._written.answer(resp, await run(self._notifications.mark_read, principal(req), notification_id))

    on_patch_read = on_post_read  # Mission Control marks read with PATCH

    async def on_get_unread_count(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"unread_count": await run(self._lists.unread_count, audience_of(principal(req)))}

    async def on_post_read_all(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, ReadAll, optional=True)
        who = principal(req)
        await self._written.answer(resp, await run(self._notifications.mark_all_read, who, body.up_to))
        resp.media = {**resp.media, "unread_count": await run(self._lists.unread_count, audience_of(who))}

    async def on_get_stream(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        audience = audience_of(principal(req))
        after = self._start_after(req)
        max_seconds = int_param(req, "max_seconds", None, 0, MAX_STREAM_SECONDS)
        if after is None:
            after = await run(self._lists.newest_position, audience)  # live from now on
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        read = partial(self._lists.after, audience)
        resp.stream = self._feed.stream(audience.tenant_id, after, read, receive_of(req), max_seconds)

    @staticmethod
    def _start_after(req: falcon.asgi.Request) -> int | None:
        last_event_id = req.get_header("Last-Event-ID")
        if last_event_id is not None:
            if not LAST_EVENT_ID.match(last_event_id):
                raise falcon.HTTPBadRequest(description="Last-Event-ID must be a notification position (a whole number)")
            return int(last_event_id)
        return int_param(req, "after", None, 0, 2**62)


class DashboardResource:
    """Route: ``/v1/dashboard/stats`` (suffix ``stats``)."""

    def __init__(self, dashboard: DashboardReadModels) -> None:
        self._dashboard = dashboard

    async def on_get_stats(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = await run(self._dashboard.stats, principal(req).tenant_id)
