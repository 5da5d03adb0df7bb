"""/v1/memory_stores, its memories and memory versions, as ``client.beta.memory_stores``,
``.memories`` and ``.memory_versions`` call them, and Agentry's ``POST …/{id}/search``.

Writes go through the store's aggregate; reads (retrieves too) come from the read models,
which a write waits for before it answers, so a client reads what it wrote.

The memories routes also take the work token of an item serving a session the store is
attached to (``interfaces.http.worker_access``): its worker syncs the mounted store."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import falcon

from application.errors import Invalid, NotFound
from application.memory import MemoryService
from interfaces.http.common import (
    ReadYourWrites,
    choice_param,
    int_param,
    list_query,
    optional_choice_param,
    parse,
    principal,
    run,
)
from interfaces.http.memory_schemas import (
    MemoryCreate,
    MemorySearch,
    MemoryStoreCreate,
    MemoryStoreUpdate,
    MemoryUpdate,
)
from interfaces.http.worker_access import WorkerAccess
from projections.memory import MemoryListing, MemoryReadModels, VersionFilters

MOST_PER_PAGE = 100
# A page of full views holds at most this many (the SDK documents it).
MOST_FULL_PER_PAGE = 20
VIEWS = ("basic", "full")
OPERATIONS = ("created", "modified", "deleted")
MAX_DEPTH = 20


def _limit(req: falcon.asgi.Request, view: str) -> int:
    limit = int_param(req, "limit", 20, 1, MOST_PER_PAGE) or 20
    if view == "full" and limit > MOST_FULL_PER_PAGE:
        raise falcon.HTTPBadRequest(description=f"limit must be at most {MOST_FULL_PER_PAGE} with view=full")
    return limit


def _found(doc: dict[str, Any] | None, noun: str, object_id: str) -> dict[str, Any]:
    if doc is None:
        raise NotFound(f"{noun} {object_id!r} not found")
    return doc


class MemoryStoresResource:
    """Routes: ``/v1/memory_stores`` and, by suffix, ``/{memory_store_id}`` (item),
    ``/archive``, ``/search``."""

    def __init__(self, memory: MemoryService, reads: MemoryReadModels, written: ReadYourWrites) -> None:
        self._memory = memory
        self._reads = reads
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, MemoryStoreCreate)
        await self._written.answer(resp, await run(self._memory.create_store, principal(req), body.given()))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        query = list_query(req)
        query = replace(query, limit=min(query.limit, MOST_PER_PAGE))
        page = await run(self._reads.memory_stores, principal(req).tenant_id, query)
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str) -> None:
        resp.media = await run(self._memory.retrieve_store, principal(req), memory_store_id)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str) -> None:
        body = await parse(req, MemoryStoreUpdate, optional=True)
        await self._written.answer(resp, await run(self._memory.update_store, principal(req), memory_store_id, body.given()))

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str) -> None:
        await self._written.answer(resp, await run(self._memory.delete_store, principal(req), memory_store_id))

    async def on_post_archive(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str) -> None:
        await self._written.answer(resp, await run(self._memory.archive_store, principal(req), memory_store_id))

    async def on_post_search(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str) -> None:
        body = await parse(req, MemorySearch)
        found = await run(self._memory.search, principal(req), memory_store_id, body.query, body.limit)
        resp.media = {"data": found}


class MemoriesResource:
    """Routes: ``/v1/memory_stores/{memory_store_id}/memories`` and ``/{memory_id}`` (item)."""

    def __init__(self, memory: MemoryService, reads: MemoryReadModels, written: ReadYourWrites, access: WorkerAccess) -> None:
        self._memory = memory
        self._reads = reads
        self._written = written
        self._access = access

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str) -> None:
        view = choice_param(req, "view", VIEWS, "basic")
        body = await parse(req, MemoryCreate)
        caller = await self._access.memory(req, memory_store_id, write=True)
        written = await run(
            self._memory.create_memory, caller.who, memory_store_id, body.path, body.content or "", view, caller.actor
        )
        await self._written.answer(resp, written)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str) -> None:
        who = (await self._access.memory(req, memory_store_id)).who
        view = choice_param(req, "view", VIEWS, "basic")
        prefix = req.get_param("path_prefix") or None
        if prefix is not None and (not prefix.startswith("/") or not prefix.endswith("/")):
            raise Invalid("path_prefix must start and end with /")
        listing = MemoryListing(
            path_prefix=prefix,
            depth=int_param(req, "depth", 0, 0, MAX_DEPTH) or 0,
            view=view,
            limit=_limit(req, view),
            page=req.get_param("page") or None,
        )
        await run(self._memory.check_store, who, memory_store_id)
        page = await run(self._reads.memories, who.tenant_id, memory_store_id, listing)
        resp.media = page.envelope()

    async def on_get_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str, memory_id: str
    ) -> None:
        who = (await self._access.memory(req, memory_store_id)).who
        view = choice_param(req, "view", VIEWS, "full")
        doc = await run(self._reads.memory, who.tenant_id, memory_store_id, memory_id, view)
        resp.media = _found(doc, "memory", memory_id)

    async def on_post_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str, memory_id: str
    ) -> None:
        view = choice_param(req, "view", VIEWS, "basic")
        body = await parse(req, MemoryUpdate, optional=True)
        changes = body.model_dump(exclude_none=True)
        caller = await self._access.memory(req, memory_store_id, write=True)
        written = await run(self._memory.update_memory, caller.who, memory_store_id, memory_id, changes, view, caller.actor)
        await self._written.answer(resp, written)

    async def on_delete_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str, memory_id: str
    ) -> None:
        expected = req.get_param("expected_content_sha256") or None
        if expected is not None and (len(expected) != 64 or any(char not in "0123456789abcdef" for char in expected)):
            raise Invalid("expected_content_sha256 must be 64 lowercase hexadecimal characters")
        caller = await self._access.memory(req, memory_store_id, write=True)
        written = await run(self._memory.delete_memory, caller.who, memory_store_id, memory_id, expected, caller.actor)
        await self._written.answer(resp, written)


class MemoryVersionsResource:
    """Routes: ``/v1/memory_stores/{memory_store_id}/memory_versions`` and, by suffix,
    ``/{memory_version_id}`` (item), ``/redact``."""

    def __init__(self, memory: MemoryService, reads: MemoryReadModels, written: ReadYourWrites) -> None:
        self._memory = memory
        self._reads = reads
        self._written = written

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str) -> None:
        who = principal(req)
        view = choice_param(req, "view", VIEWS, "basic")
        query = replace(list_query(req), limit=_limit(req, view), include_archived=True)
        filters = VersionFilters(
            memory_id=req.get_param("memory_id") or None,
            operation=optional_choice_param(req, "operation", OPERATIONS),
            session_id=req.get_param("session_id") or None,
            api_key_id=req.get_param("api_key_id") or None,
            service_account_id=req.get_param("service_account_id") or None,
        )
        await run(self._memory.check_store, who, memory_store_id)
        page = await run(self._reads.memory_versions, who.tenant_id, memory_store_id, query, filters, view)
        resp.media = page.envelope()

    async def on_get_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str, memory_version_id: str
    ) -> None:
        who = principal(req)
        view = choice_param(req, "view", VIEWS, "full")
        doc = await run(self._reads.memory_version, who.tenant_id, memory_store_id, memory_version_id, view)
        resp.media = _found(doc, "memory version", memory_version_id)

    async def on_post_redact(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, memory_store_id: str, memory_version_id: str
    ) -> None:
        who = principal(req)
        await self._written.answer(resp, await run(self._memory.redact_version, who, memory_store_id, memory_version_id))
        doc = await run(self._reads.memory_version, who.tenant_id, memory_store_id, memory_version_id, "basic")
        resp.media = _found(doc, "memory version", memory_version_id)


def add_memory_routes(
    app: falcon.asgi.App, memory: MemoryService, reads: MemoryReadModels, written: ReadYourWrites, access: WorkerAccess
) -> None:
    stores = MemoryStoresResource(memory, reads, written)
    app.add_route("/v1/memory_stores", stores)
    item = "/v1/memory_stores/{memory_store_id}"
    app.add_route(item, stores, suffix="item")
    for action in ("archive", "search"):
        app.add_route(f"{item}/{action}", stores, suffix=action)
    memories = MemoriesResource(memory, reads, written, access)
    app.add_route(f"{item}/memories", memories)
    app.add_route(f"{item}/memories/{{memory_id}}", memories, suffix="item")
    versions = MemoryVersionsResource(memory, reads, written)
    app.add_route(f"{item}/memory_versions", versions)
    app.add_route(f"{item}/memory_versions/{{memory_version_id}}", versions, suffix="item")
    app.add_route(f"{item}/memory_versions/{{memory_version_id}}/redact", versions, suffix="redact")
