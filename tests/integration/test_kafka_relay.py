"""The outbox relay against real PostgreSQL and the real tansu broker, including faults."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from application.api_keys import ApiKeyService, keyed_hash
from application.outbox import event_id, is_published
from application.relay import Fenced, Relay
from application.tenancy import Principal
from domain.agents import Agent
from domain.sessions import Session
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.kafka import KafkaPublisher
from infra.pg_relay import LOCK_KEY, RelayLease
from infra.settings import Settings
from interfaces.bootstrap import build_relay
from tests.support.kafka import Broker, Received, high_watermarks, read_topics

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "agentry-super-secret-key-material"
# The relay lock's holders in this test's database only: pg_locks lists the whole server's,
# and other tests' relays (another pytest process, a shared server) hold the same key.
LOCK_HOLDERS = (
    f"SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = {LOCK_KEY}"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


@pytest.fixture
def prefix() -> str:
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture
def settings(postgres_url: str, broker: Broker, prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path, database_url=postgres_url, kafka_bootstrap_servers=broker.bootstrap, kafka_topic_prefix=prefix
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[EventsourcingEventStore]:
    opened = EventsourcingEventStore(event_store_env(settings))
    yield opened
    opened.close()


def topics(prefix: str) -> list[str]:
    return [f"{prefix}.{name}" for name in ("agents", "environments", "sessions")]


def all_event_ids(store: EventsourcingEventStore) -> list[str]:
    """Every event the relay publishes (environment-key events never leave the store)."""
    return [
        event_id(n.originator_id, n.originator_version)
        for n in store.notifications(0, 1_000_000)
        if is_published(n.topic)
    ]


def write_agents(
    store: EventsourcingEventStore, count: int, updates: int, pause: float = 0.0, more: Callable[[], bool] = lambda: False
) -> None:
    """At least ``count`` agents, and more while ``more()`` says so."""
    i = 0
    while i < count or more():
        i += 1
        agent = Agent(agent_id=f"agent_{uuid.uuid4().hex[:16]}", tenant_id=f"tenant{i % 3}", definition={"name": "a"})
        store.save(agent)
        for u in range(updates):
            agent.update({"name": f"n{u}"})
            store.save(agent)
            if pause:
                time.sleep(pause)


def relay_until_received(settings: Settings, count: int) -> Received:
    """Runs a relay in this process until the topics hold ``count`` messages."""
    process = build_relay(settings)
    stop = threading.Event()
    thread = threading.Thread(target=process.run, args=(stop.is_set,), daemon=True)
    thread.start()
    try:
        return read_topics(
            settings.kafka_bootstrap_servers,
            [*topics(settings.kafka_topic_prefix), f"{settings.kafka_topic_prefix}.api_keys"],
            lambda r: len(r.messages) >= count,
        )
    finally:
        stop.set()
        thread.join(timeout=10)
        process.close()


def relay_subprocess(settings: Settings) -> subprocess.Popen:
    env = {
        **os.environ,
        "AGENTRY_DATABASE_URL": settings.database_url,
        "AGENTRY_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "AGENTRY_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "AGENTRY_DATA_DIR": str(settings.data_dir),
        "AGENTRY_LOG_LEVEL": os.environ.get("AGENTRY_TEST_RELAY_LOG_LEVEL", "warning"),
    }
    return subprocess.Popen([sys.executable, "-m", "interfaces.cli.main", "relay"], cwd=ROOT, env=env)


def relay_position(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT position FROM agentry_relay_positions WHERE name = 'kafka'").fetchone()[0]


def _position_or_zero(database_url: str) -> int:
    """The relay's position, 0 before the relay has created its table and row."""
    try:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT position FROM agentry_relay_positions WHERE name = 'kafka'").fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return row[0] if row else 0


def assert_per_key_order(received: Received) -> None:
    for key, versions in received.first_seen_versions_by_key().items():
        assert versions == sorted(versions), f"events of {key!r} arrived out of order: {versions}"


