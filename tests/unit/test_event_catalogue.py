"""The event catalogue covers every stored event class with an explicit schema version, and
a v1 ``Session.Started`` written in the old shape still loads (upcast to v2)."""

from __future__ import annotations

import inspect
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent

import domain.agents
import domain.api_keys
import domain.environment_keys
import domain.environments
import domain.knowledge
import domain.memory
import domain.model_cards
import domain.notifications
import domain.sessions
import domain.skills
import domain.vaults
import domain.webhooks
import domain.work_items
from application.outbox import SECRET_FIELDS
from domain.agents import Agent
from domain.ids import stream_id
from domain.sessions import Session
from infra.event_store import EventsourcingEventStore
from interfaces import event_catalogue
from interfaces.event_catalogue import UndescribableField, by_topic, catalogue
from tests.support.event_validation import stored_event_problems

DOMAIN_MODULES = (domain.agents, domain.environments, domain.sessions, domain.api_keys, domain.model_cards,
    domain.environment_keys, domain.work_items, domain.vaults, domain.webhooks, domain.notifications,
    domain.skills,
    domain.knowledge,
    domain.memory,
)


def _store(tmp_path: Path) -> EventsourcingEventStore:
    return EventsourcingEventStore(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "events.db"), "CREATE_TABLE": "y"}
    )


def _validate_all(store: EventsourcingEventStore) -> int:
    schemas = by_topic()
    count = 0
    for notification in store.notifications(0, 10_000):
        schema = schemas[notification.topic].schema
        errors = [error.message for error in jsonschema_rs.validator_for(schema).iter_errors(store.state_of(notification))]
        assert not errors, (notification.topic, errors)
        count += 1
    return count


def test_every_event_class_of_the_domain_is_in_the_catalogue_with_a_version() -> None:
    described = {event.cls for event in catalogue()}
    for module in DOMAIN_MODULES:
        for _, aggregate in inspect.getmembers(module, inspect.isclass):
            if not issubclass(aggregate, Aggregate) or aggregate.__module__ != module.__name__:
                continue
            for name, value in vars(aggregate).items():
                if isinstance(value, type) and issubclass(value, Aggregate.Event) and name not in ("Event", "Created"):
                    assert value in described, f"{aggregate.__name__}.{name} is missing from the catalogue"
    public = {event.name for event in catalogue() if hasattr(event.cls, "public_type")}
    assert public >= set(domain.sessions.EVENT_CLASS_BY_TYPE) | {"session.deleted"}
    versions = {event.name: event.version for event in catalogue()}
    assert versions["Session.Started"] == 2
    assert all(version >= 1 for version in versions.values())


def test_environment_key_events_are_catalogued_but_never_published() -> None:
    """API keys' events are published (the organization's audit trail), their hash never:
    ``key_hash`` is a secret field the relay and the AsyncAPI document leave out."""
    for described in catalogue():
        if described.topic.startswith("domain.environment_keys:") or described.topic == "domain.sessions:Session.ThinkingKept":
            assert described.kafka_topic is None
        else:
            assert described.kafka_topic in {
                "agentry.agents", "agentry.environments", "agentry.sessions", "agentry.model_cards",
                "agentry.work_items", "agentry.vaults", "agentry.workspaces", "agentry.api_keys",
                "agentry.rate_limits", "agentry.people", "agentry.tasks", "agentry.boards", "agentry.webhooks", "agentry.notifications",
                "agentry.skills",
                "agentry.knowledge",
                "agentry.memory_stores",
                "agentry.files",
            }  # fmt: skip
    issued = next(event for event in catalogue() if event.name == "ApiKey.Issued")
    assert issued.kafka_topic == "agentry.api_keys" and "key_hash" in SECRET_FIELDS
    # A webhook endpoint's signing secret travels sealed in its events, and not even so to Kafka.
    assert "ciphertext" in SECRET_FIELDS


def test_a_field_the_catalogue_cannot_describe_fails_loudly() -> None:
    class Odd(Aggregate):
        @event("Happened")
        def happen(self, value: complex) -> None:
            pass

    with pytest.raises(UndescribableField, match="complex"):
        event_catalogue._state_schema(Odd.Happened)  # type: ignore[attr-defined]


