"""The agent's MCP servers, as a turn uses them: their tools listed at turn start, the
model's calls made, each with the bearer the session's vaults hold for the server's URL.

A server that cannot be reached or refuses the credential is a ``McpFailure`` (recorded as a
non-blocking ``session.error``, spec §A.5): the turn goes on without its tools. A call that
fails is an ``is_error`` result (spec §A.10), plus a failure when the credential was refused."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from application.mcp_credentials import Bearer, CredentialUnusable, McpCredentials
from application.ports import McpCallOutcome, McpCancellation, McpClient, McpListedTool, McpUnauthorized, McpUnreachable
from application.runtime.tools import McpTool, mcp_policy, mcp_toolsets
from application.vaults import SCRUB_MIN_LENGTH
from domain.sessions import Session

log = logging.getLogger("agentry.runtime.mcp")
T = TypeVar("T")

CONNECTION_FAILED = "mcp_connection_failed_error"
AUTHENTICATION_FAILED = "mcp_authentication_failed_error"


@dataclass(frozen=True)
class McpFailure:
    server: str
    error_type: str  # CONNECTION_FAILED or AUTHENTICATION_FAILED
    message: str


@dataclass(frozen=True)
class Discovery:
    tools: list[McpTool] = field(default_factory=list)
    failures: list[McpFailure] = field(default_factory=list)


class _Failed(Exception):
    def __init__(self, failure: McpFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class McpTools:
    def __init__(
        self, client: McpClient, credentials: McpCredentials, list_deadline: float = 10.0, call_deadline: float = 120.0
    ) -> None:
        self._client = client
        self._credentials = credentials
        self._list_deadline = list_deadline
        self._call_deadline = call_deadline

    def discover(self, session: Session, cancel: McpCancellation) -> Discovery:
        """The tools of every server an ``mcp_toolset`` names, one server after another
        (``McpCancelled`` when the turn is interrupted meanwhile)."""
        tools: list[McpTool] = []
        failures: list[McpFailure] = []
        for server, toolset in mcp_toolsets(session.agent):
            name, url = str(server.get("name")), str(server.get("url") or "")

            def listing(token: str | None, url: str = url) -> list[McpListedTool]:
                return self._client.list_tools(url, token, cancel, self._list_deadline)

            try:
                listed = self._authorized(session, name, url, listing)
            except _Failed as failed:
                log.info("session %s: MCP server %r offers no tools this turn: %s", session.session_id, name, failed.failure.message)
                failures.append(failed.failure)
                continue
            for tool in listed:
                policy = mcp_policy(toolset, tool.name)
                if policy is not None:
                    tools.append(McpTool(name, tool.name, tool.description, tool.input_schema, policy))
        return Discovery(tools, failures)

    def call(
        self, session: Session, server: str, tool: str, arguments: dict[str, Any], cancel: McpCancellation
    ) -> tuple[McpCallOutcome, McpFailure | None]:
        """The call's result, and a failure to report when the server refused the credential.
        ``McpCancelled`` when the turn is interrupted during the call."""
        url = next((str(s.get("url") or "") for s in session.agent.get("mcp_servers") or [] if s.get("name") == server), None)
        if url is None:
            return _error_outcome(f"The MCP server {server!r} is no longer among the agent's servers."), None
        used: list[Bearer] = []

        def op(token: str | None) -> McpCallOutcome:
            return self._client.call_tool(url, token, tool, arguments, cancel, self._call_deadline)

        try:
            outcome = self._authorized(session, server, url, op, used)
        except _Failed as failed:
            if failed.failure.error_type == AUTHENTICATION_FAILED:
                return _error_outcome(f"The MCP server {server!r} refused the call: {failed.failure.message}"), failed.failure
            return _error_outcome(f"The call to MCP server {server!r} failed: {failed.failure.message}"), None
        secrets = [secret for bearer in used for secret in bearer.secrets]
        return McpCallOutcome(_scrubbed(outcome.content, secrets), outcome.is_error), None

    def _authorized(
        self,
        session: Session,
        server: str,
        url: str,
        op: Callable[[str | None], T],
        used: list[Bearer] | None = None,
    ) -> T:
        """``op`` with the vaults' bearer for ``url``: refreshed first when near expiry, and
        once more after a 401/403 when it can be; ``_Failed`` when the server stays out of reach."""
        used = used if used is not None else []
        tenant_id, vault_ids = session.tenant_id, list(session.details.get("vault_ids") or [])
        try:
            bearer = self._credentials.bearer_for(tenant_id, vault_ids, url)
        except CredentialUnusable as unusable:
            raise _Failed(McpFailure(server, AUTHENTICATION_FAILED, f"MCP server {server!r}: {unusable}")) from None
        if bearer is not None and self._credentials.expiring(bearer):
            bearer = self._credentials.renewed(tenant_id, bearer) or bearer  # an old token is still tried
        if bearer is not None:
            used.append(bearer)
        try:
            return op(bearer.token if bearer else None)
        except McpUnreachable as unreachable:
            raise _Failed(McpFailure(server, CONNECTION_FAILED, f"could not connect to MCP server {server!r} ({unreachable})")) from None
        except McpUnauthorized as refused:
            if bearer is None:
                message = f"no credential in the session's vaults matches MCP server {server!r}; it answered HTTP {refused.status}"
                raise _Failed(McpFailure(server, AUTHENTICATION_FAILED, message)) from None
            refused_message = (
                f"MCP server {server!r} refused the credential {bearer.credential_id} of vault {bearer.vault_id} (HTTP {refused.status})"
            )
            fresh = self._credentials.renewed(tenant_id, bearer) if bearer.refreshable else None
            if fresh is None:
                suffix = "; refreshing it failed" if bearer.refreshable else ""
                raise _Failed(McpFailure(server, AUTHENTICATION_FAILED, refused_message + suffix)) from None
            used.append(fresh)
        try:
            return op(fresh.token)
        except McpUnreachable as unreachable:
            raise _Failed(McpFailure(server, CONNECTION_FAILED, f"could not connect to MCP server {server!r} ({unreachable})")) from None
        except McpUnauthorized:
            raise _Failed(McpFailure(server, AUTHENTICATION_FAILED, refused_message + "; refreshing it did not help")) from None


def _error_outcome(text: str) -> McpCallOutcome:
    return McpCallOutcome([{"type": "text", "text": text}], True)


def _scrubbed(content: list[dict[str, Any]], secrets: list[str]) -> list[dict[str, Any]]:
    """A server could echo the bearer into its result: no secret of the credential reaches
    the model or the event log."""
    secrets = sorted({secret for secret in secrets if len(secret) >= SCRUB_MIN_LENGTH}, key=len, reverse=True)
    if not secrets:
        return content
    cleaned = []
    for block in content:
        if block.get("type") == "text":
            text = block["text"]
            for secret in secrets:
                text = text.replace(secret, "[redacted]")
            block = {**block, "text": text}
        cleaned.append(block)
    return cleaned
