"""The Prometheus adapter of ``application.telemetry.Telemetry``.

Each process (each ``build``) has a registry of its own rather than prometheus_client's
global one, so two apps in one test process never share or clash over a metric. Values read
from the database (projection positions, the log's head) are read at scrape time by a
collector, never kept up to date in the background.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

log = logging.getLogger("agentry.metrics")

# Seconds: requests and appends are mostly milliseconds; a provider's answer takes seconds.
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class _Positions(Collector):
    """Projection positions and lags, and the relay's, read when scraped."""

    def __init__(self) -> None:
        self.projections: tuple[Callable[[], dict[str, int]], Callable[[], int]] | None = None
        self.relay: tuple[Callable[[], int], Callable[[], int]] | None = None
        self.partitions: Callable[[], dict[tuple[str, int], tuple[int, int]]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.projections is not None:
            positions_of, head_of = self.projections
            try:
                positions, head = positions_of(), head_of()
            except Exception:  # a scrape must answer while the database does not
                log.warning("projection positions could not be read for /metrics", exc_info=True)
            else:
                position = GaugeMetricFamily(
                    "agentry_projection_position", "Last event applied, per projection", labels=["projection"]
                )
                lag = GaugeMetricFamily(
                    "agentry_projection_lag_events", "Events recorded but not yet applied, per projection", labels=["projection"]
                )
                for name, value in sorted(positions.items()):
                    position.add_metric([name], value)
                    lag.add_metric([name], max(head - value, 0))
                yield position
                yield lag
                yield GaugeMetricFamily("agentry_event_log_head", "Highest notification id in the event store", value=head)
        if self.relay is not None:
            position_of, head_of = self.relay
            try:
                relay_position, head = position_of(), head_of()
            except Exception:
                log.warning("relay position could not be read for /metrics", exc_info=True)
            else:
                yield GaugeMetricFamily("agentry_relay_position", "Last event the broker acknowledged", value=relay_position)
                yield GaugeMetricFamily(
                    "agentry_relay_lag_events", "Events recorded but not yet published", value=max(head - relay_position, 0)
                )
        if self.partitions is not None:
            # A copy the consumer's loop took at its last poll: nothing here touches the consumer.
            progress = self.partitions()
            position = GaugeMetricFamily(
                "agentry_kafka_consumer_position", "Next offset the projector reads, per partition", labels=["topic", "partition"]
            )
            lag = GaugeMetricFamily(
                "agentry_kafka_consumer_lag_records",
                "Records in the partition not yet read (high watermark - position), per partition",
                labels=["topic", "partition"],
            )
            for (topic, partition), (offset, highwater) in sorted(progress.items()):
                position.add_metric([topic, str(partition)], offset)
                lag.add_metric([topic, str(partition)], max(highwater - offset, 0))
            yield position
            yield lag


MAX_MODEL_LABELS = 64

# A `_created` sample per series would make every scrape about a third larger, for a
# timestamp Prometheus does not need.
disable_created_metrics()


class PrometheusTelemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(
            "agentry_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self._latency = Histogram(
            "agentry_http_request_duration_seconds", "Time to answer an HTTP request (a stream: until its headers)",
            ["method", "route", "status"], buckets=FAST_BUCKETS, registry=r,
        )  # fmt: skip
        self._appends = Counter("agentry_event_store_appends", "Committed appends to the event store", registry=r)
        self._appended = Counter("agentry_event_store_events_appended", "Events committed to the event store", registry=r)
        self._append_latency = Histogram(
            "agentry_event_store_append_duration_seconds", "Time from queueing an append to its commit",
            buckets=FAST_BUCKETS, registry=r,
        )  # fmt: skip
        self._streams = Gauge("agentry_sse_streams_open", "Live event streams open", registry=r)
        self._delivered = Counter("agentry_sse_events_delivered", "Events sent on live streams", registry=r)
        self._turns = Gauge("agentry_turns_running", "Session turns being driven in this process", registry=r)
        self._turn_seconds = Histogram(
            "agentry_turn_duration_seconds", "Time a session was driven, per turn taken", buckets=SLOW_BUCKETS, registry=r
        )
        self._provider = Histogram(
            "agentry_provider_request_duration_seconds", "Model provider request latency (whole streamed answer)",
            ["provider", "model", "outcome"], buckets=SLOW_BUCKETS, registry=r,
        )  # fmt: skip
        self._tokens = Counter("agentry_model_tokens", "Tokens used, per model and direction", ["model", "direction"], registry=r)
        self._cost = Counter("agentry_model_cost_usd", "Cost at list price, per model", ["model"], registry=r)
        self._projected = Counter(
            "agentry_projection_events_applied", "Events applied by Kafka-fed projections, per projection",
            ["projection"], registry=r,
        )  # fmt: skip
        self._projection_failures = Counter(
            "agentry_projection_batches_failed", "Kafka-fed projection batches rolled back (and retried)", registry=r
        )
        self._positions = _Positions()
        r.register(self._positions)
        self._server: Any = None
        self._lock = threading.Lock()
        self._models: set[str] = set()

    # -- Telemetry ---------------------------------------------------------------------------

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self._requests.labels(*labels).inc()
        self._latency.labels(*labels).observe(seconds)

    def appended(self, events: int, seconds: float) -> None:
        self._appends.inc()
        self._appended.inc(events)
        self._append_latency.observe(seconds)

    def stream_opened(self) -> None:
        self._streams.inc()

    def stream_closed(self) -> None:
        self._streams.dec()

    def delivered(self, events: int) -> None:
        self._delivered.inc(events)

    def turn_started(self) -> None:
        self._turns.inc()

    def turn_ended(self, seconds: float) -> None:
        self._turns.dec()
        self._turn_seconds.observe(seconds)

    def _model_label(self, model: str) -> str:
        """An agent's ``model`` is free text: the first ``MAX_MODEL_LABELS`` names seen get a
        series of their own, later ones (and over-long ones) share ``other``, so no caller can
        grow the exposition without bound."""
        with self._lock:
            if model in self._models:
                return model
            if len(model) <= 100 and len(self._models) < MAX_MODEL_LABELS:
                self._models.add(model)
                return model
        return "other"

    def provider_request(self, provider: str, model: str, seconds: float, outcome: str) -> None:
        self._provider.labels(provider, self._model_label(model), outcome).observe(seconds)

    def usage(self, model: str, input_tokens: int, output_tokens: int, cost_micros: int) -> None:
        label = self._model_label(model)
        self._tokens.labels(label, "input").inc(input_tokens)
        self._tokens.labels(label, "output").inc(output_tokens)
        self._cost.labels(label).inc(cost_micros / 1_000_000)

    def watch_projections(self, positions: Callable[[], dict[str, int]], head: Callable[[], int]) -> None:
        self._positions.projections = (positions, head)

    def watch_relay(self, position: Callable[[], int], head: Callable[[], int]) -> None:
        self._positions.relay = (position, head)

    def projected(self, projection: str, events: int) -> None:
        self._projected.labels(projection).inc(events)

    def projection_failed(self) -> None:
        self._projection_failures.inc()

    def watch_partitions(self, progress: Callable[[], dict[tuple[str, int], tuple[int, int]]]) -> None:
        self._positions.partitions = progress

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # -- a port of its own (relay, projector, worker) ------------------------------------------

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Answers scrapes on ``host:port`` (0: a free port) from a thread; returns the port."""
        with self._lock:
            if self._server is None:
                self._server, _ = start_http_server(port, addr=host, registry=self.registry)
                log.info("metrics on http://%s:%d/metrics", host, self._server.server_port)
            return int(self._server.server_port)

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None
