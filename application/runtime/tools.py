"""Which tools a session's agent offers the model, and where each call goes.

Permission policies belong to the built-in toolset and MCP toolsets (the per-tool config
wins over the toolset's ``default_config``); custom tools have none and always go to the
client. An MCP toolset's tools are listed from its server at turn start (``runtime/mcp.py``)
and added with ``Toolbox.with_mcp``; the model sees each as ``mcp__<server>__<tool>``."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from hashlib import sha256
from typing import Any

from application.runtime import knowledge

log = logging.getLogger("agentry.runtime")

TOOLSET = "agent_toolset_20260401"

_PATH = {"type": "string", "description": "An absolute path in the sandbox"}
BUILTIN_TOOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "bash": (
        "Execute bash commands in a shell session",
        {
            "type": "object",
            "properties": {
                "command": {"type": "string"},
                "restart": {"type": "boolean"},
                "timeout_ms": {"type": "integer"},
            },
        },
    ),
    "read": (
        "Read a file from the sandbox filesystem",
        {
            "type": "object",
            "properties": {"file_path": _PATH, "view_range": {"type": "array", "items": {"type": "integer"}}},
            "required": ["file_path"],
        },
    ),
    "write": (
        "Write a file to the sandbox filesystem",
        {
            "type": "object",
            "properties": {"file_path": _PATH, "content": {"type": "string"}},
            "required": ["file_path", "content"],
        },
    ),
    "edit": (
        "String replacement in a file",
        {
            "type": "object",
            "properties": {
                "file_path": _PATH,
                "old_string": {"type": "string"},
                "new_string": {"type": "string"},
                "replace_all": {"type": "boolean"},
            },
            "required": ["file_path", "old_string", "new_string"],
        },
    ),
    "glob": (
        "File pattern matching",
        {
            "type": "object",
            "properties": {"pattern": {"type": "string"}, "path": _PATH},
            "required": ["pattern"],
        },
    ),
    "grep": (
        "Regex text search",
        {
            "type": "object",
            "properties": {"pattern": {"type": "string"}, "path": _PATH},
            "required": ["pattern"],
        },
    ),
    "web_fetch": (
        "Fetch content from a URL",
        {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
    ),
    "web_search": (
        "Search the web",
        {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    ),
}

# The built-in tools an environment's worker runs (the SDK's toolset has exactly these).
WORKER_TOOLS = frozenset({"bash", "read", "write", "edit", "glob", "grep"})

NOT_RUN = (
    "The {name} tool did not run: no worker of this environment runs it (workers run "
    + ", ".join(sorted(WORKER_TOOLS)) + ")."
)


@dataclass(frozen=True)
class Route:
    """Where one tool call goes: ``builtin`` (run by the server, after its policy),
    ``custom`` (the client runs it), ``mcp`` (the runtime calls ``tool`` on MCP server
    ``server``, after its policy) or ``knowledge`` (the runtime searches the agent's knowledge
    bases); ``unknown`` is a name the agent does not offer."""

    kind: str
    policy: dict[str, Any] | None = None
    server: str | None = None
    tool: str | None = None


@dataclass(frozen=True)
class McpTool:
    """One tool an MCP server listed, as the agent's toolset offers it."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]
    policy: dict[str, Any]


@dataclass(frozen=True)
class Toolbox:
    offered: list[dict[str, Any]]  # {name, description, input_schema} for the provider
    routes: dict[str, Route]

    def route(self, name: str) -> Route:
        return self.routes.get(name, Route("unknown"))

    def with_mcp(self, tools: list[McpTool]) -> Toolbox:
        """This toolbox and the MCP tools listed at turn start. A declared tool of the same
        name wins (built-in names never start with ``mcp__``)."""
        offered, routes = list(self.offered), dict(self.routes)
        for tool in tools:
            name = mcp_tool_name(tool.server, tool.name)
            if name in routes:
                log.info("MCP tool %r of server %r is not offered: a declared tool has its name", tool.name, tool.server)
                continue
            offered.append({"name": name, "description": tool.description, "input_schema": tool.input_schema})
            routes[name] = Route("mcp", tool.policy, tool.server, tool.name)
        return replace(self, offered=offered, routes=routes)


_NAME_PART = re.compile(r"[A-Za-z0-9_-]+")
_SERVER_PART = re.compile(r"[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*")
MAX_TOOL_NAME = 64


