"""Resolves an agent's ``multiagent`` block to the form the API answers with.

A client may name other agents loosely — a bare id, ``{"type": "agent", "id"}`` without a
version, ``{"type": "self"}`` — and may leave members out. The SDK's response types
(``BetaManagedAgentsMultiagentCoordinator`` / ``…Multiagent20261001``) accept none of that:
every agent is ``{"type": "agent", "id", "version"}`` pinned to a concrete version, and
every member is present with its defaults filled in. Resolving once, when the agent version
is written, pins the roster: a later revision of a referenced agent does not change what
this version runs.

Errors follow the SDK: a reference to an agent or version that does not exist is the
caller's ``NotFound`` (404 ``not_found_error``, as the SDK's ``…NotFoundError`` types do for
ids named in a body); a roster that breaks a documented rule is ``Invalid`` (400).
No I/O: the caller's ``lookup`` reads the referenced agents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from application.errors import Invalid

MAX_AGENTS = 20
_OMITTED: Any = object()


@dataclass(frozen=True)
class ReferencedAgent:
    """What resolution needs to know about one referenced agent version."""

    version: int
    archived: bool = False
    has_multiagent: bool = False  # that version has a multiagent block of its own


# (agent id, version or None for the current one) → that version; raises NotFound.
Lookup = Callable[[str, int | None], ReferencedAgent]


@dataclass(frozen=True)
class Owner:
    """The agent whose block this is, at the version being written (``self`` resolves to it)."""

    id: str
    version: int


SELF: dict[str, Any] = {"type": "self"}


def resolve_multiagent(
    block: dict[str, Any] | None,
    lookup: Lookup,
    owner: Owner,
    stored: dict[str, Any] | None = None,
    symbolic_self: bool = False,
) -> dict[str, Any] | None:
    """The resolved block. ``stored`` is the block of the version being revised: a
    ``multiagent_20261001`` update merges into a stored one of the same type, level by
    level, as the SDK documents; anything else replaces it.

    With ``symbolic_self`` the owner itself stays ``{"type": "self"}`` — how a definition
    stores it, so ``self`` always means the version being read (``present`` makes it
    concrete) and re-sending the same roster changes nothing."""
    if block is None:
        return None
    if not isinstance(block, dict):
        raise Invalid("multiagent must be an object")
    resolver = _Resolver(lookup, owner, symbolic_self)
    kind = block.get("type")
    if kind == "coordinator":
        return resolver.coordinator(block)
    if kind == "multiagent_20261001":
        same_type = stored if stored is not None and stored.get("type") == kind else None
        return resolver.members(block, same_type)
    raise Invalid("multiagent.type must be 'coordinator' or 'multiagent_20261001'")


def _default(member: str) -> dict[str, Any]:
    if member == "advisor":
        return {"type": "disabled"}
    return _enabled_defaults()


def _enabled_defaults() -> dict[str, Any]:
    return {"type": "enabled", "inline_agents": {"type": "enabled"}, "predefined_agents": []}


def _typed(value: Any, where: str) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise Invalid(f"{where} must be an object with a type")
    return value["type"]


class _Resolver:
    def __init__(self, lookup: Lookup, owner: Owner, symbolic_self: bool = False) -> None:
        self._lookup = lookup
        self._owner = owner
        self._symbolic_self = symbolic_self

    # -- agent references ----------------------------------------------------------------

    def _self(self) -> dict[str, Any]:
        if self._symbolic_self:
            return dict(SELF)
        return {"type": "agent", "id": self._owner.id, "version": self._owner.version}

    def _agent(self, agent_id: Any, version: Any, one_level: bool) -> dict[str, Any]:
        if not isinstance(agent_id, str) or not agent_id:
            raise Invalid("an agent reference needs a non-empty id")
        if version is not None and (type(version) is not int or version < 1):
            raise Invalid(f"the version of agent {agent_id} must be an integer of at least 1")
        if agent_id == self._owner.id and (version is None or version == self._owner.version):
            return self._self()
        found = self._lookup(agent_id, version)
        if found.archived:
            raise Invalid(f"agent {agent_id} is archived and cannot be referenced")
        if one_level and found.has_multiagent:
            raise Invalid(f"agent {agent_id} has multiagent set itself; a roster is one level deep")
        return {"type": "agent", "id": agent_id, "version": found.version}

    def _entry(self, entry: Any, where: str, one_level: bool) -> dict[str, Any]:
        """A bare id, ``{"type": "agent", "id", "version"?}`` or ``{"type": "self"}``."""
        if isinstance(entry, str):
            return self._agent(entry, None, one_level)
        kind = _typed(entry, where)
        if kind == "self":
            return self._self()
        if kind == "agent":
            return self._agent(entry.get("id"), entry.get("version"), one_level)
        raise Invalid(f"{where} must be an agent id, an agent reference or self, not {kind!r}")

    # -- coordinator ---------------------------------------------------------------------

    def coordinator(self, block: dict[str, Any]) -> dict[str, Any]:
        entries = block.get("agents")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_AGENTS:
            raise Invalid(f"multiagent.agents must list 1 to {MAX_AGENTS} entries")
        roster: list[dict[str, Any]] = []
        seen: set[str] = set()
        selves = advisors = 0
        for index, entry in enumerate(entries):
            where = f"multiagent.agents[{index}]"
            if isinstance(entry, dict) and entry.get("type") == "advisor":
                model = entry.get("model")
                if not isinstance(model, str) or not model:
                    raise Invalid(f"{where}: an advisor needs its model")
                advisors += 1
                roster.append({"type": "advisor", "model": model})
                continue
            if isinstance(entry, dict) and entry.get("type") == "self":
                selves += 1
            resolved = self._entry(entry, where, one_level=True)
            agent_id = self._owner.id if resolved == SELF else resolved["id"]
            if agent_id in seen:
                raise Invalid(f"{where}: agent {agent_id} is already in the roster")
            seen.add(agent_id)
            roster.append(resolved)
        if selves > 1:
            raise Invalid("multiagent.agents may name self at most once")
        if advisors > 1:
            raise Invalid("multiagent.agents may hold at most one advisor")
        return {"type": "coordinator", "agents": roster}

    # -- multiagent_20261001 -------------------------------------------------------------

    def members(self, block: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        resolved: dict[str, Any] = {"type": "multiagent_20261001"}
        for member in ("advisor", "subagents", "workflows"):
            before = stored.get(member) if stored is not None else None
            resolved[member] = self._member(member, block.get(member, _OMITTED), before)
        return resolved

    def _member(self, member: str, sent: Any, before: dict[str, Any] | None) -> dict[str, Any]:
        where = f"multiagent.{member}"
        if sent is _OMITTED:
            return before if before is not None else _default(member)
        if sent is None:
            return _default(member)
        kind = _typed(sent, where)
        # Same type as stored: merge into it; another type: its omitted keys take defaults.
        base = before if before is not None and before.get("type") == kind else None
        if kind == "disabled":
            return {"type": "disabled"}
        if kind != "enabled":
            raise Invalid(f"{where}.type must be 'enabled' or 'disabled'")
        if member == "advisor":
            model = sent.get("model", (base or {}).get("model"))
            if not isinstance(model, str) or not model:
                raise Invalid(f"{where}: an enabled advisor needs its model")
            return {"type": "enabled", "model": model}
        return self._enabled(where, sent, base or _enabled_defaults())

    def _enabled(self, where: str, sent: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
        inline = sent.get("inline_agents", _OMITTED)
        if inline is _OMITTED:
            inline = base["inline_agents"]
        elif inline is None:
            inline = {"type": "enabled"}
        elif _typed(inline, f"{where}.inline_agents") in ("enabled", "disabled"):
            inline = {"type": inline["type"]}
        else:
            raise Invalid(f"{where}.inline_agents.type must be 'enabled' or 'disabled'")
        predefined = sent.get("predefined_agents", _OMITTED)
        if predefined is _OMITTED:
            agents = base["predefined_agents"]
        elif predefined is None:
            agents = []
        elif isinstance(predefined, list) and len(predefined) <= MAX_AGENTS:
            agents = [
                self._entry(entry, f"{where}.predefined_agents[{index}]", one_level=False)
                for index, entry in enumerate(predefined)
            ]
        else:
            raise Invalid(f"{where}.predefined_agents must list at most {MAX_AGENTS} agents")
        if inline["type"] == "disabled" and not agents:
            raise Invalid(f"{where}: with inline_agents disabled, predefined_agents must name an agent")
        return {"type": "enabled", "inline_agents": inline, "predefined_agents": agents}


def present(block: dict[str, Any] | None, owner: Owner) -> dict[str, Any] | None:
    """A stored block as the API shows the owner at ``owner.version``: ``self`` becomes
    that version. No lookups, so list projections can do it too."""
    if block is None:
        return None

    def concrete(value: Any) -> Any:
        if value == SELF:
            return {"type": "agent", "id": owner.id, "version": owner.version}
        if isinstance(value, dict):
            return {key: concrete(item) for key, item in value.items()}
        if isinstance(value, list):
            return [concrete(item) for item in value]
        return value

    return dict(concrete(block))


def is_resolved(block: dict[str, Any]) -> bool:
    """Whether a stored block has the resolved shape. Agents saved before blocks were
    resolved hold them as sent (bare ids, missing members)."""

    def reference(entry: Any) -> bool:
        return isinstance(entry, dict) and (
            entry == SELF
            or entry.get("type") == "advisor"
            or (entry.get("type") == "agent" and isinstance(entry.get("version"), int))
        )

    if block.get("type") == "coordinator":
        agents = block.get("agents")
        return isinstance(agents, list) and all(reference(entry) for entry in agents)
    members = [block.get(member) for member in ("advisor", "subagents", "workflows")]
    if not all(isinstance(member, dict) and "type" in member for member in members):
        return False
    return all(
        reference(entry)
        for member in members[1:]
        for entry in (member or {}).get("predefined_agents") or []
    )


# (agent id, version) → that agent version as a session shows it (SessionThreadAgent).
Pinned = Callable[[str, int], dict[str, Any]]


def for_session(resolved: dict[str, Any] | None, pinned: Pinned) -> dict[str, Any] | None:
    """The block as a session copies it at creation (``BetaManagedAgentsSessionMultiagent``):
    each agent reference replaced by that agent version's full definition, without a
    ``multiagent`` of its own; advisors and switches stay as they are."""
    if resolved is None:
        return None

    def definition(reference: dict[str, Any]) -> dict[str, Any]:
        if reference.get("type") != "agent":
            return reference
        view = dict(pinned(reference["id"], reference["version"]))
        view.pop("multiagent", None)
        return view

    if resolved["type"] == "coordinator":
        return {**resolved, "agents": [definition(entry) for entry in resolved["agents"]]}
    copied = dict(resolved)
    for member in ("subagents", "workflows"):
        if copied[member]["type"] == "enabled":
            agents = [definition(entry) for entry in copied[member]["predefined_agents"]]
            copied[member] = {**copied[member], "predefined_agents": agents}
    return copied
