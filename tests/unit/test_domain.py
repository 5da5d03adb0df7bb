"""Aggregates on their own: invariants and the events they record."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.domain import Aggregate

from domain.agents import Agent, merge_definition
from domain.api_keys import ApiKey
from domain.environment_config import Networking, Packages
from domain.environment_keys import EnvironmentKey
from domain.environments import Environment
from domain.errors import Archived, InvalidState, VersionMismatch
from domain.model_cards import ModelCard
from domain.sessions import Session
from domain.work_items import WorkItem


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
    assert session.wants_turn
    assert session.record("session.status_running", "sevt_2", {}) == 2
    assert session.status == "running"
    session.record("agent.message", "sevt_3", {"content": []})
    session.record("session.status_idle", "sevt_4", {"stop_reason": {"type": "end_turn"}})
    assert session.status == "idle"
    assert session.stop_reason == {"type": "end_turn"}
    assert not session.wants_turn
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


def test_a_custom_tool_call_blocks_until_its_result_arrives_then_the_turn_resumes() -> None:
    session = new_session()
    session.accept_user_event("user.message", "sevt_1", {"content": []})
    assert session.start_turn("sevt_2") and session.wants_turn
    session.begin_request("sevt_span")
    assert session.finish_request(
        "sevt_span",
        [("agent.custom_tool_use", "sevt_a", {"name": "lookup", "input": {}}),
         ("agent.custom_tool_use", "sevt_b", {"name": "lookup", "input": {}})],
        "sevt_end", {"model_usage": {"input_tokens": 10, "output_tokens": 2}}, {}, 30, True,
    )
    assert not session.wants_turn and set(session.blockers) == {"sevt_a", "sevt_b"}
    # the span is closed once: a second finish (a worker that lost its lease) records nothing
    assert not session.finish_request("sevt_span", [], "sevt_x", {}, {}, 0, True)
    session.go_idle("sevt_idle", {"type": "requires_action", "event_ids": ["sevt_a", "sevt_b"]})
    with pytest.raises(InvalidState):
        session.check_client_event("user.custom_tool_result", {"custom_tool_use_id": "sevt_nope"})
    with pytest.raises(InvalidState):
        session.check_client_event("user.tool_confirmation", {"tool_use_id": "sevt_a"})
    session.accept_user_event("user.custom_tool_result", "sevt_r1", {"custom_tool_use_id": "sevt_a"})
    assert not session.wants_turn and session.requires_action_again("sevt_i2")
    assert session.stop_reason == {"type": "requires_action", "event_ids": ["sevt_b"]}
    session.accept_user_event("user.custom_tool_result", "sevt_r2", {"custom_tool_use_id": "sevt_b"})
    assert session.wants_turn and session.start_turn("sevt_run")
    assert session.usage()["input_tokens"] == 10 and session.usage()["output_tokens"] == 2


def test_a_budget_stops_turns_and_raising_it_resumes() -> None:
    session = Session(
        session_id="sesn_budget0001", tenant_id="t1", agent={}, environment_id="env_x",
        details={"budget": {"type": "limit", "max_list_cost": {"amount": "1", "currency": "USD"}}},
    )
    session.accept_user_event("user.message", "sevt_1", {"content": []})
    session.start_turn("sevt_2")
    session.begin_request("sevt_s")
    session.finish_request("sevt_s", [], "sevt_e", {"model_usage": {}}, {}, 10_000, True)  # one cent
    assert session.over_budget
    session.go_idle("sevt_i", {"type": "budget_reached"})
    assert not session.wants_turn and session.usage()["list_cost"] == {"amount": "1", "currency": "USD"}
    session.update({"budget": {"type": "limit", "max_list_cost": {"amount": "500", "currency": "USD"}}})
    assert session.wants_turn and not session.over_budget


def test_an_unpriced_model_reaches_any_budget() -> None:
    session = Session(
        session_id="sesn_budget0002", tenant_id="t1", agent={}, environment_id="env_x",
        details={"budget": {"type": "limit", "max_list_cost": {"amount": "100000", "currency": "USD"}}},
    )
    session.accept_user_event("user.message", "sevt_1", {"content": []})
    session.begin_request("sevt_s")
    session.finish_request("sevt_s", [], "sevt_e", {"model_usage": {}}, {}, 0, False)
    assert session.over_budget


def test_an_interrupt_flushes_input_no_request_saw() -> None:
    session = new_session()
    session.accept_user_event("user.message", "sevt_1", {"content": []})
    session.start_turn("sevt_2")
    session.begin_request("sevt_s")  # seq 3 saw the first message
    session.accept_user_event("user.message", "sevt_4", {"content": []})
    session.accept_user_event("user.interrupt", "sevt_5", {})
    assert session.interrupt_requested
    assert session.close_request("sevt_6", is_error=False)
    assert session.handle_interrupt() is False  # nothing sent after the interrupt
    assert not session.interrupt_requested
    session.go_idle("sevt_7", {"type": "end_turn"})
    assert session.status == "idle" and not session.wants_turn and session.open_span is None
    assert session.collect_events()[-2].flushed == [4]


def test_a_message_after_the_interrupt_redirects_the_turn() -> None:
    session = new_session()
    session.accept_user_event("user.message", "sevt_1", {"content": []})
    session.start_turn("sevt_2")
    session.begin_request("sevt_s")
    session.accept_user_event("user.interrupt", "sevt_4", {})
    session.accept_user_event("user.message", "sevt_5", {"content": []})
    session.close_request("sevt_6", is_error=False)
    assert session.handle_interrupt() is True
    assert session.wants_turn and session.status == "running"


def test_environment_config_rules_are_the_ones_a_sandbox_parses_with() -> None:
    limited = Networking.parse({"type": "limited", "allowed_hosts": ["Example.COM.", "*.svc.example.org", "::1"]})
    assert limited.allowed_hosts == ("example.com", "*.svc.example.org", "::1")
    for host in ("exa mple.com", " example.com", "https://example.com", "example.com/x", "example.com:443", "*", "", "a..b", "-a.com"):
        with pytest.raises(ValueError, match="allowed_hosts"):
            Networking.parse({"type": "limited", "allowed_hosts": [host]})
    with pytest.raises(ValueError, match="allowed_hosts"):
        Networking.parse({"type": "limited", "allowed_hosts": "example.com"})
    assert Packages.parse({"pip": ["string"], "apt": []}).by_manager == {"pip": ("string",)}
    for name in ("foo bar", "-e x", " ", "", "a\x7fb", 5):
        with pytest.raises(ValueError, match="packages.pip"):
            Packages.parse({"pip": [name]})


class Stamps:
    """Records an aggregate's events step by step, checking the times each step stamps."""

    def __init__(self, aggregate: Aggregate) -> None:
        self.aggregate = aggregate
        self.events: list[Any] = list(aggregate.collect_events())

    def step(self, act: Callable[[], object], *stamps: str) -> None:
        time.sleep(0.002)  # events recorded microseconds apart may share a timestamp
        act()
        self.events.extend(self.aggregate.collect_events())
        stamping, previous = self.events[-1], self.events[-2]
        for name in stamps:
            assert getattr(self.aggregate, name) == stamping.timestamp, f"{name} is not {type(stamping).__name__}'s time"
            assert stamping.timestamp > previous.timestamp

    def replayed(self) -> Any:
        """The aggregate as a load from the store rebuilds it."""
        aggregate = None
        for recorded in self.events:
            aggregate = recorded.mutate(aggregate)
        return aggregate


