"""sessions.update takes what the SDK documents as updatable (agent tools / MCP servers,
budget, vault_ids), and the list shows the change like retrieve does."""

from __future__ import annotations

import anthropic
import pytest

BUDGET = {"type": "limit", "max_list_cost": {"amount": "2500", "currency": "USD"}}
SERVERS = [{"name": "docs", "type": "url", "url": "https://mcp.example.com/sse"}]


def _session(client: anthropic.Anthropic, **fields: object) -> str:
    agent = client.beta.agents.create(name="helper", model="claude-opus-4-7")
    env = client.beta.environments.create(name="default")
    return client.beta.sessions.create(agent=agent.id, environment_id=env.id, **fields).id  # type: ignore[arg-type]


def test_agent_budget_and_vaults_are_updated_everywhere(client: anthropic.Anthropic) -> None:
    session_id = _session(client, budget=BUDGET)
    vault = client.beta.vaults.create(display_name="update")
    raised = {"type": "limit", "max_list_cost": {"amount": "5000", "currency": "USD"}}
    updated = client.beta.sessions.update(
        session_id,
        agent={"mcp_servers": SERVERS, "tools": [{"type": "agent_toolset_20260401"}]},
        budget=raised,  # type: ignore[arg-type]
        vault_ids=[vault.id],
    )
    assert [server.name for server in updated.agent.mcp_servers] == ["docs"]
    assert updated.agent.tools[0].type == "agent_toolset_20260401"
    assert updated.budget is not None and updated.budget.max_list_cost.amount == "5000"
    listed = next(s for s in client.beta.sessions.list() if s.id == session_id)
    retrieved = client.beta.sessions.retrieve(session_id)
    for view in (listed, retrieved):
        assert view.agent.mcp_servers == updated.agent.mcp_servers
        assert view.budget == updated.budget
        assert view.vault_ids == [vault.id]


def test_a_budget_cannot_be_added_to_a_session_created_without_one(client: anthropic.Anthropic) -> None:
    session_id = _session(client)
    with pytest.raises(anthropic.BadRequestError):
        client.beta.sessions.update(session_id, budget=BUDGET)  # type: ignore[arg-type]


def test_a_removed_budget_cannot_be_added_again(client: anthropic.Anthropic) -> None:
    session_id = _session(client, budget=BUDGET)
    assert client.beta.sessions.update(session_id, budget=None).budget is None
    with pytest.raises(anthropic.BadRequestError, match="budget_create_only"):
        client.beta.sessions.update(session_id, budget=BUDGET)  # type: ignore[arg-type]
