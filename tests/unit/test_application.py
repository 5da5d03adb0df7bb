"""Use cases against the in-memory event store."""

from __future__ import annotations

import time

import pytest

from application.agents import AgentService
from application.api_keys import ApiKeyService, keyed_hash
from application.environments import EnvironmentService
from application.errors import Invalid, NotFound, Unauthorized
from application.session_log import SessionLog
from application.sessions import SessionService
from application.tenancy import Principal
from domain.errors import VersionMismatch
from infra.event_store import EventsourcingEventStore

ALICE = Principal("tenant-a", "key-a")
BOB = Principal("tenant-b", "key-b")


@pytest.fixture
def services(store: EventsourcingEventStore):  # noqa: ANN201
    agents = AgentService(store)
    environments = EnvironmentService(store)
    sessions = SessionService(store, agents, environments)
    return agents, environments, sessions


def start_session(services, first_message: bool = True) -> dict:  # noqa: ANN001
    """A session on a new agent named "bot", optionally with one user message sent."""
    agents, environments, sessions = services
    agent = agents.create(ALICE, {"name": "bot", "model": "m"}).view
    env = environments.create(ALICE, {"name": "e"}).view
    session = sessions.create(ALICE, {"agent": agent["id"], "environment_id": env["id"]}).view
    if first_message:
        sessions.send(ALICE, session["id"], [{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}])
    return session


def test_tenants_cannot_see_each_others_resources(services) -> None:  # noqa: ANN001
    agents, _, _ = services
    view = agents.create(ALICE, {"name": "a", "model": "m"}).view
    with pytest.raises(NotFound):
        agents.retrieve(BOB, view["id"])
    with pytest.raises(NotFound):
        agents.update(BOB, view["id"], {"name": "x"}, None)


def test_update_with_stale_version_is_a_conflict(services) -> None:  # noqa: ANN001
    agents, _, _ = services
    view = agents.create(ALICE, {"name": "a", "model": "m"}).view
    agents.update(ALICE, view["id"], {"name": "b"}, 1)
    with pytest.raises(VersionMismatch):
        agents.update(ALICE, view["id"], {"name": "c"}, 1)


def test_model_and_tools_are_answered_in_full_form(services) -> None:  # noqa: ANN001
    agents, _, _ = services
    view = agents.create(
        ALICE,
        {
            "name": "a",
            "model": {"id": "m", "effort": "high"},
            "tools": [{"type": "agent_toolset_20260401", "configs": [{"name": "bash", "enabled": False}]}],
            "skills": [{"type": "anthropic", "skill_id": "pdf"}],
        },
    ).view
    assert view["model"] == {"id": "m", "effort": {"type": "high"}}
    toolset = view["tools"][0]
    assert toolset["default_config"] == {"enabled": True, "permission_policy": {"type": "always_allow"}}
    assert toolset["configs"] == [
        {"name": "bash", "type": "bash", "enabled": False, "permission_policy": {"type": "always_allow"}}
    ]
    assert view["skills"][0]["version"] == "latest"


def test_sessions_need_a_live_agent_and_environment(services) -> None:  # noqa: ANN001
    agents, environments, sessions = services
    agent = agents.create(ALICE, {"name": "a", "model": "m"}).view
    env = environments.create(ALICE, {"name": "e"}).view
    with pytest.raises(NotFound):
        sessions.create(ALICE, {"agent": agent["id"], "environment_id": "env_missing0000"})
    with pytest.raises(NotFound):
        sessions.create(ALICE, {"agent": {"id": agent["id"], "version": 9}, "environment_id": env["id"]})
    agents.archive(ALICE, agent["id"])
    with pytest.raises(Invalid):
        sessions.create(ALICE, {"agent": agent["id"], "environment_id": env["id"]})


def test_api_keys_are_stored_hashed_and_authenticate(store: EventsourcingEventStore) -> None:
    keys = ApiKeyService(store, keyed_hash("s" * 32))
    principal = keys.issue("agentry-secret-value", name="k", tenant_id="t9")
    assert keys.authenticate("agentry-secret-value") == principal
    assert keys.issue("agentry-secret-value", name="again") == principal  # idempotent
    with pytest.raises(Unauthorized):
        keys.authenticate("agentry-other")
    with pytest.raises(Unauthorized):
        keys.authenticate(None)
    for notification in store.notifications(0, 100):
        assert b"agentry-secret-value" not in notification.state


def test_send_answers_only_the_events_the_client_sent(store, services) -> None:  # noqa: ANN001
    sessions = services[2]
    session = start_session(services, first_message=False)
    recorded = sessions.send(ALICE, session["id"], [{"type": "user.message", "content": []}])
    assert [e["type"] for e in recorded] == ["user.message"]
    events = SessionLog(store).page(ALICE, session["id"]).events
    assert [e["type"] for e in events] == ["user.message", "session.status_running", "span.model_request_start"]


def test_a_session_is_archived_at_the_archive_events_own_time(services) -> None:  # noqa: ANN001
    _, _, sessions = services
    before = sessions.retrieve(ALICE, start_session(services)["id"])
    time.sleep(0.01)
    sessions.archive(ALICE, before["id"])
    after = sessions.retrieve(ALICE, before["id"])
    assert after["archived_at"] > before["updated_at"], "not the time of the event before it"
    assert after["archived_at"] == after["updated_at"]