def test_every_event_is_published_once_with_routing_headers_and_no_secret(settings, store, prefix) -> None:  # noqa: ANN001
    write_agents(store, 5, 3)
    session = Session(session_id="sesn_relaytest00001", tenant_id="tenant9", agent={"id": "agent_x", "version": 1}, environment_id="env_x", details={})
    session.accept_user_event("user.message", "sevt_1", {"content": [{"type": "text", "text": "hi"}]})
    store.save(session)
    keys = ApiKeyService(store, keyed_hash("s" * 32))
    keys.issue(SECRET_KEY, name="k", tenant_id="tenant9")
    # A key made through the API, then revoked: its plaintext exists only in the create's answer.
    admin = Principal("tenant9", "apikey_admin", organization_role="admin")
    created = keys.create(admin, {"name": "made", "role": "member"})
    made_key = created.view["key"]
    revoked = next(load for load in (store.load(n.originator_id) for n in store.notifications(0, 1_000_000)) if getattr(load, "key_id", None) == created.view["id"])
    revoked.change_status("archived")
    store.save(revoked)
    write_agents(store, 1, 0)
    expected = all_event_ids(store)

    received = relay_until_received(settings, len(expected))

    assert sorted(received.event_ids) == sorted(expected)
    assert len(received.event_ids) == len(set(received.event_ids))
    by_topic = {m.topic for m in received.messages}
    assert by_topic == {f"{prefix}.agents", f"{prefix}.sessions", f"{prefix}.api_keys"}
    key_events = [orjson.loads(m.value)["event_type"] for m in received.messages if m.topic.endswith(".api_keys")]
    assert sorted(key_events) == ["ApiKey.Issued", "ApiKey.Issued", "ApiKey.StatusChanged"]
    for message in received.messages:
        body = orjson.loads(message.value)
        headers = dict(message.headers)
        assert message.key == body["aggregate_id"].encode()
        assert headers["event_id"].decode() == body["event_id"]
        assert headers["tenant"].decode() == body["tenant"]
        assert headers["event_type"].decode() == body["event_type"]
        assert int(headers["seq"]) == body["seq"]
        for plaintext in (SECRET_KEY, made_key):
            assert plaintext.encode() not in message.value
            assert keyed_hash("s" * 32)(plaintext).encode() not in message.value
        assert b"key_hash" not in message.value
    session_messages = [orjson.loads(m.value) for m in received.messages if m.topic.endswith(".sessions")]
    assert [(b["event_type"], b["seq"], b["tenant"]) for b in session_messages] == [
        ("Session.Started", 1, "tenant9"),
        ("user.message", 1, "tenant9"),
    ]
    assert_per_key_order(received)
    assert relay_position(settings.database_url) == store.max_notification_id()


def test_only_one_relay_is_active_at_a_time(settings) -> None:  # noqa: ANN001
    first, second = RelayLease(settings.postgres.conninfo), RelayLease(settings.postgres.conninfo)
    try:
        assert first.acquire(lambda: False)
        attempts = iter(range(3))
        assert not second.acquire(lambda: next(attempts, None) is None, poll_seconds=0.05)
        first.close()  # the active relay dies: its lock goes with its connection
        assert second.acquire(lambda: False)
    finally:
        second.close()


