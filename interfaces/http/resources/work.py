"""/v1/environments/{environment_id}/work: the queue the environment's workers poll.

Who may call what follows the SDK's docstrings: a worker (environment key, or a claimed
item's ``sessions_token`` for that item) polls, acknowledges, heartbeats and stops — so may
an operator's API key, running a worker by hand; only an environment key lists (the SDK
says listing rejects an API key); only an API key reads an item and its queue's stats and
updates an item's metadata (the SDK says those reject the environment key and the token)."""

from __future__ import annotations

from typing import Any

import falcon

from application.errors import Forbidden
from application.work_queue import PlatformWorker, WorkQueue
from interfaces.http.common import (
    ReadYourWrites,
    environment_credential,
    int_param,
    limit_param,
    parse,
    principal,
    run,
    worker_credential,
)
from interfaces.http.schemas import WorkStop, WorkUpdate
from projections.queries import ListQuery, ReadModels


def answer_work(resp: falcon.asgi.Response, work: dict[str, Any] | None) -> None:
    """A poll's answer: the claimed item, or a JSON ``null`` (the SDK's poller reads an
    empty body as an item)."""
    if work is None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = b"null"
    else:
        resp.media = work


class CloudWorkResource:
    """``/v1/work/poll``: Agentry's own workers (the sandbox worker key) claim the oldest
    item of any ``cloud`` environment."""

    def __init__(self, queue: WorkQueue) -> None:
        self._queue = queue

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        who = req.context.principal
        if not isinstance(who, PlatformWorker):
            raise Forbidden("this endpoint takes the sandbox worker key (AGENTRY_SANDBOX_WORKER_KEY)")
        block_ms = int_param(req, "block_ms", None, 1, 999)
        reclaim_ms = int_param(req, "reclaim_older_than_ms", None, 0, 86_400_000)
        work = await run(self._queue.poll_cloud, who, req.get_header("Anthropic-Worker-ID"), reclaim_ms, block_ms)
        answer_work(resp, work)


class WorkResource:
    """Routes: ``…/work``, ``…/work/poll``, ``…/work/stats`` and, by suffix, ``…/work/{work_id}``
    (item), ``/ack``, ``/heartbeat``, ``/stop``."""

    def __init__(self, queue: WorkQueue, lists: ReadModels, written: ReadYourWrites) -> None:
        self._queue = queue
        self._lists = lists
        self._written = written

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        who = environment_credential(req)
        await run(self._queue.check_listing, who, environment_id)
        query = ListQuery(limit=limit_param(req), page=req.get_param("page") or None, include_archived=True)
        page = await run(self._lists.work_items, who.tenant_id, environment_id, query)
        data = await run(self._queue.with_heartbeats, page.data)
        resp.media = {"data": data, "next_page": page.next_page}

    async def on_get_poll(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        who = worker_credential(req)
        block_ms = int_param(req, "block_ms", None, 1, 999)
        reclaim_ms = int_param(req, "reclaim_older_than_ms", None, 0, 86_400_000)
        worker_id = req.get_header("Anthropic-Worker-ID")
        work = await run(self._queue.poll, who, environment_id, worker_id, reclaim_ms, block_ms)
        answer_work(resp, work)

    async def on_get_stats(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str) -> None:
        resp.media = await run(self._queue.stats, principal(req), environment_id)

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str, work_id: str) -> None:
        resp.media = await run(self._queue.retrieve, principal(req), environment_id, work_id)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str, work_id: str) -> None:
        body = await parse(req, WorkUpdate)
        written = await run(self._queue.update, principal(req), environment_id, work_id, body.metadata)
        await self._written.answer(resp, written)

    async def on_post_ack(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str, work_id: str) -> None:
        resp.media = await run(self._queue.acknowledge, worker_credential(req), environment_id, work_id)

    async def on_post_heartbeat(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str, work_id: str
    ) -> None:
        expected = req.get_param("expected_last_heartbeat")
        desired = int_param(req, "desired_ttl_seconds", None, 1, 3600)
        resp.media = await run(self._queue.heartbeat, worker_credential(req), environment_id, work_id, expected, desired)

    async def on_post_stop(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, environment_id: str, work_id: str) -> None:
        body = await parse(req, WorkStop, optional=True)
        resp.media = await run(
            self._queue.stop, worker_credential(req), environment_id, work_id, bool(body.force), body.error
        )
