"""What the processes measure about themselves, behind a port: the application and the HTTP
layer report through ``Telemetry``; the composition root plugs in the Prometheus adapter
(``infra/metrics.py``) or leaves ``NoTelemetry``, which costs nothing.

Also here: the two wrappers that measure the turn loop from outside it (a timed provider and
a timed turn runner), so the loop itself knows nothing of metrics or of log lines per turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from application.ports import (
    Cancellation,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    ProviderCancelled,
    ProviderDelta,
    ProviderTarget,
)
from application.runtime.pricing import cost_micros

log = logging.getLogger("agentry.turns")


class Telemetry(Protocol):
    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered; ``route`` is the route's template, never the raw path."""
        ...

    def appended(self, events: int, seconds: float) -> None:
        """One committed append of ``events`` events to the event store."""
        ...

    def stream_opened(self) -> None: ...

    def stream_closed(self) -> None: ...

    def delivered(self, events: int) -> None:
        """Events sent on live streams (replayed or live)."""
        ...

    def turn_started(self) -> None: ...

    def turn_ended(self, seconds: float) -> None: ...

    def provider_request(self, provider: str, model: str, seconds: float, outcome: str) -> None: ...

    def usage(self, model: str, input_tokens: int, output_tokens: int, cost_micros: int) -> None: ...

    def watch_projections(self, positions: Callable[[], dict[str, int]], head: Callable[[], int]) -> None:
        """Projection positions and lag, read at each scrape."""
        ...

    def watch_relay(self, position: Callable[[], int], head: Callable[[], int]) -> None: ...

    def projected(self, projection: str, events: int) -> None:
        """Events a Kafka-fed projection applied in a committed batch (redeliveries not counted)."""
        ...

    def projection_failed(self) -> None:
        """A Kafka-fed projection batch rolled back; it is retried from the stored offsets."""
        ...

    def watch_partitions(self, progress: Callable[[], dict[tuple[str, int], tuple[int, int]]]) -> None:
        """A consumer's ``(topic, partition) -> (position, high watermark)``, read at each scrape."""
        ...

    def exposition(self) -> tuple[bytes, str]:
        """The current values as the text format and its content type."""
        ...


class NoTelemetry:
    """Measures nothing (tests, commands that run once)."""

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        pass

    def appended(self, events: int, seconds: float) -> None:
        pass

    def stream_opened(self) -> None:
        pass

    def stream_closed(self) -> None:
        pass

    def delivered(self, events: int) -> None:
        pass

    def turn_started(self) -> None:
        pass

    def turn_ended(self, seconds: float) -> None:
        pass

    def provider_request(self, provider: str, model: str, seconds: float, outcome: str) -> None:
        pass

    def usage(self, model: str, input_tokens: int, output_tokens: int, cost_micros: int) -> None:
        pass

    def watch_projections(self, positions: Callable[[], dict[str, int]], head: Callable[[], int]) -> None:
        pass

    def watch_relay(self, position: Callable[[], int], head: Callable[[], int]) -> None:
        pass

    def projected(self, projection: str, events: int) -> None:
        pass

    def projection_failed(self) -> None:
        pass

    def watch_partitions(self, progress: Callable[[], dict[tuple[str, int], tuple[int, int]]]) -> None:
        pass

    def exposition(self) -> tuple[bytes, str]:
        return b"", "text/plain; version=0.0.4; charset=utf-8"


class TimedProvider:
    """A ``ModelProvider`` that reports each request's latency, tokens and list-price cost."""

    def __init__(self, provider: ModelProvider, telemetry: Telemetry) -> None:
        self._provider = provider
        self._telemetry = telemetry

    def stream(
        self,
        target: ProviderTarget,
        request: ModelRequest,
        on_delta: Callable[[ProviderDelta], None],
        cancel: Cancellation,
    ) -> ModelResponse:
        started = time.perf_counter()
        outcome = "error"
        try:
            response = self._provider.stream(target, request, on_delta, cancel)
            outcome = "ok"
        except ProviderCancelled:
            outcome = "cancelled"  # an interrupt, not a provider failure
            raise
        finally:
            self._telemetry.provider_request(target.provider, target.model, time.perf_counter() - started, outcome)
        usage = response.usage
        cost, _ = cost_micros(target.model, usage)
        self._telemetry.usage(target.model, usage.input_tokens, usage.output_tokens, cost)
        return response


class TimedTurns:
    """A turn runner (``TurnDispatcher``'s) that counts turns running and writes one log
    line per turn taken."""

    def __init__(self, runtime: Any, telemetry: Telemetry) -> None:
        self._runtime = runtime
        self._telemetry = telemetry

    def take_turns(self, session_id: str, cancel: Any) -> None:
        started = time.perf_counter()
        self._telemetry.turn_started()
        outcome = "error"
        try:
            self._runtime.take_turns(session_id, cancel)
            outcome = "interrupted" if getattr(cancel, "cancelled", False) else "done"
        finally:
            seconds = time.perf_counter() - started
            self._telemetry.turn_ended(seconds)
            log.info(
                "turn %s",
                outcome,
                extra={"fields": {"step": "turn", "session_id": session_id, "outcome": outcome, "duration_ms": round(seconds * 1000, 1)}},
            )