def test_broker_stopped_mid_load_then_restarted_delivers_every_event_in_key_order(settings, store, broker, prefix) -> None:  # noqa: ANN001
    # Writes go on until the broker is back: however slow the relay is to start on a loaded box,
    # the outage falls in the middle of the load.
    restarted = threading.Event()
    writer = threading.Thread(target=write_agents, args=(store, 40, 9, 0.015, lambda: not restarted.is_set()))
    writer.start()
    relay = relay_subprocess(settings)
    try:
        before = read_topics(broker.bootstrap, topics(prefix), lambda r: len(r.messages) >= 60)
        assert len(before.messages) >= 60
        # tansu keeps messages in memory only: read everything it holds before it goes away.
        relay.send_signal(signal.SIGSTOP)
        held = high_watermarks(broker.bootstrap, topics(prefix))
        before = read_topics(broker.bootstrap, topics(prefix), lambda r: len(r.messages) >= held)
        broker.stop()
        relay.send_signal(signal.SIGCONT)  # the relay now meets a dead broker, mid-load
        time.sleep(3)
        broker.start()
        time.sleep(1)  # and some writes land after the restart too
        restarted.set()
        writer.join()
        expected = set(all_event_ids(store))
        after = read_topics(
            broker.bootstrap, topics(prefix), lambda r: expected <= set(before.event_ids) | set(r.event_ids), timeout=90
        )
    finally:
        restarted.set()
        relay.send_signal(signal.SIGCONT)
        relay.terminate()
        relay.wait(timeout=20)

    combined = Received(before.messages + after.messages)
    assert set(combined.event_ids) == expected, "an event was never delivered"
    assert_per_key_order(combined)


def test_relay_killed_mid_batch_and_restarted_misses_nothing_and_duplicates_only_unacknowledged(settings, store, broker, prefix) -> None:  # noqa: ANN001
    write_agents(store, 150, 19)  # 3000 events: several batches
    expected = all_event_ids(store)
    relay = relay_subprocess(settings)
    # Kill it as soon as it has recorded its first acknowledged batch (of 500): waiting for a
    # consumer to see messages first let a fast relay finish all 3000 before the kill.
    deadline = time.monotonic() + 60
    while _position_or_zero(settings.database_url) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    relay.send_signal(signal.SIGKILL)
    relay.wait(timeout=10)
    acknowledged_position = relay_position(settings.database_url)
    assert 0 < acknowledged_position < len(expected), "the kill was meant to land mid-stream"

    relay = relay_subprocess(settings)
    try:
        received = read_topics(
            broker.bootstrap, topics(prefix), lambda r: set(expected) <= set(r.event_ids), timeout=90
        )
    finally:
        relay.terminate()
        relay.wait(timeout=20)

    assert set(received.event_ids) == set(expected), "an event was never delivered"
    position_of = {eid: position for position, eid in enumerate(expected, start=1)}
    counts: dict[str, int] = {}
    for eid in received.event_ids:
        counts[eid] = counts.get(eid, 0) + 1
    duplicated = [eid for eid, n in counts.items() if n > 1]
    assert all(position_of[eid] > acknowledged_position for eid in duplicated), (
        "an event the relay had recorded as acknowledged was published again"
    )
    assert_per_key_order(received)


def test_an_event_too_large_for_the_broker_goes_out_without_its_state_and_the_relay_moves_on(settings, store, prefix) -> None:  # noqa: ANN001
    session = Session(session_id="sesn_relaybig000001", tenant_id="t", agent={"id": "agent_x", "version": 1}, environment_id="env_x", details={})
    session.accept_user_event("user.message", "sevt_big", {"content": [{"type": "text", "text": "x" * 2_000_000}]})
    session.accept_user_event("user.interrupt", "sevt_after", {})
    store.save(session)
    expected = all_event_ids(store)

    received = relay_until_received(settings, len(expected))
    assert received.event_ids == expected
    bodies = [orjson.loads(m.value) for m in received.messages]
    assert [b["event_type"] for b in bodies] == ["Session.Started", "user.message", "user.interrupt"]
    assert bodies[1]["state"] is None and bodies[1]["state_omitted"] == "too_large"
    assert dict(received.messages[1].headers)["state_omitted"] == b"too_large"
    assert bodies[2]["state"] is not None


