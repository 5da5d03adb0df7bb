"""The use cases answer in the shapes the SDK's response types require: multiagent blocks
resolved, session resources stamped, sessions.update taking agent and budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from application.agents import AgentService
from application.environments import EnvironmentService
from application.errors import Invalid, NotFound
from application.sessions import SessionService
from application.tenancy import Principal
from domain.agents import Agent
from domain.errors import InvalidState
from infra.event_store import EventsourcingEventStore

ALICE = Principal("tenant-a", "key-a")
BOB = Principal("tenant-b", "key-b")
BUDGET = {"type": "limit", "max_list_cost": {"amount": "2500", "currency": "USD"}}


@pytest.fixture
def agents(store: EventsourcingEventStore) -> AgentService:
    return AgentService(store)


@pytest.fixture
def environments(store: EventsourcingEventStore) -> EnvironmentService:
    return EnvironmentService(store)


@pytest.fixture
def sessions(store: EventsourcingEventStore, agents: AgentService, environments: EnvironmentService) -> SessionService:
    return SessionService(store, agents, environments)


def new_agent(agents: AgentService, who: Principal = ALICE, **fields: Any) -> dict[str, Any]:
    return agents.create(who, {"name": "a", "model": "m", **fields}).view


@pytest.fixture
def new_session(
    sessions: SessionService, agents: AgentService, environments: EnvironmentService
) -> Callable[..., dict[str, Any]]:
    def create(**fields: Any) -> dict[str, Any]:
        environment = environments.create(ALICE, {"name": "e"}).view
        body = {"agent": new_agent(agents)["id"], "environment_id": environment["id"], **fields}
        return sessions.create(ALICE, body).view

    return create


class TestMultiagent:
    def test_create_answers_the_resolved_roster(self, agents: AgentService) -> None:
        helper = new_agent(agents)
        lead = new_agent(agents, multiagent={"type": "coordinator", "agents": [helper["id"], {"type": "self"}]})
        assert lead["multiagent"] == {
            "type": "coordinator",
            "agents": [
                {"type": "agent", "id": helper["id"], "version": 1},
                {"type": "agent", "id": lead["id"], "version": 1},
            ],
        }
        assert agents.retrieve(ALICE, lead["id"])["multiagent"] == lead["multiagent"]

    def test_update_resolves_against_the_version_it_writes(self, agents: AgentService) -> None:
        lead = new_agent(agents)
        block = {"type": "multiagent_20261001", "subagents": {"type": "enabled", "predefined_agents": [{"type": "self"}]}}
        updated = agents.update(ALICE, lead["id"], {"multiagent": block}, 1).view
        assert updated["version"] == 2
        assert updated["multiagent"]["subagents"]["predefined_agents"] == [{"type": "agent", "id": lead["id"], "version": 2}]
        assert updated["multiagent"]["advisor"] == {"type": "disabled"}

    def test_a_reference_to_no_agent_is_not_found(self, agents: AgentService) -> None:
        with pytest.raises(NotFound):
            new_agent(agents, multiagent={"type": "coordinator", "agents": ["agent_011CZkYqphY8vELVzwCUpqiQ"]})

    def test_another_tenants_agent_cannot_be_referenced(self, agents: AgentService) -> None:
        theirs = new_agent(agents, BOB)
        with pytest.raises(NotFound):
            new_agent(agents, multiagent={"type": "coordinator", "agents": [theirs["id"]]})

    def test_an_archived_agent_cannot_be_referenced(self, agents: AgentService) -> None:
        helper = new_agent(agents)
        agents.archive(ALICE, helper["id"])
        with pytest.raises(Invalid):
            new_agent(agents, multiagent={"type": "coordinator", "agents": [helper["id"]]})

    def test_self_is_always_the_version_read_and_an_unchanged_roster_makes_no_version(
        self, agents: AgentService, new_session: Callable[..., dict[str, Any]], sessions: SessionService
    ) -> None:
        block = {"type": "coordinator", "agents": [{"type": "self"}]}
        lead = new_agent(agents, system="v1 prompt", multiagent=block)
        second = agents.update(ALICE, lead["id"], {"system": "v2 prompt"}, 1).view
        assert second["multiagent"]["agents"] == [{"type": "agent", "id": lead["id"], "version": 2}]
        first = agents.retrieve(ALICE, lead["id"], version=1)
        assert first["multiagent"]["agents"] == [{"type": "agent", "id": lead["id"], "version": 1}]
        assert agents.update(ALICE, lead["id"], {"multiagent": block}, 2).view["version"] == 2
        environment = new_session()["environment_id"]
        session = sessions.create(ALICE, {"agent": lead["id"], "environment_id": environment}).view
        assert session["agent"]["multiagent"]["agents"][0]["system"] == "v2 prompt"

    def test_a_block_saved_as_sent_before_blocks_were_resolved_still_starts_sessions(
        self, store: EventsourcingEventStore, agents: AgentService, new_session: Callable[..., dict[str, Any]],
        sessions: SessionService,
    ) -> None:
        helper = new_agent(agents)
        legacy = Agent(agent_id="agent_legacylegacy01", tenant_id=ALICE.tenant_id, definition={
            "name": "old", "model": {"id": "m"}, "tools": [], "multiagent": {"type": "coordinator", "agents": [helper["id"]]},
        })
        store.save(legacy)
        environment = new_session()["environment_id"]
        session = sessions.create(ALICE, {"agent": legacy.agent_id, "environment_id": environment}).view
        assert session["agent"]["multiagent"]["agents"][0]["id"] == helper["id"]
        unknown = Agent(agent_id="agent_legacylegacy02", tenant_id=ALICE.tenant_id, definition={
            "name": "old", "model": {"id": "m"}, "multiagent": {"type": "multiagent_20261001"},
        })
        store.save(unknown)
        session = sessions.create(ALICE, {"agent": unknown.agent_id, "environment_id": environment}).view
        assert session["agent"]["multiagent"]["subagents"]["type"] == "enabled"

    def test_a_session_copies_the_roster_as_full_definitions(
        self, agents: AgentService, new_session: Callable[..., dict[str, Any]], sessions: SessionService
    ) -> None:
        from anthropic.types.beta import BetaManagedAgentsSession

        helper = new_agent(agents)
        lead = new_agent(agents, multiagent={"type": "coordinator", "agents": [helper["id"], {"type": "self"}]})
        environment = new_session()["environment_id"]
        session = sessions.create(ALICE, {"agent": lead["id"], "environment_id": environment}).view
        roster = session["agent"]["multiagent"]["agents"]
        assert [(entry["id"], entry["name"]) for entry in roster] == [(helper["id"], "a"), (lead["id"], "a")]
        assert all("multiagent" not in entry for entry in roster)
        BetaManagedAgentsSession.model_validate(session)


class TestSessionResources:
    def test_resources_are_answered_with_id_times_and_mount_path(self, sessions: SessionService, new_session: Callable[..., dict[str, Any]]) -> None:
        session = new_session(
            resources=[
                {"type": "file", "file_id": "file_01"},
                {"type": "github_repository", "url": "https://github.com/acme/tools", "authorization_token": "ghp_x"},
            ],
        )
        first, second = session["resources"]
        assert first["id"].startswith("sesrsc_") and first["mount_path"] == "/mnt/session/uploads/file_01"
        assert first["created_at"] == first["updated_at"]
        assert "authorization_token" not in second
        assert sessions.retrieve(ALICE, session["id"])["resources"] == session["resources"]


class TestSessionUpdate:
    def test_agent_tools_and_mcp_servers_are_replaced(self, sessions: SessionService, new_session: Callable[..., dict[str, Any]]) -> None:
        session = new_session()
        servers = [{"type": "url", "name": "docs", "url": "https://mcp.example.com/sse"}]
        tools = [{"type": "agent_toolset_20260401"}]
        updated = sessions.update(ALICE, session["id"], {"agent": {"tools": tools, "mcp_servers": servers}}).view
        assert updated["agent"]["mcp_servers"] == servers
        assert updated["agent"]["tools"][0]["default_config"] == {"enabled": True, "permission_policy": {"type": "always_allow"}}
        assert sessions.retrieve(ALICE, session["id"])["agent"] == updated["agent"]

    def test_a_budget_is_replaced_on_a_session_created_with_one(self, sessions: SessionService, new_session: Callable[..., dict[str, Any]]) -> None:
        session = new_session(budget=BUDGET)
        raised = {"type": "limit", "max_list_cost": {"amount": "5000", "currency": "USD"}}
        updated = sessions.update(ALICE, session["id"], {"budget": raised}).view
        assert updated["budget"] == raised

    def test_a_budget_cannot_be_added_afterwards(self, sessions: SessionService, new_session: Callable[..., dict[str, Any]]) -> None:
        session = new_session()
        with pytest.raises(InvalidState, match="budget_create_only"):
            sessions.update(ALICE, session["id"], {"budget": BUDGET})
