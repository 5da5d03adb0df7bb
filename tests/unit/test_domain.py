"""Aggregates on their own: invariants and the events they record."""

from __future__ import annotations

import pytest

from domain.agents import Agent, merge_definition
from domain.errors import Archived, InvalidState, VersionMismatch
from domain.sessions import Session


def new_agent() -> Agent:
    return Agent(agent_id="agent_abcdefgh12", tenant_id="t1", definition={"name": "a", "metadata": {"k": "v"}})


def test_merge_patches_metadata_and_replaces_other_fields() -> None:
    merged = merge_definition({"name": "a", "metadata": {"x": "1", "y": "2"}}, {"name": "b", "metadata": {"x": None, "z": "3"}})
    assert merged == {"name": "b", "metadata": {"y": "2", "z": "3"}}


def test_agent_update_bumps_version_only_on_change() -> None:
    agent = new_agent()
    assert agent.update({"name": "b"}) is True
    assert agent.agent_version == 2
    assert agent.update({"name": "b"}) is False
    assert agent.agent_version == 2
    assert [type(e).__name__ for e in agent.collect_events()] == ["Created", "Updated"]


def test_agent_update_checks_expected_version() -> None:
    agent = new_agent()
    agent.update({"name": "b"}, expected_version=1)
    with pytest.raises(VersionMismatch) as caught:
        agent.update({"name": "c"}, expected_version=1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)


def test_archived_agent_refuses_updates_and_archives_once() -> None:
    agent = new_agent()
    assert agent.archive() is True
    assert agent.archive() is False
    assert agent.archived_at is not None
    with pytest.raises(Archived):
        agent.update({"name": "z"})


def new_session() -> Session:
    return Session(session_id="sesn_abcdefgh12", tenant_id="t1", agent={"id": "agent_x", "version": 1}, environment_id="env_x", details={})


def test_session_public_events_get_consecutive_seqs_and_drive_status() -> None:
    session = new_session()
    assert session.status == "idle"
    assert session.accept_user_event("user.message", "sevt_1", {"content": []}) == 1
    assert session.awaits_reply
    assert session.record("session.status_running", "sevt_2", {}) == 2
    assert session.status == "running"
    session.record("agent.message", "sevt_3", {"content": []})
    session.record("session.status_idle", "sevt_4", {"stop_reason": {"type": "end_turn"}})
    assert session.status == "idle"
    assert session.stop_reason == {"type": "end_turn"}
    assert not session.awaits_reply
    session.update({"title": "renamed"})  # lifecycle events take no seq
    assert session.accept_user_event("user.message", "sevt_5", {"content": []}) == 5


def test_clients_cannot_send_agent_or_session_events() -> None:
    session = new_session()
    for event_type in ("agent.message", "session.status_idle", "session.deleted", "nonsense"):
        with pytest.raises(InvalidState):
            session.accept_user_event(event_type, "sevt_x", {})
    assert session.last_seq == 0


def test_terminated_and_deleted_sessions_accept_nothing() -> None:
    session = new_session()
    session.record("session.status_terminated", "sevt_1", {})
    with pytest.raises(InvalidState):
        session.accept_user_event("user.message", "sevt_2", {"content": []})

    other = new_session()
    assert other.delete("sevt_d") is True
    assert other.delete("sevt_e") is False
    with pytest.raises(InvalidState):
        other.accept_user_event("user.message", "sevt_2", {"content": []})


def test_running_session_cannot_be_deleted() -> None:
    session = new_session()
    session.record("session.status_running", "sevt_1", {})
    with pytest.raises(InvalidState):
        session.delete("sevt_2")


def test_a_turn_is_answered_at_most_once_and_idles_only_when_caught_up() -> None:
    session = new_session()
    first = session.accept_user_event("user.message", "sevt_1", {"content": []})
    assert session.start_turn("sevt_2") is True
    assert session.start_turn("sevt_x") is False  # already running
    second = session.accept_user_event("user.message", "sevt_3", {"content": []})

    assert session.answer(first, [("agent.message", "sevt_4", {"content": []})], "sevt_5") is True
    assert session.status == "running" and session.awaits_reply  # the second message waits
    assert session.answer(first, [("agent.message", "sevt_6", {"content": []})], "sevt_7") is False

    assert session.answer(second, [("agent.message", "sevt_8", {"content": []})], "sevt_9") is True
    assert session.status == "idle" and not session.awaits_reply
    assert session.last_seq == 6