def test_a_relay_that_lost_its_lock_stands_by_instead_of_publishing_beside_the_new_one(settings, store, broker, prefix) -> None:  # noqa: ANN001
    write_agents(store, 3, 1)
    first, second = build_relay(settings), build_relay(settings)
    stop = threading.Event()
    threads = [threading.Thread(target=p.run, args=(stop.is_set,), daemon=True) for p in (first, second)]
    lock_holders = LOCK_HOLDERS
    try:
        threads[0].start()
        read_topics(broker.bootstrap, topics(prefix), lambda r: len(r.messages) >= 6)
        threads[1].start()
        with psycopg.connect(settings.database_url, autocommit=True) as admin:
            (old_holder,) = admin.execute(lock_holders).fetchone()
            # The active relay's lock connection drops (a failover, a network cut): its lock
            # goes with it, and the standby takes over.
            admin.execute("SELECT pg_terminate_backend(%s)", (old_holder,))
            deadline = time.monotonic() + 15
            while [row[0] for row in admin.execute(lock_holders)] in ([], [old_holder]):
                assert time.monotonic() < deadline, "the standby relay never took over"
                time.sleep(0.1)

        write_agents(store, 3, 1)  # both relays see these; only the new active one may publish
        expected = all_event_ids(store)
        read_topics(broker.bootstrap, topics(prefix), lambda r: set(expected) <= set(r.event_ids))
        time.sleep(2)  # room for a stray publish by the relay that lost its lock
        # Everything the topics hold (read for 3 s).
        received = read_topics(broker.bootstrap, topics(prefix), lambda r: False, timeout=3)
        assert sorted(received.event_ids) == sorted(expected), "published twice, or not at all"
        assert threads[0].is_alive(), "the relay that lost its lock stands by; it does not die"
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        first.close()
        second.close()


def test_a_relay_that_lost_its_lock_mid_batch_is_fenced_at_the_broker_and_nothing_is_lost(settings, store, broker, prefix) -> None:  # noqa: ANN001
    """The moment the lock question cannot cover: the old relay asked (it still held the lock),
    then lost it while its batch was on the way. The new relay initialised the transactional
    id first, so the broker refuses the old relay's batch instead of taking it after the new
    relay's messages."""
    write_agents(store, 3, 1)
    first, second = build_relay(settings), build_relay(settings)
    stale = first.resources[0]
    assert isinstance(stale, KafkaPublisher)
    armed, at_the_door, let_through, refused = (threading.Event() for _ in range(4))
    outcome: list[BaseException] = []
    send, acknowledged = stale.send, stale.acknowledged

    def held_at_the_door(messages: list) -> None:
        if armed.is_set() and not at_the_door.is_set():
            at_the_door.set()
            let_through.wait(60)
        send(messages)

    def recording_the_outcome() -> int:
        try:
            return acknowledged()
        except BaseException as error:
            outcome.append(error)
            raise
        finally:
            if let_through.is_set():
                refused.set()

    stale.send, stale.acknowledged = held_at_the_door, recording_the_outcome  # type: ignore[method-assign]
    stop = threading.Event()
    threads = [threading.Thread(target=p.run, args=(stop.is_set,), daemon=True) for p in (first, second)]
    lock_holders = LOCK_HOLDERS
    try:
        threads[0].start()
        read_topics(broker.bootstrap, topics(prefix), lambda r: len(r.messages) >= 6)
        threads[1].start()  # stands by
        armed.set()
        write_agents(store, 3, 1)
        assert at_the_door.wait(30), "the first relay never sent the new batch"
        expected = all_event_ids(store)
        with psycopg.connect(settings.database_url, autocommit=True) as admin:
            (old_holder,) = admin.execute(lock_holders).fetchone()
            admin.execute("SELECT pg_terminate_backend(%s)", (old_holder,))
        # The standby takes over, fences, and publishes the batch the old relay still holds.
        read_topics(broker.bootstrap, topics(prefix), lambda r: set(expected) <= set(r.event_ids))

        let_through.set()  # the old relay's batch reaches the broker now, after the takeover
        assert refused.wait(30)
        assert len(outcome) == 1 and isinstance(outcome[0], Fenced), outcome
        received = read_topics(broker.bootstrap, topics(prefix), lambda r: False, timeout=3)
        assert sorted(received.event_ids) == sorted(expected), "the fenced relay's batch reached the topics"
        assert_per_key_order(received)
        assert threads[0].is_alive(), "the fenced relay stands by; it does not die"
        assert relay_position(settings.database_url) == store.max_notification_id()
    finally:
        let_through.set()
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        first.close()
        second.close()


