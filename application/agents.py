"""Use cases of the agents context: define, revise, read and archive versioned agents."""

from __future__ import annotations

from typing import Any, Protocol

from application.commands import Commands, Kind, Written
from application.errors import Invalid, NotFound
from application.ids import new_id
from application.multiagent import (
    Lookup,
    Owner,
    Pinned,
    ReferencedAgent,
    for_session,
    is_resolved,
    resolve_multiagent,
)
from application.ports import EventStore
from application.tenancy import Principal
from application.views import agent_view, pinned_agent_view
from domain.agents import Agent

DEFAULT_DEFINITION: dict[str, Any] = {
    "description": None,
    "system": None,
    "tools": [],
    "mcp_servers": [],
    "skills": [],
    "metadata": {},
    "multiagent": None,
    "execution_identity": {"type": "service_account"},
}


# Agentry's own agent fields: set only when given, so an agent made through the SDK looks
# exactly as the SDK expects.
PLACEMENT = ("department_id", "primary_board_id")

POLICY_ALWAYS_ALLOW = {"type": "always_allow"}
POLICY_ALWAYS_ASK = {"type": "always_ask"}


def normalize_model(model: Any) -> Any:
    """The API accepts a bare model id and a bare effort; it answers with objects."""
    config = {"id": model} if isinstance(model, str) else dict(model)
    if isinstance(config.get("effort"), str):
        config["effort"] = {"type": config["effort"]}
    return config


def _tool_config(config: dict[str, Any], default: dict[str, Any], typed: bool) -> dict[str, Any]:
    complete = {
        **config,
        "enabled": config.get("enabled", default["enabled"]),
        "permission_policy": config.get("permission_policy") or default["permission_policy"],
    }
    if complete["enabled"] is None:
        complete["enabled"] = default["enabled"]
    if typed:
        complete.setdefault("type", config["name"])
    return complete


def normalize_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """Responses carry every tool default materialized; requests may omit them."""
    kind = tool.get("type")
    if kind not in ("agent_toolset_20260401", "mcp_toolset"):
        return tool
    base_policy = POLICY_ALWAYS_ALLOW if kind == "agent_toolset_20260401" else POLICY_ALWAYS_ASK
    given_default = tool.get("default_config") or {}
    default = {
        "enabled": True if given_default.get("enabled") is None else given_default["enabled"],
        "permission_policy": given_default.get("permission_policy") or base_policy,
    }
    typed = kind == "agent_toolset_20260401"
    configs = [_tool_config(config, default, typed) for config in tool.get("configs") or []]
    return {**tool, "default_config": default, "configs": configs}


def normalize_skill(skill: dict[str, Any]) -> dict[str, Any]:
    return {**skill, "version": skill.get("version") or "latest"}


def normalize_changes(changes: dict[str, Any]) -> dict[str, Any]:
    normalized = dict(changes)
    if "model" in normalized:
        normalized["model"] = normalize_model(normalized["model"])
    for list_field in ("tools", "mcp_servers", "skills", "knowledge_bases"):
        if list_field in normalized and normalized[list_field] is None:
            normalized[list_field] = []
    if normalized.get("tools"):
        normalized["tools"] = [normalize_tool(tool) for tool in normalized["tools"]]
    if normalized.get("skills"):
        normalized["skills"] = [normalize_skill(skill) for skill in normalized["skills"]]
    if "execution_identity" in normalized and normalized["execution_identity"] is None:
        normalized["execution_identity"] = DEFAULT_DEFINITION["execution_identity"]
    return normalized


def render(agent: Agent) -> dict[str, Any]:
    return agent_view(
        agent.agent_id,
        agent.definition,
        agent.agent_version,
        agent.created_on,
        agent.modified_on,
        agent.archived_at,
    )


AGENTS: Kind[Agent] = Kind(Agent, "agent", "agent")


class Placement(Protocol):
    """Where an agent sits: the departments and boards it may name (the caller's, live)."""

    def check_department(self, who: Principal, department_id: str) -> None: ...

    def check_board(self, who: Principal, board_id: str) -> None: ...


class SkillReferences(Protocol):
    """The version a ``custom`` skill reference pins: the one named, checked, or the latest."""

    def resolve_reference(self, who: Principal, skill_id: str, version: str | None) -> str: ...


class KnowledgeBases(Protocol):
    """That the caller has a (live) knowledge base: ``NotFound`` otherwise."""

    def check(self, who: Principal, knowledge_base_id: str) -> None: ...


