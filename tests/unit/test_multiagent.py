"""resolve_multiagent: the resolved block the SDK's response types require."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types.beta import BetaManagedAgentsAgent
from anthropic.types.beta.beta_managed_agents_multiagent import (
    BetaManagedAgentsMultiagent,
)
from pydantic import TypeAdapter

from application.errors import Invalid, NotFound
from application.multiagent import (
    Owner,
    ReferencedAgent,
    for_session,
    resolve_multiagent,
)

OWNER = Owner("agent_owner", 3)
# id → (current version, archived, has multiagent)
AGENTS = {
    "agent_helper": (2, False, False),
    "agent_old": (1, True, False),
    "agent_lead": (4, False, True),
}
RESOLVED = TypeAdapter(BetaManagedAgentsMultiagent)


def lookup(agent_id: str, version: int | None) -> ReferencedAgent:
    if agent_id not in AGENTS:
        raise NotFound(f"agent {agent_id!r} not found")
    current, archived, has_multiagent = AGENTS[agent_id]
    if version is not None and not 1 <= version <= current:
        raise NotFound(f"agent {agent_id!r} has no version {version}")
    return ReferencedAgent(version or current, archived, has_multiagent)


def resolve(block: Any, stored: dict[str, Any] | None = None) -> Any:
    resolved = resolve_multiagent(block, lookup, OWNER, stored)
    RESOLVED.validate_python(resolved)  # the SDK accepts it in strict validation
    return resolved


def ref(agent_id: str, version: int) -> dict[str, Any]:
    return {"type": "agent", "id": agent_id, "version": version}


ENABLED_DEFAULT = {"type": "enabled", "inline_agents": {"type": "enabled"}, "predefined_agents": []}


class TestCoordinator:
    def test_every_entry_form_resolves_to_a_pinned_reference(self) -> None:
        block = {"type": "coordinator", "agents": ["agent_helper", {"type": "self"}]}
        assert resolve(block) == {"type": "coordinator", "agents": [ref("agent_helper", 2), ref("agent_owner", 3)]}

    def test_a_versioned_reference_keeps_its_version(self) -> None:
        block = {"type": "coordinator", "agents": [{"type": "agent", "id": "agent_helper", "version": 1}]}
        assert resolve(block)["agents"] == [ref("agent_helper", 1)]

    def test_an_advisor_entry_stays_an_advisor(self) -> None:
        block = {"type": "coordinator", "agents": [{"type": "advisor", "model": "claude-opus-4-7"}, "agent_helper"]}
        assert resolve(block)["agents"][0] == {"type": "advisor", "model": "claude-opus-4-7"}

    def test_an_unknown_agent_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            resolve_multiagent({"type": "coordinator", "agents": ["agent_nobody"]}, lookup, OWNER)

    def test_an_unknown_version_is_not_found(self) -> None:
        block = {"type": "coordinator", "agents": [{"type": "agent", "id": "agent_helper", "version": 9}]}
        with pytest.raises(NotFound):
            resolve_multiagent(block, lookup, OWNER)

    @pytest.mark.parametrize(
        "agents",
        [
            [],
            ["agent_helper"] * 21,
            ["agent_helper", {"type": "agent", "id": "agent_helper"}],
            [{"type": "self"}, "agent_owner"],
            [{"type": "self"}, {"type": "self"}],
            ["agent_old"],
            ["agent_lead"],
            [{"type": "advisor"}],
            [{"type": "advisor", "model": "a"}, {"type": "advisor", "model": "b"}],
            [{"type": "agent", "id": "agent_helper", "version": 0}],
            [{"type": "robot"}],
            [{"id": "agent_helper"}],
            [42],
        ],
        ids=[
            "empty", "too-many", "duplicate", "self-twice-by-id", "self-twice", "archived",
            "nested-multiagent", "advisor-without-model", "two-advisors", "version-0",
            "unknown-type", "untyped", "not-an-entry",
        ],
    )  # fmt: skip
    def test_a_roster_breaking_a_documented_rule_is_invalid(self, agents: list[Any]) -> None:
        with pytest.raises(Invalid):
            resolve_multiagent({"type": "coordinator", "agents": agents}, lookup, OWNER)


class TestMultiagent20261001:
    def test_omitted_and_null_members_take_their_defaults(self) -> None:
        expected = {
            "type": "multiagent_20261001",
            "advisor": {"type": "disabled"},
            "subagents": ENABLED_DEFAULT,
            "workflows": ENABLED_DEFAULT,
        }
        assert resolve({"type": "multiagent_20261001"}) == expected
        assert resolve({"type": "multiagent_20261001", "advisor": None, "workflows": None}) == expected

    def test_the_sdk_test_block_resolves(self) -> None:
        block = {
            "type": "multiagent_20261001",
            "advisor": {"type": "disabled"},
            "subagents": {
                "type": "enabled",
                "inline_agents": {"type": "disabled"},
                "predefined_agents": ["agent_helper"],
            },
            "workflows": {
                "type": "enabled",
                "inline_agents": {"type": "disabled"},
                "predefined_agents": [{"id": "agent_helper", "type": "agent", "version": 1}],
            },
        }
        resolved = resolve(block)
        assert resolved["subagents"] == {
            "type": "enabled",
            "inline_agents": {"type": "disabled"},
            "predefined_agents": [ref("agent_helper", 2)],
        }
        assert resolved["workflows"]["predefined_agents"] == [ref("agent_helper", 1)]

    def test_an_enabled_member_fills_in_its_defaults(self) -> None:
        resolved = resolve({"type": "multiagent_20261001", "subagents": {"type": "enabled"}})
        assert resolved["subagents"] == ENABLED_DEFAULT

    def test_self_and_null_predefined_agents(self) -> None:
        block = {
            "type": "multiagent_20261001",
            "subagents": {"type": "enabled", "predefined_agents": [{"type": "self"}]},
            "workflows": {"type": "enabled", "predefined_agents": None},
        }
        resolved = resolve(block)
        assert resolved["subagents"]["predefined_agents"] == [ref("agent_owner", 3)]
        assert resolved["workflows"]["predefined_agents"] == []

    def test_an_enabled_advisor_keeps_its_model(self) -> None:
        resolved = resolve({"type": "multiagent_20261001", "advisor": {"type": "enabled", "model": "claude-haiku-4-5"}})
        assert resolved["advisor"] == {"type": "enabled", "model": "claude-haiku-4-5"}

    def test_an_update_merges_into_a_stored_block_level_by_level(self) -> None:
        stored = resolve(
            {
                "type": "multiagent_20261001",
                "advisor": {"type": "enabled", "model": "claude-haiku-4-5"},
                "subagents": {"type": "enabled", "inline_agents": {"type": "disabled"}, "predefined_agents": ["agent_helper"]},
                "workflows": {"type": "disabled"},
            }
        )
        update = {
            "type": "multiagent_20261001",
            "subagents": {"type": "enabled", "inline_agents": {"type": "enabled"}},  # predefined kept
            "workflows": {"type": "enabled"},  # another type: omitted keys take defaults
        }
        merged = resolve(update, stored)
        assert merged["advisor"] == {"type": "enabled", "model": "claude-haiku-4-5"}  # omitted: kept
        assert merged["subagents"] == {
            "type": "enabled",
            "inline_agents": {"type": "enabled"},
            "predefined_agents": [ref("agent_helper", 2)],
        }
        assert merged["workflows"] == ENABLED_DEFAULT

    def test_a_sent_predefined_list_replaces_the_stored_one(self) -> None:
        stored = resolve({"type": "multiagent_20261001", "subagents": {"type": "enabled", "predefined_agents": ["agent_helper"]}})
        update = {"type": "multiagent_20261001", "subagents": {"type": "enabled", "predefined_agents": [{"type": "self"}]}}
        assert resolve(update, stored)["subagents"]["predefined_agents"] == [ref("agent_owner", 3)]

    def test_a_stored_block_of_another_type_is_replaced(self) -> None:
        stored = resolve({"type": "coordinator", "agents": ["agent_helper"]})
        assert resolve({"type": "multiagent_20261001"}, stored)["subagents"] == ENABLED_DEFAULT

    def test_unknown_references_are_not_found(self) -> None:
        block = {"type": "multiagent_20261001", "workflows": {"type": "enabled", "predefined_agents": ["agent_nobody"]}}
        with pytest.raises(NotFound):
            resolve_multiagent(block, lookup, OWNER)

    @pytest.mark.parametrize(
        "block",
        [
            {"subagents": {"type": "enabled", "inline_agents": {"type": "disabled"}}},
            {"subagents": {"type": "enabled", "inline_agents": {"type": "disabled"}, "predefined_agents": []}},
            {"advisor": {"type": "enabled"}},
            {"advisor": {"model": "claude-haiku-4-5"}},
            {"workflows": {"type": "sometimes"}},
            {"workflows": {"type": "enabled", "inline_agents": {"type": "maybe"}}},
            {"workflows": {"type": "enabled", "predefined_agents": ["agent_helper"] * 21}},
            {"workflows": {"type": "enabled", "predefined_agents": ["agent_old"]}},
            {"workflows": "enabled"},
        ],
        ids=[
            "inline-disabled-no-agents", "inline-disabled-empty-agents", "advisor-without-model",
            "untyped", "unknown-type", "unknown-inline-type", "too-many", "archived", "not-an-object",
        ],
    )  # fmt: skip
    def test_a_block_breaking_a_documented_rule_is_invalid(self, block: dict[str, Any]) -> None:
        with pytest.raises(Invalid):
            resolve_multiagent({"type": "multiagent_20261001", **block}, lookup, OWNER)


def test_null_stays_null() -> None:
    assert resolve_multiagent(None, lookup, OWNER) is None


@pytest.mark.parametrize("block", [{"type": "swarm"}, {}, "coordinator"])
def test_an_unknown_block_type_is_invalid(block: Any) -> None:
    with pytest.raises(Invalid):
        resolve_multiagent(block, lookup, OWNER)


def test_an_agent_carrying_a_resolved_block_passes_strict_validation() -> None:
    multiagent = resolve({"type": "coordinator", "agents": ["agent_helper", {"type": "self"}]})
    BetaManagedAgentsAgent.model_validate(
        {
            "id": "agent_owner",
            "type": "agent",
            "name": "lead",
            "version": 3,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "model": {"id": "claude-opus-4-7"},
            "execution_identity": {"type": "service_account"},
            "mcp_servers": [],
            "metadata": {},
            "skills": [],
            "tools": [],
            "multiagent": multiagent,
        }
    )


class TestForSession:
    @staticmethod
    def pinned(agent_id: str, version: int) -> dict[str, Any]:
        return {
            "type": "agent",
            "id": agent_id,
            "version": version,
            "name": agent_id.removeprefix("agent_"),
            "model": {"id": "claude-opus-4-7"},
            "execution_identity": {"type": "service_account"},
            "mcp_servers": [],
            "skills": [],
            "tools": [],
            "multiagent": {"type": "coordinator", "agents": []},  # dropped: one level only
        }

    def check(self, multiagent: Any) -> None:
        from anthropic.types.beta import BetaManagedAgentsSessionAgent

        view = {**self.pinned("agent_owner", 3), "multiagent": multiagent}
        BetaManagedAgentsSessionAgent.model_validate(view)

    def test_coordinator_references_become_full_definitions(self) -> None:
        block = resolve(
            {"type": "coordinator", "agents": ["agent_helper", {"type": "self"}, {"type": "advisor", "model": "m"}]}
        )
        copied = for_session(block, self.pinned)
        assert copied is not None
        helper, owner, advisor = copied["agents"]
        assert (helper["id"], helper["version"], helper["name"]) == ("agent_helper", 2, "helper")
        assert "multiagent" not in helper
        assert (owner["id"], owner["version"]) == ("agent_owner", 3)
        assert advisor == {"type": "advisor", "model": "m"}
        self.check(copied)

    def test_predefined_agents_become_full_definitions(self) -> None:
        block = resolve(
            {
                "type": "multiagent_20261001",
                "subagents": {"type": "enabled", "predefined_agents": ["agent_helper"]},
                "workflows": {"type": "disabled"},
            }
        )
        copied = for_session(block, self.pinned)
        assert copied is not None
        assert [agent["id"] for agent in copied["subagents"]["predefined_agents"]] == ["agent_helper"]
        assert copied["workflows"] == {"type": "disabled"}
        assert block["subagents"]["predefined_agents"] == [ref("agent_helper", 2)]  # not mutated
        self.check(copied)

    def test_null_stays_null(self) -> None:
        assert for_session(None, self.pinned) is None