def test_an_agent_is_archived_at_its_archive_events_own_time() -> None:
    stamps = Stamps(new_agent())
    stamps.step(lambda: stamps.aggregate.update({"name": "b"}))
    stamps.step(stamps.aggregate.archive, "archived_at")
    assert stamps.replayed().archived_at == stamps.events[-1].timestamp


def test_an_environment_is_archived_at_its_archive_events_own_time() -> None:
    stamps = Stamps(Environment(environment_id="env_abcdefgh12", tenant_id="t1", definition={"name": "e"}))
    stamps.step(stamps.aggregate.archive, "archived_at")
    assert stamps.replayed().archived_at == stamps.events[-1].timestamp


def test_keys_are_revoked_at_their_revocation_events_own_time() -> None:
    api_key = ApiKey(key_hash="h1", key_id="apikey_abcdefgh12", tenant_id="t1", name="k", role="admin", hint="abcd")
    environment_key = EnvironmentKey(
        key_id="envkey_abcdefgh12", environment_id="env_x", tenant_id="t1", name=None, key_hash="h2", hint="abcd"
    )
    for key in (api_key, environment_key):
        stamps = Stamps(key)
        stamps.step(key.revoke, "revoked_at")
        assert stamps.replayed().revoked_at == stamps.events[-1].timestamp


def test_a_model_card_is_deleted_at_its_deletion_events_own_time() -> None:
    card = ModelCard(
        model_card_id="mcard_abcdefgh12", tenant_id="t1", model_id="fast", provider="ant", model="claude",
        base_url=None, sealed_api_key="sealed", api_key_preview="abcd", header_names=[], sealed_headers=None,
        probe={"ok": True},
    )
    stamps = Stamps(card)
    stamps.step(card.delete, "deleted_at")
    assert stamps.replayed().deleted_at == stamps.events[-1].timestamp


def test_a_work_item_stamps_each_move_with_that_moves_own_time() -> None:
    item = WorkItem(work_id="work_abcdefgh12", tenant_id="t1", environment_id="env_x", session_id="sesn_x", hosting="self_hosted")
    stamps = Stamps(item)
    stamps.step(lambda: item.claim_for("worker_1", "new"), "claimed_at")
    stamps.step(item.acknowledge, "acknowledged_at")
    stamps.step(item.start, "started_at")
    stamps.step(lambda: item.stop(force=False, reason="done"), "stop_requested_at")
    stamps.step(lambda: item.stop(force=True, reason="done"), "stopped_at")
    times = [recorded.timestamp for recorded in stamps.events[1:]]
    moves = ("claimed_at", "acknowledged_at", "started_at", "stop_requested_at", "stopped_at")
    assert [getattr(stamps.replayed(), name) for name in moves] == [getattr(item, name) for name in moves] == times

    # Stopped at once without a request: the stop is also when it was asked to stop.
    queued = WorkItem(work_id="work_abcdefgh13", tenant_id="t1", environment_id="env_x", session_id="sesn_x", hosting="cloud")
    stamps = Stamps(queued)
    stamps.step(lambda: queued.stop(force=False, reason="archived"), "stopped_at", "stop_requested_at")
    assert stamps.replayed().stop_requested_at == stamps.events[-1].timestamp