def test_events_as_stored_validate_against_their_schemas(tmp_path: Path) -> None:
    store = _store(tmp_path)
    agent = Agent(agent_id="agent_abcdefgh", tenant_id="t", definition={"name": "a"})
    agent.update({"name": "b"})
    agent.archive()
    session = Session(
        session_id="sesn_abcdefgh",
        tenant_id="t",
        agent={"id": "agent_abcdefgh", "version": 1},
        environment_id="env_abcdefgh",
        details={"resources": [{"type": "file", "file_id": "f1", "id": "sesrsc_x", "created_at": "c", "updated_at": "u"}]},
    )
    session.accept_user_event("user.message", "sevt_1", {"content": [{"type": "text", "text": "hi"}]})
    store.save(agent, session)
    assert _validate_all(store) == 5
    started = store.notifications(0, 10)[3]
    assert started.topic == "domain.sessions:Session.Started"
    assert store.state_of(started)["class_version"] == 2
    store.close()


def _v1_started_state(session_id: str, created: datetime, resources: list[dict[str, Any]]) -> bytes:
    """Exactly what the v1 class stored: no ``class_version``, resources as the client sent them."""
    return orjson.dumps(
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": created.isoformat()},
            "originator_topic": "domain.sessions:Session",
            "session_id": session_id,
            "tenant_id": "default",
            "agent": {"type": "agent", "id": "agent_abcdefgh", "version": 1},
            "environment_id": "env_abcdefgh",
            "details": {"title": "old", "resources": resources},
        }
    )


def test_a_v1_session_started_loads_with_resource_ids_and_timestamps(tmp_path: Path) -> None:
    session_id = "sesn_oldoldoldold"
    created = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    resources = [
        {"type": "file", "file_id": "file_1", "mount_path": "/a"},
        {"type": "github_repository", "url": "https://example.invalid/r.git"},
    ]
    store = _store(tmp_path)
    store.app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=stream_id(session_id),
                originator_version=1,
                topic="domain.sessions:Session.Started",
                state=_v1_started_state(session_id, created, resources),
            )
        ]
    )
    # The stored v1 state is valid as v1, not as v2: the catalogue describes the current version.
    (notification,) = store.notifications(0, 10)
    assert "class_version" not in store.state_of(notification)

    session = store.load(stream_id(session_id))
    upcast = session.details["resources"]
    assert [r["type"] for r in upcast] == ["file", "github_repository"]
    assert upcast[0]["file_id"] == "file_1" and upcast[0]["mount_path"] == "/a"
    for resource in upcast:
        assert resource["id"].startswith("sesrsc_")
        assert resource["created_at"] == resource["updated_at"] == "2026-03-01T12:30:15.123456Z"
    assert upcast[0]["id"] != upcast[1]["id"]
    assert session.details["title"] == "old"
    assert session.created_on == created
    store.close()

    # Deterministic: another process loading the same stored event gives the same ids.
    again = _store(tmp_path)
    assert again.load(stream_id(session_id)).details["resources"] == upcast
    again.close()


def test_a_v1_session_without_resources_loads_unchanged(tmp_path: Path) -> None:
    session_id = "sesn_noresources1"
    store = _store(tmp_path)
    state = orjson.loads(_v1_started_state(session_id, datetime(2026, 1, 1, tzinfo=UTC), []))
    del state["details"]["resources"]
    store.app.recorder.insert_events(
        [StoredEvent(stream_id(session_id), 1, "domain.sessions:Session.Started", orjson.dumps(state))]
    )
    assert store.load(stream_id(session_id)).details == {"title": "old"}
    store.close()


def test_started_fields_match_the_init_signature() -> None:
    """Started is declared by hand (to carry its version); it must keep __init__'s fields."""
    hints = typing.get_type_hints(Session.Started)
    params = [name for name in inspect.signature(Session.__init__).parameters if name != "self"]
    assert all(name in hints for name in params)


def test_the_suite_wide_check_reports_an_event_that_breaks_its_schema(tmp_path: Path) -> None:
    store = _store(tmp_path)
    agent = Agent(agent_id="agent_abcdefgh", tenant_id="t", definition={"name": "a"})
    store.save(agent)
    drifted = {"timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"},
               "definition": {"name": "b"}, "agent_version": "2", "surprise": 1}
    store.app.recorder.insert_events(
        [StoredEvent(agent.id, 2, "domain.agents:Agent.Updated", orjson.dumps(drifted))]
    )
    store.app.recorder.insert_events(
        [StoredEvent(stream_id("x_unknown1"), 1, "domain.agents:Agent.Renamed", b"{}")]
    )
    checked, problems = stored_event_problems(store)
    assert checked == 3
    assert len([p for p in problems if "Agent.Updated" in p]) == 2  # wrong type, unknown field
    assert any("Agent.Renamed: not in the event catalogue" in p for p in problems)
    store.close()


def test_each_event_type_is_catalogued_once() -> None:
    topics = [described.topic for described in catalogue()]
    assert len(topics) == len(set(topics))
