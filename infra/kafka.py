"""Kafka adapters (kafka-python): the relay's publisher and the projector's consumer."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from application.outbox import AGGREGATE_TOPICS, OutboxMessage

log = logging.getLogger("agentry.kafka")


def all_topics(prefix: str) -> list[str]:
    return [f"{prefix}.{suffix}" for suffix in AGGREGATE_TOPICS.values()]


def ensure_topics(bootstrap_servers: str, topics: Iterable[str], partitions: int = 4) -> None:
    """Creates missing topics; a broker that auto-creates them makes this a no-op."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    except KafkaError as error:
        log.warning("could not reach Kafka to create topics: %s", type(error).__name__)
        return
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics if t not in existing]
        if missing:
            admin.create_topics(missing)
    except TopicAlreadyExistsError:
        pass
    except KafkaError as error:
        log.warning("could not create topics: %s", type(error).__name__)
    finally:
        admin.close()


class KafkaPublisher:
    """acks=all, one request in flight per connection (so retries cannot reorder a key),
    and a fresh producer after any failure, so the relay re-sends from the first failed
    message on a producer with no poisoned state."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: list[str],
        flush_timeout: float = 10.0,
        max_message_bytes: int = 900_000,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self._bootstrap_servers = bootstrap_servers
        self._topics = topics
        self._flush_timeout = flush_timeout
        self._producer: KafkaProducer | None = None

    def _connect(self) -> KafkaProducer:
        if self._producer is None:
            # Also after a failure: a broker that came back empty has lost its topics.
            ensure_topics(self._bootstrap_servers, self._topics)
            self._producer = KafkaProducer(
                bootstrap_servers=self._bootstrap_servers,
                acks="all",
                max_in_flight_requests_per_connection=1,
                linger_ms=5,
                request_timeout_ms=10_000,
                # send() blocks while it has no metadata for a topic; a dead broker must
                # surface as an error the relay retries, not as a minute of silence.
                max_block_ms=5_000,
                retry_backoff_ms=200,
                reconnect_backoff_max_ms=2_000,
                client_id="agentry-relay",
            )
        return self._producer

    def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception:  # closing a broken producer must not stop the relay
                log.debug("closing producer failed", exc_info=True)

    def publish(self, messages: Sequence[OutboxMessage]) -> int:
        futures: list[Any] = []
        try:
            producer = self._connect()
            for m in messages:
                value, headers = self.encode(m)
                futures.append(producer.send(m.topic, key=m.key, value=value, headers=headers))
            producer.flush(timeout=self._flush_timeout)
        except (KafkaError, KafkaTimeoutError) as error:
            log.warning("publishing failed: %s", type(error).__name__)
            self._discard()
            return self._acknowledged_prefix(futures)
        acknowledged = self._acknowledged_prefix(futures)
        if acknowledged < len(messages):
            failed = futures[acknowledged]
            reason = type(failed.exception).__name__ if failed.is_done else "timeout"
            log.warning("broker refused message for event %d: %s", messages[acknowledged].notification_id, reason)
            self._discard()
        return acknowledged

    def encode(self, message: OutboxMessage) -> tuple[bytes, list[tuple[str, bytes]]]:
        """An event too large for the broker goes out without its state (consumers that
        need it read the event store), rather than stopping every event behind it."""
        value = orjson.dumps(message.body)
        if len(value) <= self.max_message_bytes:
            return value, message.headers
        log.warning(
            "event %d is %d bytes; publishing it without its state", message.notification_id, len(value)
        )
        trimmed = {**message.body, "state": None, "state_omitted": "too_large"}
        return orjson.dumps(trimmed), [*message.headers, ("state_omitted", b"too_large")]

    @staticmethod
    def _acknowledged_prefix(futures: Sequence[Any]) -> int:
        count = 0
        for future in futures:
            if not (future.is_done and future.succeeded()):
                break
            count += 1
        return count

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


class _OnAssignment(ConsumerRebalanceListener):
    def __init__(self, on_assigned: Any) -> None:
        self._on_assigned = on_assigned

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._on_assigned(assigned)


def event_consumer(bootstrap_servers: str, group_id: str) -> KafkaConsumer:
    """A consumer-group member that never auto-commits: the projector keeps its offsets in
    the read-model database, in the same transaction as the rows."""
    return KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6_000,
        heartbeat_interval_ms=500,
        max_poll_interval_ms=60_000,
        client_id="agentry-projector",
    )


def subscribe(consumer: KafkaConsumer, topics: list[str], on_assigned: Any) -> None:
    """``on_assigned(partitions)`` runs on every assignment, before any record is fetched."""
    consumer.subscribe(topics, listener=_OnAssignment(on_assigned))
