"""Spaces the reads of a log follower that every write wakes.

A background follower in the API process (the read-model projections, the vector index, the
webhook fan-out) is woken by every save. Under a steady stream of writes each wake-up read a
handful of events and paid a whole read, a transaction and a position write for them — half
of the API process's CPU per append (docs/capacity.md). A paced follower reads at once after
a quiet spell, but no sooner than ``GATHER_SECONDS`` after its previous read while writes keep
coming, so each read takes what gathered meanwhile. Someone waiting on the follower (a
request that must read its own write) hurries it past the pause."""

from __future__ import annotations

import threading
import time

# Long enough that a read under load carries many commits (each read costs a transaction and
# a statement or more per projection, whatever it carries); short beside what a person or a
# poll of a list notices. Read-your-writes waits do not pay it (they hurry the follower).
# Measured, same machine, 20 ms → 250 ms: bench/turns.py at 50 sessions 0.68–0.70 → 0.75–0.82
# of ideal (added p99 427–467 → 210–332 ms); bench/append.py 8 sessions ≈ 440 → ≈ 600/s.
GATHER_SECONDS = 0.25
# The webhook fan-out: its lag is the receivers' (systems that may chain work on each delivery),
# so it gathers as every follower did before the read models' pause grew.
PROMPT_GATHER_SECONDS = 0.02


class Pacer:
    def __init__(self, gather_seconds: float = GATHER_SECONDS) -> None:
        self._gather = gather_seconds
        self._hurry = threading.Event()
        self._last_read = -gather_seconds

    def reading(self) -> None:
        """A read starts now (what gathers after it waits for the next)."""
        self._last_read = time.monotonic()

    def found_nothing(self) -> None:
        """The read found nothing new: writes are not coming steadily, so the next one is read
        at once (e.g. the first write after start-up, or after a read that came too late)."""
        self._last_read = -self._gather

    def hurry(self) -> None:
        """Someone waits for the follower (or it is stopping): no pause before its next read."""
        self._hurry.set()

    def pause(self) -> None:
        """Before a read that a wake-up asked for: waits out the rest of the gathering time
        since the previous read, unless hurried."""
        remaining = self._gather - (time.monotonic() - self._last_read)
        if remaining > 0 and not self._hurry.is_set():
            self._hurry.wait(remaining)
        self._hurry.clear()
