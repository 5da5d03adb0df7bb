"""Kafka adapters (kafka-python): the relay's publisher and the projector's consumer."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import (
    InvalidProducerEpochError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
    TopicAlreadyExistsError,
)
from kafka.partitioner import DefaultPartitioner

from application.outbox import AGGREGATE_TOPICS, OutboxMessage
from application.relay import Fenced

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


class RememberingPartitioner(DefaultPartitioner):
    """The default partitioner's choice (murmur2 of the key, as Java clients make it),
    remembered per key and partition count: the pure-Python hash cost the relay more per
    message than building the message, and an aggregate's events share their key."""

    def __init__(self) -> None:
        self._chosen: dict[tuple[str, bytes], tuple[int, int]] = {}

    def partition(  # kafka-python's signature
        self, topic: str, key: Any, serialized_key: bytes | None, value: Any, serialized_value: Any, cluster: Any
    ) -> int:
        partitions = cluster.partitions_for_topic(topic)
        if serialized_key is None or not partitions:
            return int(super().partition(topic, key, serialized_key, value, serialized_value, cluster))
        remembered = self._chosen.get((topic, serialized_key))
        if remembered is not None and remembered[0] == len(partitions):
            return remembered[1]
        chosen = int(super().partition(topic, key, serialized_key, value, serialized_value, cluster))
        if len(self._chosen) > 100_000:
            self._chosen.clear()
        self._chosen[(topic, serialized_key)] = (len(partitions), chosen)
        return chosen


def producer_settings() -> dict[str, Any]:
    """What the relay's producer shares with bench/relay.py's raw producer. One request in
    flight per connection, so a retry cannot reorder a key; batches of up to 256 kB, so a
    batch of the relay's messages (each with its headers) costs a handful of produce
    requests, not dozens."""
    return {
        "acks": "all",
        "max_in_flight_requests_per_connection": 1,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "partitioner": RememberingPartitioner(),
    }


class KafkaPublisher:
    """A transactional producer with one fixed transactional id: each batch is one
    transaction, acknowledged only once committed (acks=all), and a newer relay's
    ``init_transactions`` bumps the producer epoch, after which the broker refuses every
    write of this one (``Fenced``). One request in flight per connection, so retries cannot
    reorder a key, and a fresh producer after any failure, so the relay re-sends from the
    first unacknowledged message on a producer with no poisoned state (its open transaction
    is aborted by the next ``init_transactions``)."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: list[str],
        transactional_id: str,
        flush_timeout: float = 10.0,
        max_message_bytes: int = 900_000,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.transactional_id = transactional_id
        self._bootstrap_servers = bootstrap_servers
        self._topics = topics
        self._flush_timeout = flush_timeout
        self._producer: KafkaProducer | None = None
        self._futures: list[Any] = []
        self._failure: BaseException | None = None

    def _connect(self) -> KafkaProducer:
        if self._producer is None:
            # Also after a failure: a broker that came back empty has lost its topics.
            ensure_topics(self._bootstrap_servers, self._topics)
            producer = KafkaProducer(
                bootstrap_servers=self._bootstrap_servers,
                transactional_id=self.transactional_id,
                **producer_settings(),
                request_timeout_ms=10_000,
                # send() blocks while it has no metadata for a topic; a dead broker must
                # surface as an error the relay retries, not as a minute of silence.
                max_block_ms=5_000,
                retry_backoff_ms=200,
                reconnect_backoff_max_ms=2_000,
                client_id="agentry-relay",
            )
            try:
                producer.init_transactions()
            except BaseException:
                producer.close(timeout=0)
                raise
            self._producer = producer
        return self._producer

    def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception:  # closing a broken producer must not stop the relay
                log.debug("closing producer failed", exc_info=True)

    def fence(self) -> None:
        self._discard()  # a producer kept from before a lost lease is fenced already
        try:
            self._connect()
        except KafkaError as error:
            log.warning("could not initialise the relay's transactional producer: %s", type(error).__name__)

    def send(self, messages: Sequence[OutboxMessage]) -> None:
        self._futures = []
        self._failure = None
        try:
            producer = self._connect()
            producer.begin_transaction()
            for m in messages:
                value, headers = self.encode(m)
                self._futures.append(producer.send(m.topic, key=m.key, value=value, headers=headers))
        except KafkaError as error:
            self._failure = error

    def acknowledged(self) -> int:
        """All of the last batch, or none of it: a transaction commits whole."""
        producer, futures = self._producer, self._futures
        self._futures = []
        try:
            if self._failure is not None:
                raise self._failure
            assert producer is not None
            producer.flush(timeout=self._flush_timeout)
            refused = next((f for f in futures if not (f.is_done and f.succeeded())), None)
            if refused is not None:
                reason = type(refused.exception).__name__ if refused.is_done else "timeout"
                log.warning("broker refused a message: %s", reason)
                raise refused.exception if refused.is_done else KafkaTimeoutError()
            self._commit(producer)
        except KafkaError as error:
            fenced = _fenced(error, producer, futures)
            self._discard()
            if fenced:
                raise Fenced("the broker fenced this relay's producer: a newer relay took over") from error
            log.warning("publishing failed: %s", type(error).__name__)
            return 0
        finally:
            self._failure = None
        return len(futures)

    def _commit(self, producer: KafkaProducer) -> None:
        # commit_transaction() waits without a limit; a broker gone mid-commit must surface
        # as an error the relay retries, so wait on its result with the flush timeout.
        result = producer._transaction_manager.begin_commit()
        producer._sender.wakeup()
        if not result.wait(timeout_ms=self._flush_timeout * 1000):
            raise KafkaTimeoutError("the transaction did not commit in time")

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

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


_FENCING_ERRORS = (ProducerFencedError, InvalidProducerEpochError)


def _fenced(error: BaseException, producer: KafkaProducer | None, futures: Sequence[Any]) -> bool:
    """Whether a failure means a newer producer holds the transactional id (kafka-python
    reports it as such, wrapped in a state error, or on the refused sends)."""
    if isinstance(error, _FENCING_ERRORS):
        return True
    manager = getattr(producer, "_transaction_manager", None)
    if manager is not None and isinstance(manager.last_error, _FENCING_ERRORS):
        return True
    return any(f.is_done and isinstance(f.exception, _FENCING_ERRORS) for f in futures)


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
        # The relay publishes in transactions: a batch a failed relay left uncommitted is
        # never projected (the relay that takes over re-sends it).
        isolation_level="read_committed",
        session_timeout_ms=6_000,
        heartbeat_interval_ms=500,
        max_poll_interval_ms=60_000,
        client_id="agentry-projector",
    )


def subscribe(consumer: KafkaConsumer, topics: list[str], on_assigned: Any) -> None:
    """``on_assigned(partitions)`` runs on every assignment, before any record is fetched."""
    consumer.subscribe(topics, listener=_OnAssignment(on_assigned))
