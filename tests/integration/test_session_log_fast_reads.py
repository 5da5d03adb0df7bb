"""Pages and replay chunks read stored rows and make views from their JSON without building
domain events. Against every store (in memory, SQLite, PostgreSQL): they give, byte for
byte, what decoding every event and viewing it gives, over a session holding every public
event type and the client data the transcoder has to guard; chunks are bounded in bytes,
not in events; and a read stops near what it needs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import application.session_log as session_log_module
from application.agents import AgentService
from application.environments import EnvironmentService
from application.ids import new_id
from application.session_log import LogPosition, SessionLog
from application.sessions import SessionService
from application.tenancy import Principal
from application.views import session_event_view
from domain.ids import stream_id
from domain.sessions import EVENT_CLASS_BY_TYPE, PublicEvent, Session
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings
from interfaces.http.live import sse_frames

ALICE = Principal("tenant-a", "key-a")

# Client data that must come back as sent: what the transcoder escapes or tags, what orjson
# and the stdlib write differently, and keys the server's own fields override.
AWKWARD_PAYLOADS: list[dict[str, Any]] = [
    {},
    {"note": "plain", "n": 1, "tags": ["a", "b"], "nested": {"deep": [1, {"x": None}]}},
    {"x": {"_type_": "datetime_iso", "_data_": "2020-01-01T00:00:00+00:00"}},  # tag-shaped
    {"x": {"_type_": "agentry_dict", "_data_": []}},
    {"_type_": "a", "other": 1},  # the tag key, not tag-shaped
    {"text": 'says "_type_" and \\"_type_\\"'},
    {"floats": [0.1, 1e-07, 1e16, 1.5e300, -0.0, 12345678.9]},
    {"big": 2**64 - 1, "neg": -(2**63)},  # the ends of what orjson reads
    {"unicode": "é 😀 \u2028 \u2029 \x00 \x1f \x7f"},
    {"id": "client-id", "type": "client.type", "seq": -1, "processed_at": "then", "keep": True},
]

# Fields some event types' ``apply`` reads.
BASE = {"tool_use_id": "toolu_1", "custom_tool_use_id": "toolu_2", "result": "allow"}


def _stores(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> EventsourcingEventStore:
    if kind == "popo":
        return EventsourcingEventStore({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    url = str(request.getfixturevalue("postgres_url")) if kind == "postgres" else ""
    return EventsourcingEventStore(event_store_env(Settings(data_dir=tmp_path, database_url=url)))


@pytest.fixture(params=["popo", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventsourcingEventStore]:
    store = _stores(request.param, tmp_path, request)
    yield store
    store.close()


@pytest.fixture
def sessions(store: EventsourcingEventStore) -> SessionService:
    return SessionService(store, AgentService(store), EnvironmentService(store))


def new_session(sessions: SessionService) -> str:
    agent = sessions._agents.create(ALICE, {"name": "bot", "model": "m"}).view
    env = sessions._environments.create(ALICE, {"name": "e"}).view
    return str(sessions.create(ALICE, {"agent": agent["id"], "environment_id": env["id"]}).view["id"])


def mixed_session(store: EventsourcingEventStore, sessions: SessionService) -> str:
    """Every public event type (each with the awkward payloads that its ``apply`` takes),
    lifecycle events between them, a timestamp without microseconds, and the deletion."""
    session_id = new_session(sessions)
    stream = stream_id(session_id)
    for number, event_type in enumerate(sorted(EVENT_CLASS_BY_TYPE)):
        if event_type in ("session.status_terminated", "session.deleted"):
            continue  # they end the log: last
        for payload in AWKWARD_PAYLOADS:
            session: Session = store.load(stream)
            try:
                session.record(event_type, new_id("sevt"), {**BASE, **payload})
            except (KeyError, TypeError, ValueError):
                continue  # an apply that needs fields of its own; other payloads do
            store.save(session)
        sessions.update(ALICE, session_id, {"title": f"t{number}"})
    session = store.load(stream)
    whole_second = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    cls = EVENT_CLASS_BY_TYPE["user.interrupt"]
    session.trigger_event(cls, timestamp=whole_second, seq=session.last_seq + 1, event_id=new_id("sevt"), payload={"at": 0})
    session.record("session.status_idle", new_id("sevt"), {"stop_reason": {"type": "end_turn"}})
    store.save(session)
    sessions.delete(ALICE, session_id)
    return session_id


def reference(store: EventsourcingEventStore, session_id: str) -> list[bytes]:
    """Every public event decoded in full and viewed: what the log gave before."""
    events = store.read_stream(stream_id(session_id))
    return [orjson.dumps(session_event_view(event)) for event in events if isinstance(event, PublicEvent)]


def test_pages_and_chunks_give_exactly_what_decoding_every_event_gives(
    store: EventsourcingEventStore, sessions: SessionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = mixed_session(store, sessions)
    expected = reference(store, session_id)
    types = {orjson.loads(raw)["type"] for raw in expected}
    assert types >= set(EVENT_CLASS_BY_TYPE) - {"session.status_terminated"}, set(EVENT_CLASS_BY_TYPE) - types
    log = SessionLog(store)

    decoded: list[int] = []
    decode_stored = store.decode_stored

    def counting_decode(aggregate_id: Any, row: tuple[int, str, bytes]) -> Any:
        decoded.append(row[0])
        return decode_stored(aggregate_id, row)

    monkeypatch.setattr(store, "decode_stored", counting_decode)

    for limit in (1, 7, 1000):
        for order in ("asc", "desc"):
            got: list[bytes] = []
            after, before = 0, None
            while True:
                page = log.page(ALICE, session_id, after, limit, order, before_seq=before)
                assert [orjson.loads(raw) for raw in page.encoded] == page.events
                got += page.encoded
                if page.next_seq is None:
                    break
                after, before = (page.next_seq, None) if order == "asc" else (0, page.next_seq)
            assert got == (expected if order == "asc" else expected[::-1]), (limit, order)

    head = log.head(ALICE, session_id)
    for max_bytes in (1, 600, 10**6):
        got, frames, position = [], [], LogPosition.after_seq(0)
        while True:
            chunk = log.chunk(head, position, max_bytes=max_bytes)
            got += chunk.encoded
            frames += sse_frames(chunk)
            position = chunk.position
            if chunk.complete or chunk.deleted:
                break
        assert got == expected, max_bytes
        assert frames == [
            b"event: %s\nid: %d\ndata: %s\n\n" % (view["type"].encode(), view["seq"], raw)
            for view, raw in ((orjson.loads(raw), raw) for raw in expected)
        ]
    # Only the rows the transcoder must read were decoded in full; the plain ones were not.
    assert 0 < len(set(decoded)) < len(expected) / 2


def test_a_replay_chunk_is_bounded_by_bytes_not_by_a_count(
    store: EventsourcingEventStore, sessions: SessionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_log_module, "CHUNK_MAX_BYTES", 30_000)
    session_id = new_session(sessions)
    for start in range(0, 600, 100):
        sessions.send(ALICE, session_id, [{"type": "user.interrupt", "n": n} for n in range(start, start + 100)])
    log = SessionLog(store)
    head = log.head(ALICE, session_id)
    rows_read: list[int] = []
    read_stored = store.read_stored

    def counting_read(*args: Any, **kwargs: Any) -> Any:
        rows = read_stored(*args, **kwargs)
        rows_read.append(len(rows))
        return rows

    monkeypatch.setattr(store, "read_stored", counting_read)
    position, chunks = LogPosition.after_seq(0), []
    while True:
        rows_read.clear()
        chunk = log.chunk(head, position)
        position = chunk.position
        if chunk.events:
            chunks.append(chunk)
            # Reads stop near what the chunk takes (sized from the average event so far),
            # not a whole batch past it.
            assert sum(rows_read) <= len(chunk.events) * 1.05 + 2 + session_log_module.FIRST_READ
        if chunk.complete:
            break
    assert [view["n"] for chunk in chunks for view in chunk.events] == list(range(600))
    sizes = [sum(map(len, chunk.encoded)) for chunk in chunks]
    # Each chunk but the last is full to the byte cap (one event past it at most), and holds
    # far more than the hundred events a chunk used to stop at.
    event_size = max(len(raw) for chunk in chunks for raw in chunk.encoded)
    assert all(30_000 <= size < 30_000 + event_size for size in sizes[:-1])
    assert len(chunks[0].events) > 100
