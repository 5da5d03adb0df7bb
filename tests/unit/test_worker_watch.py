"""WorkerWatch against the real event store adapter and the real lease table (SQLite): when
does a session's wait for its environment's worker end?"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from application.work_queue import WorkerWatch, new_work_item
from domain.sessions import Session
from domain.work_items import WorkItem
from infra.event_store import EventsourcingEventStore
from infra.work_leases import SqlWorkLeases

TIMEOUT = 0.4
TTL = 0.3


@pytest.fixture
def leases(tmp_path: Path) -> SqlWorkLeases:
    return SqlWorkLeases(sa.create_engine(f"sqlite:///{tmp_path / 'leases.db'}"))


def waiting_session(store: EventsourcingEventStore) -> tuple[Session, WorkItem]:
    """A session whose agent called a built-in tool: the call waits for the item's worker."""
    session = Session(session_id="sesn_watch0000001", tenant_id="t1", agent={"id": "agent_x", "version": 1}, environment_id="env_x", details={})
    item = new_work_item(session, "self_hosted")
    session.route_to_worker(running=["toolu_1"], asking=[], new_work_id=item.work_id)
    store.save(session, item)
    return session, item


def claim(store: EventsourcingEventStore, leases: SqlWorkLeases, work_id: str, why: str, ttl: float = 30.0) -> WorkItem:
    item = store.load(WorkItem.create_id(work_id))
    number = item.claim_for("worker", why)
    store.save(item)
    leases.grant(work_id, number, time.time() + ttl)
    return item


def test_claims_that_never_heartbeat_do_not_keep_the_calls_waiting(store: EventsourcingEventStore, leases: SqlWorkLeases) -> None:
    watch = WorkerWatch(store, leases, TIMEOUT)
    session, item = waiting_session(store)
    assert not watch.vanished(session)
    claim(store, leases, item.work_id, "new")
    deadline = time.monotonic() + TIMEOUT + 0.3
    while time.monotonic() < deadline:
        # A worker that dies right after each claim: the next poll takes the item over.
        claim(store, leases, item.work_id, "unacknowledged")
        time.sleep(0.05)
    assert watch.vanished(session), "fresh claims with long leases are not life"


def test_a_heartbeating_worker_keeps_a_long_call_alive_until_its_lease_lapses(
    store: EventsourcingEventStore, leases: SqlWorkLeases
) -> None:
    watch = WorkerWatch(store, leases, TIMEOUT)
    session, item = waiting_session(store)
    held = claim(store, leases, item.work_id, "new", ttl=TTL)
    held.acknowledge()
    held.start()
    store.save(held)
    deadline = time.monotonic() + TIMEOUT * 2
    beat = "NO_HEARTBEAT"
    while time.monotonic() < deadline:  # the call runs past the timeout; the worker beats
        stamp = f"{time.time():.6f}"
        assert leases.extend(item.work_id, held.claim, None if beat == "NO_HEARTBEAT" else beat, stamp, time.time() + TTL)
        beat = stamp
        assert not watch.vanished(session)
        time.sleep(0.05)

    # The worker dies mid-call; a poll takes the item over once its lease lapsed. The worker
    # that took it has the whole timeout to start, though the call waited longer than that.
    time.sleep(TTL)
    taken = claim(store, leases, item.work_id, "lease_expired")
    assert taken.succeeds_running_worker
    assert not watch.vanished(session)
    time.sleep(TIMEOUT + 0.1)
    assert watch.vanished(session), "the worker that took over never heartbeated"


def test_a_claim_records_its_own_time(store: EventsourcingEventStore, leases: SqlWorkLeases) -> None:
    _, item = waiting_session(store)
    time.sleep(0.05)
    claimed = claim(store, leases, item.work_id, "new")
    assert claimed.claimed_at == claimed.modified_on
    assert claimed.claimed_at > store.load(WorkItem.create_id(item.work_id), version=1).modified_on


def test_calls_that_kill_every_worker_running_them_end_after_three_takeovers(
    store: EventsourcingEventStore, leases: SqlWorkLeases
) -> None:
    """A worker claims, heartbeats, starts the call and dies; the next takes over and dies too."""
    watch = WorkerWatch(store, leases, timeout_seconds=60)
    session, item = waiting_session(store)
    why = "new"
    for round_ in range(WorkerWatch.MAX_TAKEOVERS + 1):
        assert not watch.vanished(session), f"vanished after {round_} takeovers"
        held = claim(store, leases, item.work_id, why, ttl=TTL)
        held.acknowledge()
        held.start()
        store.save(held)
        assert leases.extend(item.work_id, held.claim, None, f"{time.time():.6f}", time.time() + TTL)
        why = "lease_expired"
    assert watch.vanished(session), "a poison call keeps taking workers down"
    reloaded = store.load(WorkItem.create_id(item.work_id))
    assert len(reloaded.takeovers) == WorkerWatch.MAX_TAKEOVERS
