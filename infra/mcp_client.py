"""MCP over streamable HTTP through the official ``mcp`` SDK: one connection per operation.

Each operation runs in its own event loop on the caller's (the turn's) thread, bounded by
``asyncio.wait_for`` and ended when the caller's cancellation fires (polled every 50 ms: the
SDK's own ``read_timeout_seconds`` leaves a task group behind, ``wait_for`` really ends it).
A 401/403 is seen by an httpx2 response hook, never by parsing the SDK's exception (which
carries no status). Messages of the errors raised here name a status or a class, never an
exception's text or a header, so they are safe for ``session.error``.

``mcp`` is imported on first use: it costs ~0.6 s, which a process that never calls an MCP
server should not pay."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from application.ports import (
    McpCallOutcome,
    McpCancellation,
    McpCancelled,
    McpListedTool,
    McpUnauthorized,
    McpUnreachable,
)

MAX_PAGES = 10
MAX_TOOLS = 128
MAX_RESULT_CHARS = 100_000
_POLL_SECONDS = 0.05
T = TypeVar("T")


class SdkMcpClient:
    def __init__(self) -> None:
        # One TLS context for every connection: building one loads the CA bundle (~10-100 ms
        # a connection otherwise, measured; SSLContext is safe to share between threads).
        self._tls: Any = None
        self._tls_lock = threading.Lock()

    def _tls_context(self) -> Any:
        with self._tls_lock:
            if self._tls is None:
                import httpx2

                self._tls = httpx2.create_ssl_context(trust_env=False)
            return self._tls

    def list_tools(self, url: str, bearer: str | None, cancel: McpCancellation, deadline: float) -> list[McpListedTool]:
        async def listing(client: Any) -> list[McpListedTool]:
            tools: list[McpListedTool] = []
            cursor = None
            for _ in range(MAX_PAGES):
                page = await client.list_tools(cursor=cursor)
                for tool in page.tools:
                    schema = tool.input_schema if isinstance(tool.input_schema, dict) else {"type": "object"}
                    tools.append(McpListedTool(tool.name, tool.description or tool.title or "", schema))
                cursor = page.next_cursor
                if not cursor or len(tools) >= MAX_TOOLS:
                    break
            return tools[:MAX_TOOLS]

        return self._run(url, bearer, listing, cancel, deadline)

    def call_tool(
        self, url: str, bearer: str | None, name: str, arguments: dict[str, Any], cancel: McpCancellation, deadline: float
    ) -> McpCallOutcome:
        async def calling(client: Any) -> McpCallOutcome:
            result = await client.call_tool(name, arguments)
            return McpCallOutcome(_content(result), bool(result.is_error))

        return self._run(url, bearer, calling, cancel, deadline)

    def _run(
        self,
        url: str,
        bearer: str | None,
        op: Callable[[Any], Awaitable[T]],
        cancel: McpCancellation,
        deadline: float,
    ) -> T:
        if cancel.cancelled:
            raise McpCancelled
        statuses: list[int] = []
        try:
            tls = self._tls_context()
            return asyncio.run(_bounded(_connected(url, bearer, tls, op, statuses), cancel, deadline))
        except McpCancelled:
            raise
        except TimeoutError:
            raise McpUnreachable(f"no answer within {deadline:g} s") from None
        except Exception as failure:
            refused = [status for status in statuses if status in (401, 403)]
            if refused:
                raise McpUnauthorized(refused[-1]) from None
            raise McpUnreachable(_failure_name(failure, statuses)) from None


async def _connected(
    url: str, bearer: str | None, tls: Any, op: Callable[[Any], Awaitable[T]], statuses: list[int]
) -> T:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def seen(response: Any) -> None:
        statuses.append(response.status_code)

    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    async with (
        httpx2.AsyncClient(
            headers=headers,
            verify=tls,
            timeout=httpx2.Timeout(30.0, read=300.0),
            trust_env=False,
            follow_redirects=False,
            event_hooks={"response": [seen]},
        ) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        return await op(client)


async def _bounded(op: Awaitable[T], cancel: McpCancellation, deadline: float) -> T:
    task = asyncio.ensure_future(op)
    loop = asyncio.get_running_loop()
    ends = loop.time() + deadline
    try:
        while not task.done():
            if cancel.cancelled:
                raise McpCancelled
            left = ends - loop.time()
            if left <= 0:
                raise TimeoutError
            await asyncio.wait({task}, timeout=min(_POLL_SECONDS, left))
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: S110 - whatever it ended with, the operation is over
                pass


def _failure_name(failure: BaseException, statuses: list[int]) -> str:
    """A safe description: the innermost exception's class, and a non-2xx status if one came."""
    while isinstance(failure, BaseExceptionGroup) and failure.exceptions:
        failure = failure.exceptions[0]
    bad = [status for status in statuses if status >= 400]
    return f"{type(failure).__name__}" + (f", HTTP {bad[-1]}" if bad else "")


def _content(result: Any) -> list[dict[str, Any]]:
    """A ``CallToolResult``'s content as event blocks (text and base64 images; other kinds as
    a text placeholder), its text capped at ``MAX_RESULT_CHARS`` (spec §A.10)."""
    blocks: list[dict[str, Any]] = []
    for item in result.content or []:
        kind = getattr(item, "type", None)
        if kind == "text":
            blocks.append({"type": "text", "text": item.text})
        elif kind == "image":
            blocks.append({"type": "image", "source": {"type": "base64", "media_type": item.mime_type, "data": item.data}})
        elif kind == "resource" and hasattr(item.resource, "text"):
            blocks.append({"type": "text", "text": item.resource.text})
        elif kind == "resource":
            blocks.append({"type": "text", "text": f"[resource {item.resource.uri}]"})
        elif kind == "resource_link":
            blocks.append({"type": "text", "text": f"[resource {getattr(item, 'uri', '')}]"})
        else:
            blocks.append({"type": "text", "text": f"[{kind} omitted]"})
    if not blocks and result.structured_content is not None:
        blocks.append({"type": "text", "text": json.dumps(result.structured_content)})
    used = 0
    capped: list[dict[str, Any]] = []
    for block in blocks:
        if block["type"] == "text":
            room = MAX_RESULT_CHARS - used
            if room <= 0:
                break
            if len(block["text"]) > room:
                capped.append({"type": "text", "text": block["text"][:room] + "\n[result cut at 100000 characters]"})
                used = MAX_RESULT_CHARS
                continue
            used += len(block["text"])
        capped.append(block)
    return capped
