"""Sessions stored before resources had ids load with the same ids on every path: a v1
``Started`` (see test_event_catalogue), a v1 ``Updated`` that carried a copy of the
resources, and a snapshot taken before the change."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import StoredEvent

from domain.ids import stream_id
from domain.sessions import Session
from infra.event_store import EventsourcingEventStore
from tests.unit.test_event_catalogue import _store, _v1_started_state

CREATED = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
RESOURCES = [{"type": "file", "file_id": "file_1"}, {"type": "file", "file_id": "file_2"}]


def _v1_updated_state(moment: datetime) -> bytes:
    return orjson.dumps(
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": moment.isoformat()},
            "details": {"title": "renamed", "metadata": {}, "resources": RESOURCES},
        }
    )


def _v1_snapshot(session: Session, resources: list[dict[str, Any]]) -> Snapshot:
    """A snapshot of ``session`` as one taken before the change holds it: no class version,
    its resources as they were sent."""
    snapshot = Snapshot.take(session)
    state = {key: value for key, value in snapshot.state.items() if key != "class_version"}
    state["details"] = {**state["details"], "resources": resources}
    return Snapshot(
        originator_id=snapshot.originator_id,
        originator_version=snapshot.originator_version,
        timestamp=snapshot.timestamp,
        topic=snapshot.topic,
        state=state,
    )


def _load_old_session(tmp_path: Path, session_id: str, with_update: bool) -> tuple[EventsourcingEventStore, Session]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = _store(tmp_path)
    events = [StoredEvent(stream_id(session_id), 1, "domain.sessions:Session.Started", _v1_started_state(session_id, CREATED, RESOURCES))]
    if with_update:
        events.append(StoredEvent(stream_id(session_id), 2, "domain.sessions:Session.Updated", _v1_updated_state(CREATED)))
    store.app.recorder.insert_events(events)
    return store, store.load(stream_id(session_id))


def test_a_v1_update_keeps_the_resource_ids_the_session_started_with(tmp_path: Path) -> None:
    store, started_only = _load_old_session(tmp_path / "a", "sesn_oldupdated01", with_update=False)
    store.close()
    store, updated = _load_old_session(tmp_path / "b", "sesn_oldupdated01", with_update=True)
    assert updated.details["title"] == "renamed"
    assert updated.details["resources"] == started_only.details["resources"]
    assert all(resource["id"].startswith("sesrsc_") for resource in updated.details["resources"])
    store.close()


def test_a_v1_snapshot_gives_its_resources_the_ids_the_events_give(tmp_path: Path) -> None:
    store, from_events = _load_old_session(tmp_path, "sesn_oldsnapshot1", with_update=False)
    old = _v1_snapshot(from_events, RESOURCES)
    assert old.mutate(None).details["resources"] == from_events.details["resources"]
    store.close()


def test_new_updates_carry_no_resources(tmp_path: Path) -> None:
    session = Session(
        session_id="sesn_newsession01",
        tenant_id="t",
        agent={"id": "agent_abcdefgh", "version": 1},
        environment_id="env_abcdefgh",
        details={"resources": [{"id": "sesrsc_1", "type": "file", "file_id": "f"}]},
    )
    session.update({"title": "t"})
    updated = session.collect_events()[-1]
    assert "resources" not in updated.details
    assert session.details["resources"][0]["id"] == "sesrsc_1" and session.details["title"] == "t"


def test_a_v1_session_loses_the_repository_token_it_kept_in_clear(tmp_path: Path) -> None:
    session_id = "sesn_oldwithtoken1"
    resources = [{"type": "github_repository", "url": "https://example.invalid/r.git", "authorization_token": "ghp_secret"}]
    store = _store(tmp_path)
    store.app.recorder.insert_events(
        [StoredEvent(stream_id(session_id), 1, "domain.sessions:Session.Started", _v1_started_state(session_id, CREATED, resources))]
    )
    (resource,) = store.load(stream_id(session_id)).details["resources"]
    assert "authorization_token" not in resource and resource["url"] == "https://example.invalid/r.git"
    old = _v1_snapshot(store.load(stream_id(session_id)), resources)
    assert "authorization_token" not in old.mutate(None).details["resources"][0]
    store.close()
