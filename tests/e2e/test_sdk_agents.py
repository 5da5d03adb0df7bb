"""Agents and environments through the official anthropic SDK against a real server."""

from __future__ import annotations

import anthropic
import pytest


def test_agent_lifecycle_create_update_versions_archive(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(
        name="researcher",
        model="claude-opus-4-7",
        system="Be precise.",
        metadata={"team": "search"},
        tools=[{"type": "agent_toolset_20260401"}],
    )
    assert agent.id.startswith("agent_")
    assert agent.type == "agent"
    assert agent.version == 1
    assert agent.model.id == "claude-opus-4-7"
    assert agent.execution_identity.type == "service_account"
    assert agent.tools[0].default_config.permission_policy.type == "always_allow"

    updated = client.beta.agents.update(agent.id, version=1, system="Be brief.", metadata={"team": None, "tier": "1"})
    assert updated.version == 2
    assert updated.system == "Be brief."
    assert updated.metadata == {"tier": "1"}
    assert updated.name == "researcher"

    unchanged = client.beta.agents.update(agent.id, version=2, system="Be brief.")
    assert unchanged.version == 2, "an update that changes nothing must not bump the version"

    assert client.beta.agents.retrieve(agent.id).version == 2
    first = client.beta.agents.retrieve(agent.id, version=1)
    assert (first.version, first.system, first.metadata) == (1, "Be precise.", {"team": "search"})

    versions = list(client.beta.agents.versions.list(agent.id))
    assert [v.version for v in versions] == [2, 1]
    assert [v.system for v in versions] == ["Be brief.", "Be precise."]

    listed = [a.id for a in client.beta.agents.list()]
    assert agent.id in listed

    archived = client.beta.agents.archive(agent.id)
    assert archived.archived_at is not None
    assert agent.id not in [a.id for a in client.beta.agents.list()]
    assert agent.id in [a.id for a in client.beta.agents.list(include_archived=True)]

    with pytest.raises(anthropic.BadRequestError):
        client.beta.agents.update(agent.id, name="too late")


def test_stale_version_is_a_409_and_changes_nothing(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(name="a", model="claude-opus-4-7")
    client.beta.agents.update(agent.id, version=1, name="b")
    with pytest.raises(anthropic.ConflictError) as caught:
        client.beta.agents.update(agent.id, version=1, name="c")
    assert caught.value.body["error"]["type"] == "conflict_error"
    assert client.beta.agents.retrieve(agent.id).name == "b"


def test_agent_list_pages_through_everything(client: anthropic.Anthropic) -> None:
    created = {client.beta.agents.create(name=f"agent-{i}", model="m").id for i in range(7)}
    first_page = client.beta.agents.list(limit=3)
    assert len(first_page.data) == 3 and first_page.next_page
    assert {a.id for a in client.beta.agents.list(limit=3)} == created  # auto-pagination


def test_unknown_agent_is_404(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client.beta.agents.retrieve("agent_doesnotexist000")
    with pytest.raises(anthropic.NotFoundError):
        client.beta.agents.retrieve("not-even-an-id")


def test_environment_lifecycle(client: anthropic.Anthropic) -> None:
    env = client.beta.environments.create(name="python", config={"type": "cloud", "packages": {"pip": ["httpx"]}})
    assert env.id.startswith("env_")
    assert env.config.packages.pip == ["httpx"]
    assert env.config.networking.type == "unrestricted"
    renamed = client.beta.environments.update(env.id, name="python-3")
    assert renamed.name == "python-3"
    assert env.id in [e.id for e in client.beta.environments.list()]
    deleted = client.beta.environments.delete(env.id)
    assert deleted.type == "environment_deleted"
    assert env.id not in [e.id for e in client.beta.environments.list()]