class ReadsFailing:
    """The event store, but the reads numbered in ``failing`` fail (its database went away)."""

    def __init__(self, store: EventsourcingEventStore, failing: set[int]) -> None:
        self._store, self._failing, self.reads = store, failing, 0

    def notifications(self, after: int, limit: int) -> list:
        self.reads += 1
        if self.reads in self._failing:
            raise psycopg.OperationalError("server closed the connection; password=hunter2")
        return self._store.notifications(after, limit)

    def __getattr__(self, name: str):  # decode, state_of, load
        return getattr(self._store, name)


def run_relay(settings: Settings, notifications: ReadsFailing, until: int) -> Relay:
    """A relay of batches of 5 over ``notifications``, run here until its position is ``until``."""
    lease = RelayLease(settings.postgres.conninfo)
    publisher = KafkaPublisher(settings.kafka_bootstrap_servers, topics(settings.kafka_topic_prefix), f"{settings.kafka_topic_prefix}.relay")
    relay = Relay(notifications, publisher, lease, lambda _: time.sleep(0.05), settings.kafka_topic_prefix, batch_size=5)
    deadline = time.monotonic() + 60
    try:
        assert lease.acquire(lambda: False)
        relay.run(lambda: relay.position >= until or time.monotonic() > deadline)
    finally:
        publisher.close()
        lease.close()
    return relay


def test_a_failed_read_ahead_still_commits_the_batch_in_flight_and_the_relay_reads_again(settings, store, broker, prefix, caplog) -> None:  # noqa: ANN001
    write_agents(store, 4, 2)  # 12 events: batches of 5, 5 and 2
    expected = all_event_ids(store)
    first_batch_end = store.notifications(0, 5)[-1].id
    # Read 1 is the first batch; read 2, ahead of it while the broker has the batch, fails.
    notifications = ReadsFailing(store, failing={2})

    with caplog.at_level(logging.WARNING, logger="agentry.relay"):
        run_relay(settings, notifications, until=store.max_notification_id())

    assert relay_position(settings.database_url) == store.max_notification_id()
    received = read_topics(broker.bootstrap, [f"{prefix}.agents"], lambda r: len(r.messages) >= len(expected), committed_only=True)
    assert sorted(received.event_ids) == sorted(expected), "every batch committed, once"
    assert_per_key_order(received)
    assert f"reading ahead after event {first_batch_end} failed (OperationalError)" in caplog.text
    assert "hunter2" not in caplog.text


def test_a_read_failing_again_after_a_failed_read_ahead_surfaces_once_the_batch_in_flight_is_committed(settings, store, broker, prefix) -> None:  # noqa: ANN001
    write_agents(store, 4, 2)
    first_batch = all_event_ids(store)[:5]
    # The database stays away: the read ahead fails, and so does the plain read after it.
    notifications = ReadsFailing(store, failing={2, 3})

    with pytest.raises(psycopg.OperationalError):
        run_relay(settings, notifications, until=store.max_notification_id())

    assert notifications.reads == 3, "the error surfaced from the plain read, not the read ahead"
    assert relay_position(settings.database_url) == store.notifications(0, 5)[-1].id
    received = read_topics(broker.bootstrap, [f"{prefix}.agents"], lambda r: len(r.messages) >= 5, timeout=10, committed_only=True)
    assert sorted(received.event_ids) == sorted(first_batch), "the batch in flight was committed; nothing after it was sent"
