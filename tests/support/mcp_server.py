"""A real MCP server for tests: the ``mcp`` package's own ``MCPServer`` (streamable HTTP) under
uvicorn on localhost, requiring a bearer, with an OAuth token endpoint beside it.

``accepted`` is the set of bearers the server takes (anything else: HTTP 401 from the SDK's
own bearer middleware). ``calls`` records every tool call with the bearer it came with. The
token endpoint (``token_url``) answers the ``refresh_token`` grant for ``refresh_tokens`` it
knows: it issues a new access token (added to ``accepted``) and rotates the refresh token."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.support.postgres import free_port


@dataclass
class McpCall:
    tool: str
    arguments: dict[str, Any]
    bearer: str | None


@dataclass
class TestMcpServer:
    __test__ = False  # not a test class

    accepted: set[str] = field(default_factory=set)
    calls: list[McpCall] = field(default_factory=list)
    # refresh token → the access token the next refresh issues (then rotated)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    refreshes: list[dict[str, str]] = field(default_factory=list)
    token_endpoint_status: int = 200
    expires_in: int | None = 3600
    port: int = 0
    _server: Any = None
    _thread: threading.Thread | None = None
    _issued: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def reset(self) -> None:
        self.accepted.clear()
        self.calls.clear()
        self.refresh_tokens.clear()
        self.refreshes.clear()
        self.token_endpoint_status = 200
        self.expires_in = 3600

    def start(self) -> TestMcpServer:
        from mcp.server.auth.middleware.auth_context import get_access_token
        from mcp.server.auth.provider import AccessToken
        from mcp.server.auth.settings import AuthSettings
        from mcp.server.mcpserver import MCPServer
        from starlette.requests import Request
        from starlette.responses import JSONResponse

        self.port = free_port()
        fixture = self

        class Verifier:
            async def verify_token(self, token: str) -> AccessToken | None:
                if token in fixture.accepted:
                    return AccessToken(token=token, client_id="test", scopes=[])
                return None

        server = MCPServer(
            "docs",
            token_verifier=Verifier(),
            auth=AuthSettings(
                issuer_url=f"http://127.0.0.1:{self.port}",  # type: ignore[arg-type]
                resource_server_url=self.url,  # type: ignore[arg-type]
                validate_token_resource=False,
            ),
        )

        def seen(tool: str, arguments: dict[str, Any]) -> None:
            token = get_access_token()
            fixture.calls.append(McpCall(tool, arguments, token.token if token else None))

        @server.tool(description="Adds two integers")
        def add(a: int, b: int) -> str:
            seen("add", {"a": a, "b": b})
            return str(a + b)

        @server.tool(description="Takes its time")
        async def slow(seconds: float) -> str:
            seen("slow", {"seconds": seconds})
            await asyncio.sleep(seconds)
            return "slept"

        @server.tool(description="Says which bearer it got")
        def echo_secret() -> str:
            seen("echo_secret", {})
            token = get_access_token()
            return f"you sent {token.token if token else None}"

        @server.custom_route("/token", methods=["POST"])
        async def token(request: Request) -> JSONResponse:
            form = dict((await request.form()).items())
            fixture.refreshes.append({key: str(value) for key, value in form.items()})
            old = str(form.get("refresh_token"))
            if fixture.token_endpoint_status != 200 or old not in fixture.refresh_tokens:
                status = fixture.token_endpoint_status if fixture.token_endpoint_status != 200 else 400
                return JSONResponse({"error": "invalid_grant"}, status_code=status)
            access = fixture.refresh_tokens.pop(old)
            fixture._issued += 1
            rotated = f"rotated-refresh-{fixture._issued}-0123456789"
            fixture.refresh_tokens[rotated] = f"{access}-next"
            fixture.accepted.add(access)
            answer: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "refresh_token": rotated}
            if fixture.expires_in is not None:
                answer["expires_in"] = fixture.expires_in
            return JSONResponse(answer)

        app = server.streamable_http_app()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="test-mcp-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test MCP server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
