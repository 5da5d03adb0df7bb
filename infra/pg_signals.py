"""Small signals between Agentry processes on PostgreSQL NOTIFY: "this session owes a turn"
(API → workers), "interrupt this session" (API → whoever drives it), previews (worker → API).

NOTIFY is fire-and-forget: a listener that is reconnecting misses what was sent meanwhile.
Every signal here is therefore an accelerator over something durable — the turn sweep finds
owed turns, an interrupt is in the session's log for the driver's next look — or best-effort
by nature (previews)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

import psycopg

from infra.pg_connections import OwnConnection, listen_until_stopped

log = logging.getLogger("agentry.signals")

TURNS_CHANNEL = "agentry_turns"
INTERRUPTS_CHANNEL = "agentry_interrupts"
PREVIEWS_CHANNEL = "agentry_previews"

# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
MAX_PAYLOAD_BYTES = 7900


class PostgresNotifier:
    """Sends NOTIFYs on one connection of its own (never an event-store one: a signal must
    not wait behind, or ride inside, a save's transaction)."""

    def __init__(self, conninfo: str) -> None:
        self._lock = threading.Lock()
        self._conn = OwnConnection(conninfo)

    def notify(self, channel: str, payload: str) -> None:
        self.notify_many(channel, [payload])

    def notify_many(self, channel: str, payloads: Sequence[str]) -> None:
        """Sends ``payloads`` in order, in one transaction (one round trip for a batch).
        A failure is logged, not raised: the caller's own work is already done."""
        if not payloads:
            return
        with self._lock:
            for attempt in (1, 2):
                try:
                    conn = self._conn.get()
                    with conn.transaction(), conn.cursor() as cursor:
                        cursor.executemany("SELECT pg_notify(%s, %s)", [(channel, payload) for payload in payloads])
                    return
                except psycopg.Error as error:
                    self._conn.drop()
                    if attempt == 2:
                        log.warning("NOTIFY %s not sent: %s", channel, type(error).__name__)

    def session_signal(self, channel: str) -> Callable[[str], None]:
        """A ``session_id → None`` callable that NOTIFYs ``channel`` with the id."""
        return lambda session_id: self.notify(channel, session_id)

    def close(self) -> None:
        with self._lock:
            self._conn.drop()


class PostgresSignalListener:
    """LISTENs on some channels and hands each payload to that channel's handler, on one
    thread; reconnects after a failure."""

    def __init__(self, conninfo: str, handlers: Mapping[str, Callable[[str], None]]) -> None:
        self._conninfo = conninfo
        self._handlers = dict(handlers)
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Returns once LISTEN is in place (or after ``timeout``), so a signal sent right
        after start-up is not missed."""
        self._thread = threading.Thread(target=self._run, name="agentry-signals", daemon=True)
        self._thread.start()
        self._listening.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        listen_until_stopped(
            self._conninfo,
            self._handlers,
            self._stop,
            listening=self._listening.set,
            notice=lambda received: self._handle(received.channel, received.payload),
            wait_seconds=0.25,
            name="signal listener",
            logger=log,
        )

    def _handle(self, channel: str, payload: str) -> None:
        handler = self._handlers.get(channel)
        if handler is None:
            return
        try:
            handler(payload)
        except Exception:
            log.exception("handling a %s signal failed", channel)