def mcp_tool_name(server: str, tool: str) -> str:
    """The name the model sees for ``tool`` of MCP server ``server`` (spec §B.3):
    ``mcp__<server>__<tool>``. A function of the pair only, so the transcript rebuilds it
    from an ``agent.mcp_tool_use`` event. Parts a provider would refuse (characters outside
    ``[A-Za-z0-9_-]``, over 64 in all) are slugged and suffixed with a hash of the pair, so
    two different pairs never share a name."""
    name = f"mcp__{server}__{tool}"
    # Kept as is only when the pair can be read back from it: a server with no ``__`` and no
    # ``_`` at either end (else ``a``/``b__c`` and ``a__b``/``c`` would share a name).
    if (
        _SERVER_PART.fullmatch(server)
        and _NAME_PART.fullmatch(tool)
        and len(name) <= MAX_TOOL_NAME
    ):
        return name
    suffix = "_" + sha256(f"{server}\0{tool}".encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    return slug[: MAX_TOOL_NAME - len(suffix)] + suffix


def mcp_toolsets(agent: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(server, toolset) for each ``mcp_toolset`` naming one of the agent's ``mcp_servers``:
    only those servers are connected."""
    servers = {server.get("name"): server for server in agent.get("mcp_servers") or []}
    found = []
    for tool in agent.get("tools") or []:
        if tool.get("type") == "mcp_toolset" and tool.get("mcp_server_name") in servers:
            found.append((servers[tool["mcp_server_name"]], tool))
    return found


def mcp_policy(toolset: dict[str, Any], tool_name: str) -> dict[str, Any] | None:
    """The permission policy of one listed tool under its toolset, or None when the toolset
    disables it. Unset policies are ``always_ask`` (the spec's default for MCP)."""
    default = toolset.get("default_config") or {}
    config: dict[str, Any] = next((c for c in toolset.get("configs") or [] if c.get("name") == tool_name), {})
    enabled = config.get("enabled")
    if enabled is None:
        enabled = default.get("enabled", True) is not False
    if not enabled:
        return None
    return config.get("permission_policy") or default.get("permission_policy") or {"type": "always_ask"}


def toolbox(agent: dict[str, Any], extra: list[dict[str, Any]] | None = None, searchable: bool = False) -> Toolbox:
    """The agent's tools, then ``extra`` custom tools (a chat completion's own functions),
    then ``knowledge_search`` when the agent has knowledge bases and the runtime can search
    them (``searchable``). A declared tool of that name wins."""
    offered: list[dict[str, Any]] = []
    routes: dict[str, Route] = {}
    for tool in [*(agent.get("tools") or []), *(extra or [])]:
        kind = tool.get("type")
        if kind == TOOLSET:
            default = tool.get("default_config") or {}
            configs = {config.get("name"): config for config in tool.get("configs") or []}
            for name, (description, schema) in BUILTIN_TOOLS.items():
                config = configs.get(name, {})
                enabled = config.get("enabled")
                if enabled is None:
                    enabled = default.get("enabled", True) is not False
                if not enabled:
                    continue
                policy = config.get("permission_policy") or default.get("permission_policy") or {"type": "always_allow"}
                offered.append({"name": name, "description": description, "input_schema": schema})
                routes[name] = Route("builtin", policy)
        elif kind == "custom" and tool.get("name"):
            offered.append(
                {
                    "name": tool["name"],
                    "description": tool.get("description") or "",
                    "input_schema": tool.get("input_schema") or {"type": "object", "properties": {}},
                }
            )
            routes[tool["name"]] = Route("custom")
    if searchable and knowledge.attached(agent):
        if knowledge.TOOL_NAME in routes:
            log.info("knowledge_search is not offered: a declared tool has its name")
        else:
            offered.append(knowledge.tool_definition(agent))
            routes[knowledge.TOOL_NAME] = Route("knowledge")
    return Toolbox(offered, routes)


def evaluation(policy: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(evaluated_permission, evaluation)`` for a built-in call under ``policy``. ``auto``
    is treated as allow (a self-hosted server has no risk classifier)."""
    kind = policy.get("type")
    if kind == "always_ask":
        return "ask", {"type": "always_ask"}
    if kind == "auto":
        return "allow", {"type": "auto", "evaluated_permission": {"type": "allow"}}
    return "allow", {"type": "always_allow"}
