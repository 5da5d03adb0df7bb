"""Which tools a session's agent offers the model, and where each call goes.

Permission policies belong to the built-in toolset and MCP toolsets (the per-tool config
wins over the toolset's ``default_config``); custom tools have none and always go to the
client. MCP servers are not connected yet (their tools arrive with vaults), so an MCP
toolset offers the model nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    """Where one tool call goes: ``builtin`` (run by the server, after its policy) or
    ``custom`` (the client runs it); ``unknown`` is a name the agent does not offer."""

    kind: str
    policy: dict[str, Any] | None = None


@dataclass(frozen=True)
class Toolbox:
    offered: list[dict[str, Any]]  # {name, description, input_schema} for the provider
    routes: dict[str, Route]

    def route(self, name: str) -> Route:
        return self.routes.get(name, Route("unknown"))


def toolbox(agent: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> Toolbox:
    """The agent's tools, then ``extra`` custom tools (a chat completion's own functions)."""
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
