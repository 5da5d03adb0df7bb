"""The messages the relay builds from recorded events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from application.outbox import _EVENT_ID_NAMESPACE, build_message, event_id, is_published
from application.relay import Relay
from domain.agents import Agent
from domain.sessions import Session
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventsourcingEventStore]:
    opened = EventsourcingEventStore(event_store_env(Settings(data_dir=tmp_path)))
    yield opened
    opened.close()


def test_an_event_id_is_the_uuid5_of_the_aggregate_and_version() -> None:
    for version in (1, 2, 10**9):
        originator = uuid.uuid4()
        expected = str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{originator}/{version}"))
        assert event_id(originator, version) == expected
        assert event_id(originator, version, str(originator)) == expected


def test_the_relay_builds_from_recorded_fields_the_message_the_decoded_event_gives(store: EventsourcingEventStore) -> None:
    agent = Agent(agent_id="agent_outbox000001", tenant_id="tenant1", definition={"name": "a"})
    agent.update({"name": "b"})
    session = Session(session_id="sesn_outbox0000001", tenant_id="tenant2", agent={"id": "agent_x", "version": 1}, environment_id="env_x", details={})
    session.accept_user_event("user.message", "sevt_1", {"content": [{"type": "text", "text": "hi"}]})
    store.save(agent, session)
    relay = Relay(store, publisher=None, position=None, wait_for_change=lambda _: None)  # type: ignore[arg-type]

    notifications = [n for n in store.notifications(0, 100) if is_published(n.topic)]
    built = [relay._message(n) for n in notifications]
    decoded = [
        build_message(n.id, n.originator_id, n.originator_version, n.topic, store.state_of(n), event, tenant, "agentry")
        for n, event, tenant in (
            (n, store.decode(n), store.load(n.originator_id).tenant_id) for n in notifications
        )
    ]
    assert built == decoded
    assert [m.body["event_type"] for m in built][-2:] == ["Session.Started", "user.message"]
    assert built[-1].body["seq"] == 1 and built[-1].body["tenant"] == "tenant2"
