"""The session log read service against the in-memory event store."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

import application.session_log as session_log_module
from application.agents import AgentService
from application.environments import EnvironmentService
from application.errors import NotFound
from application.session_log import LogPosition, SessionLog
from application.sessions import SessionService
from application.tenancy import Principal
from domain.ids import stream_id
from infra.event_store import EventsourcingEventStore

ALICE = Principal("tenant-a", "key-a")
BOB = Principal("tenant-b", "key-b")


@pytest.fixture
def sessions(store: EventsourcingEventStore) -> SessionService:
    agents = AgentService(store)
    return SessionService(store, agents, EnvironmentService(store))


@pytest.fixture
def log(store: EventsourcingEventStore) -> SessionLog:
    return SessionLog(store)


def new_session(sessions: SessionService) -> str:
    agent = sessions._agents.create(ALICE, {"name": "bot", "model": "m"}).view
    env = sessions._environments.create(ALICE, {"name": "e"}).view
    session = sessions.create(ALICE, {"agent": agent["id"], "environment_id": env["id"]}).view
    return session["id"]


def fill(sessions: SessionService, session_id: str, count: int, padding: int = 0) -> None:
    for i in range(count):
        sessions.send(ALICE, session_id, [{"type": "user.interrupt", "n": i, "pad": "x" * padding}])
        if i % 5 == 0:  # lifecycle events take a stream version but no seq
            sessions.update(ALICE, session_id, {"title": f"t{i}"})


def read_all_pages(log: SessionLog, session_id: str, order: str, limit: int) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        after_seq = cursor if cursor is not None and order == "asc" else 0
        before_seq: int | None = cursor if order == "desc" else None
        page = log.page(ALICE, session_id, after_seq, limit, order, before_seq=before_seq)
        pages.append([event["n"] for event in page.events])
        cursor = page.next_seq
        if cursor is None:
            return pages


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_pages_read_in_small_batches_cover_the_log_exactly_once(sessions: SessionService, log: SessionLog, monkeypatch: pytest.MonkeyPatch, order: str) -> None:
    monkeypatch.setattr(session_log_module, "FIRST_READ", 2)
    monkeypatch.setattr(session_log_module, "SCAN_CHUNK", 4)  # many batch boundaries
    session_id = new_session(sessions)
    fill(sessions, session_id, 23)
    expected = list(range(23)) if order == "asc" else list(range(22, -1, -1))
    for limit in (1, 3, 4, 5, 100):
        pages = read_all_pages(log, session_id, order, limit)
        assert [n for page in pages for n in page] == expected, limit
    firsts = log.page(ALICE, session_id, limit=2, order=order, types=frozenset({"user.interrupt"}))
    assert [e["n"] for e in firsts.events] == expected[:2]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_a_page_stops_at_its_byte_cap_and_the_next_page_continues_exactly_there(sessions: SessionService, log: SessionLog, monkeypatch: pytest.MonkeyPatch, order: str) -> None:
    monkeypatch.setattr(session_log_module, "PAGE_MAX_BYTES", 100_000)
    monkeypatch.setattr(session_log_module, "READ_BYTES", 100_000)
    session_id = new_session(sessions)
    fill(sessions, session_id, 12, padding=30_000)  # ~30 kB each: four fill a page
    pages = read_all_pages(log, session_id, order, limit=1000)
    expected = list(range(12)) if order == "asc" else list(range(11, -1, -1))
    assert [n for page in pages for n in page] == expected
    assert [len(page) for page in pages] == [4, 4, 4]
    for page in read_all_pages(log, session_id, order, limit=3):
        assert len(page) == 3  # the count cap still applies first


def test_one_event_larger_than_the_cap_is_served_alone(sessions: SessionService, log: SessionLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_log_module, "PAGE_MAX_BYTES", 10_000)
    session_id = new_session(sessions)
    fill(sessions, session_id, 3, padding=50_000)
    assert read_all_pages(log, session_id, "asc", limit=100) == [[0], [1], [2]]


def test_batches_are_sized_from_the_event_sizes_seen(sessions: SessionService, log: SessionLog, store: EventsourcingEventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_log_module, "READ_BYTES", 200_000)
    session_id = new_session(sessions)
    fill(sessions, session_id, 40, padding=50_000)
    limits: list[int | None] = []
    read_stored = store.read_stored

    def recording_read(*args: Any, **kwargs: Any) -> Any:
        limits.append(kwargs.get("limit"))
        return read_stored(*args, **kwargs)

    head = log.head(ALICE, session_id)
    monkeypatch.setattr(store, "read_stored", recording_read)
    chunk = log.chunk(head, LogPosition.after_seq(0), max_events=1000, max_bytes=10**9)
    assert [e["n"] for e in chunk.events] == list(range(40))
    # The first batch is small; later ones hold about READ_BYTES of ~50 kB events.
    assert limits[0] == session_log_module.FIRST_READ
    assert all(limit is not None and limit <= 4 for limit in limits[1:])


def test_replay_chunks_are_bounded_and_continue_exactly(sessions: SessionService, log: SessionLog, monkeypatch: pytest.MonkeyPatch) -> None:
    session_id = new_session(sessions)
    fill(sessions, session_id, 9, padding=20_000)
    head = log.head(ALICE, session_id)
    assert head.last_seq == 9 and not head.deleted
    seen: list[int] = []
    position = LogPosition.after_seq(0)
    sizes = []
    while True:
        chunk = log.chunk(head, position, max_events=100, max_bytes=50_000)
        assert [orjson.loads(raw) for raw in chunk.encoded] == chunk.events
        seen += [event["seq"] for event in chunk.events]
        sizes.append(len(chunk.events))
        position = chunk.position
        if chunk.complete:
            break
    assert seen == list(range(1, 10))
    assert max(sizes) == 3  # 3 × ~20 kB reach the 50 kB cap
    # Nothing new: an empty complete chunk at the same place.
    again = log.chunk(head, position)
    assert again.events == [] and again.complete and again.position.seq == 9


def test_a_chunk_from_a_seq_in_the_middle_starts_right_after_it(sessions: SessionService, log: SessionLog) -> None:
    session_id = new_session(sessions)
    fill(sessions, session_id, 12)
    head = log.head(ALICE, session_id)
    chunk = log.chunk(head, LogPosition.after_seq(7), max_events=2)
    assert [e["seq"] for e in chunk.events] == [8, 9] and not chunk.complete
    rest = log.chunk(head, chunk.position)
    assert [e["seq"] for e in rest.events] == [10, 11, 12] and rest.complete


def test_the_head_is_the_callers_own_and_knows_a_deletion(sessions: SessionService, log: SessionLog) -> None:
    session_id = new_session(sessions)
    fill(sessions, session_id, 2)
    with pytest.raises(NotFound):
        log.head(BOB, session_id)
    with pytest.raises(NotFound):
        log.page(BOB, session_id)
    sessions.delete(ALICE, session_id)
    head = log.head(ALICE, session_id)
    assert head.deleted and head.last_seq == 3
    last = log.chunk(head, LogPosition.after_seq(2))
    assert last.deleted and [e["type"] for e in last.events] == ["session.deleted"]


def test_the_head_is_read_from_the_stream_ends_and_matches_the_aggregate(
    sessions: SessionService, log: SessionLog, store: EventsourcingEventStore
) -> None:
    session_id = new_session(sessions)
    empty = log.head(ALICE, session_id)
    assert empty.last_seq == 0 and not empty.deleted
    fill(sessions, session_id, 7)
    for i in range(10):  # lifecycle events after the last public one
        sessions.update(ALICE, session_id, {"title": f"later {i}"})
    head = log.head(ALICE, session_id)
    session = store.load(stream_id(session_id))
    assert head.position == LogPosition(session.last_seq, session.version) == LogPosition(7, session.version)
    agent = sessions._agents.create(ALICE, {"name": "not a session", "model": "m"}).view
    for wrong in (agent["id"], "sesn_" + "x" * 20, "garbage"):
        with pytest.raises(NotFound):
            log.head(ALICE, wrong)


def test_a_page_whose_filters_drop_events_reads_full_batches(sessions: SessionService, log: SessionLog, store: EventsourcingEventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Newest first below a cursor skips every event above it: rows are read in full
    # batches, not in batches sized for the page's few events.
    monkeypatch.setattr(session_log_module, "SCAN_CHUNK", 50)
    session_id = new_session(sessions)
    fill(sessions, session_id, 400)
    limits: list[int | None] = []
    read_stored = store.read_stored

    def recording_read(*args: Any, **kwargs: Any) -> Any:
        limits.append(kwargs.get("limit"))
        return read_stored(*args, **kwargs)

    monkeypatch.setattr(store, "read_stored", recording_read)
    page = log.page(ALICE, session_id, limit=3, order="desc", before_seq=10)
    assert [e["n"] for e in page.events] == [8, 7, 6]
    assert len(limits) <= 2 + 480 // 50 and max(limit or 0 for limit in limits) == 50