class AgentService:
    def __init__(
        self,
        store: EventStore,
        placement: Placement | None = None,
        skills: SkillReferences | None = None,
        knowledge: KnowledgeBases | None = None,
    ) -> None:
        self._store = store
        self._commands = Commands(store, AGENTS, render)
        self._placement = placement
        self._skills = skills
        self._knowledge = knowledge

    def _check_knowledge(self, who: Principal, changes: dict[str, Any]) -> None:
        """Each attached base is the caller's and named once. Checked when written only: a
        base deleted later is skipped by the runtime, as a deleted skill is."""
        entries = changes.get("knowledge_bases") or []
        ids = [entry["knowledge_base_id"] for entry in entries]
        if len(set(ids)) != len(ids):
            raise Invalid("knowledge_bases names a knowledge base more than once")
        if self._knowledge is not None:
            for knowledge_base_id in ids:
                self._knowledge.check(who, knowledge_base_id)

    def _resolve_skills(self, who: Principal, changes: dict[str, Any]) -> None:
        if self._skills is None or not changes.get("skills"):
            return
        changes["skills"] = [
            {**skill, "version": self._skills.resolve_reference(who, skill["skill_id"], skill.get("version"))}
            if skill.get("type") == "custom"
            else normalize_skill(skill)
            for skill in changes["skills"]
        ]

    def _check_placement(self, who: Principal, fields: dict[str, Any]) -> None:
        if self._placement is None:
            return
        if fields.get("department_id"):
            self._placement.check_department(who, fields["department_id"])
        if fields.get("primary_board_id"):
            self._placement.check_board(who, fields["primary_board_id"])

    def create(self, who: Principal, fields: dict[str, Any]) -> Written:
        self._check_placement(who, fields)
        fields = {name: value for name, value in fields.items() if value is not None or name not in PLACEMENT}
        agent_id = new_id("agent")
        self._check_knowledge(who, fields)
        self._resolve_skills(who, fields)
        changes = normalize_changes(fields)
        if changes.get("multiagent") is not None:
            owner = Owner(agent_id, 1)
            changes["multiagent"] = resolve_multiagent(changes["multiagent"], self._lookup(who), owner, symbolic_self=True)
        definition = {**DEFAULT_DEFINITION, **changes}
        return self._commands.create(Agent(agent_id=agent_id, tenant_id=who.tenant_id, definition=definition))

    def retrieve(self, who: Principal, agent_id: str, version: int | None = None) -> dict[str, Any]:
        agent = self._commands.load(who, agent_id)
        if version is None or version == agent.agent_version:
            return render(agent)
        definition, created_at, updated_at = self._definition_at(agent, version)
        return agent_view(agent_id, definition, version, created_at, updated_at, agent.archived_at)

    def update(
        self, who: Principal, agent_id: str, changes: dict[str, Any], expected_version: int | None
    ) -> Written:
        self._check_placement(who, changes)
        changes = dict(changes)
        self._check_knowledge(who, changes)
        self._resolve_skills(who, changes)
        changes = normalize_changes(changes)

        def update(agent: Agent) -> None:
            resolved = changes
            if changes.get("multiagent") is not None:
                # Other agents are pinned to their versions as this one is written; ``self``
                # stays symbolic, so it is always the version being read.
                owner = Owner(agent_id, agent.agent_version + 1)
                stored = agent.definition.get("multiagent")
                block = resolve_multiagent(changes["multiagent"], self._lookup(who), owner, stored, symbolic_self=True)
                resolved = {**changes, "multiagent": block}
            agent.update(resolved, expected_version)

        return self._commands.change(who, agent_id, update)

    def archive(self, who: Principal, agent_id: str) -> Written:
        return self._commands.change(who, agent_id, Agent.archive)

    def check_live(self, who: Principal, agent_id: str) -> None:
        """An agent a task may be assigned to: the caller's, not archived."""
        self._commands.check_live(who, agent_id)

    def pinned(self, who: Principal, agent_id: str, version: int | None) -> dict[str, Any]:
        """The agent definition a new session pins: the given version, or the latest."""
        agent = self._commands.load(who, agent_id)
        if agent.archived_at is not None:
            raise Invalid(f"agent {agent_id} is archived; sessions cannot start on it")
        version = version or agent.agent_version
        view = pinned_agent_view(agent_id, self._definition(agent, version), version)
        block = view.get("multiagent")
        if block is not None:
            if not is_resolved(block):
                # Saved before blocks were resolved (as sent): resolve it now, or refuse.
                block = resolve_multiagent(block, self._lookup(who), Owner(agent_id, version))
            view["multiagent"] = for_session(block, self._roster_member(who, agent, view))
        return view

    def _roster_member(self, who: Principal, owner: Agent, owner_view: dict[str, Any]) -> Pinned:
        """A roster member as a session copies it (the owner itself is the view at hand)."""

        def member(agent_id: str, version: int) -> dict[str, Any]:
            if agent_id == owner.agent_id and version == owner_view["version"]:
                return owner_view
            agent = owner if agent_id == owner.agent_id else self._commands.load(who, agent_id)
            return pinned_agent_view(agent_id, self._definition(agent, version), version)

        return member

    def _lookup(self, who: Principal) -> Lookup:
        """How a multiagent roster reads the agents it names (NotFound when there is none)."""

        def referenced(agent_id: str, version: int | None) -> ReferencedAgent:
            agent = self._commands.load(who, agent_id)
            found = version or agent.agent_version
            has_multiagent = self._definition(agent, found).get("multiagent") is not None
            return ReferencedAgent(found, agent.archived_at is not None, has_multiagent)

        return referenced

    def _definition(self, agent: Agent, version: int) -> dict[str, Any]:
        """The definition at ``version``: the aggregate's own when current, else read back."""
        if version == agent.agent_version:
            return agent.definition
        return self._definition_at(agent, version)[0]

    def _definition_at(self, agent: Agent, version: int) -> tuple[dict[str, Any], Any, Any]:
        """Every Created/Updated event carries the whole definition of the version it made."""
        created_at = agent.created_on
        for recorded in self._store.read_stream(agent.id):
            recorded_version = getattr(recorded, "agent_version", 1)
            definition = getattr(recorded, "definition", None)
            if definition is not None and recorded_version == version:
                return definition, created_at, recorded.timestamp
        raise NotFound(f"agent {agent.agent_id!r} has no version {version}")
