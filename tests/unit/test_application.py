"""Use cases against the in-memory event store."""

from __future__ import annotations

import pytest

from application.agents import AgentService
from application.api_keys import ApiKeyService, keyed_hash
from application.environments import EnvironmentService
from application.errors import Invalid, NotFound, Unauthorized
from application.runtime import SessionRuntime
from application.session_log import SessionLog
from application.sessions import SessionService
from application.tenancy import Principal
from domain.errors import VersionMismatch
from infra.event_store import EventsourcingEventStore

ALICE = Principal("tenant-a", "key-a")
BOB = Principal("tenant-b", "key-b")


class FailingProvider:
    name = "failing"

    def reply(self, agent, transcript):  # noqa: ANN001, ANN201
        raise TimeoutError("upstream timed out")


class EchoProvider:
    name = "echo"

    def __init__(self) -> None:
        self.transcripts = []

    def reply(self, agent, transcript):  # noqa: ANN001, ANN201
        self.transcripts.append(transcript)
        return [{"type": "text", "text": f"{agent['name']} heard {len(transcript)} turns"}]


@pytest.fixture
def store() -> EventsourcingEventStore:
    return EventsourcingEventStore({"PERSISTENCE_MODULE": "eventsourcing.popo"})


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


def test_runtime_answers_each_user_message_with_the_transcript(store, services) -> None:  # noqa: ANN001
    sessions = services[2]
    session = start_session(services, first_message=False)
    provider = EchoProvider()
    runtime = SessionRuntime(store, provider)
    message = {"type": "user.message", "content": [{"type": "text", "text": "hi"}]}

    sessions.send(ALICE, session["id"], [message])
    runtime.take_turns(session["id"])
    sessions.send(ALICE, session["id"], [message])
    runtime.take_turns(session["id"])
    runtime.take_turns(session["id"])  # nothing awaits a reply: records nothing

    events = SessionLog(store).page(ALICE, session["id"]).events
    assert [e["type"] for e in events] == [
        "user.message", "session.status_running", "agent.message", "session.status_idle",
    ] * 2
    assert events[6]["content"][0]["text"] == "bot heard 3 turns"
    assert [len(t) for t in provider.transcripts] == [1, 3]


def test_provider_failure_becomes_a_session_error_and_the_session_goes_idle(store, services) -> None:  # noqa: ANN001
    sessions = services[2]
    session = start_session(services)
    SessionRuntime(store, FailingProvider()).take_turns(session["id"])
    events = SessionLog(store).page(ALICE, session["id"]).events
    assert [e["type"] for e in events][-2:] == ["session.error", "session.status_idle"]
    assert events[-2]["error"]["type"] == "model_request_failed_error"
    assert sessions.retrieve(ALICE, session["id"])["status"] == "idle"


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


def test_a_turn_cut_short_is_resumed_and_never_answered_twice(store, services) -> None:  # noqa: ANN001
    sessions = services[2]
    # The message is recorded together with "running", then the process dies before any
    # worker takes the turn: the session is left running for start-up to resume.
    session = start_session(services)
    assert sessions.retrieve(ALICE, session["id"])["status"] == "running"

    class RacingProvider:
        """While this worker waits for its model, another worker takes the same turn."""

        name = "racing"

        def reply(self, agent, transcript):  # noqa: ANN001, ANN202
            SessionRuntime(store, EchoProvider()).take_turns(session["id"])
            return [{"type": "text", "text": "late"}]

    SessionRuntime(store, RacingProvider()).take_turns(session["id"])
    SessionRuntime(store, EchoProvider()).take_turns(session["id"])
    events = SessionLog(store).page(ALICE, session["id"]).events
    assert [e["type"] for e in events] == [
        "user.message", "session.status_running", "agent.message", "session.status_idle",
    ]


def test_a_message_sent_during_a_turn_is_answered_in_a_turn_of_its_own(store, services) -> None:  # noqa: ANN001
    sessions = services[2]
    session = start_session(services)
    second = {"type": "user.message", "content": [{"type": "text", "text": "and another thing"}]}

    class InterruptedByAUser(EchoProvider):
        """The user sends a second message while the model works on the first."""

        def reply(self, agent, transcript):  # noqa: ANN001, ANN201
            if len(self.transcripts) == 0:
                sessions.send(ALICE, session["id"], [second])
            return super().reply(agent, transcript)

    provider = InterruptedByAUser()
    SessionRuntime(store, provider).take_turns(session["id"])
    events = SessionLog(store).page(ALICE, session["id"]).events
    assert [e["type"] for e in events] == [
        "user.message", "session.status_running", "user.message", "agent.message",
        "agent.message", "session.status_idle",
    ]
    assert [len(t) for t in provider.transcripts] == [1, 3]
    assert sessions.retrieve(ALICE, session["id"])["status"] == "idle"


def test_send_answers_only_the_events_the_client_sent(store, services) -> None:  # noqa: ANN001
    sessions = services[2]
    session = start_session(services, first_message=False)
    recorded = sessions.send(ALICE, session["id"], [{"type": "user.message", "content": []}])
    assert [e["type"] for e in recorded] == ["user.message"]
    events = SessionLog(store).page(ALICE, session["id"]).events
    assert [e["type"] for e in events] == ["user.message", "session.status_running"]
