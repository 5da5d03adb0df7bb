"""Long-lived PostgreSQL connections (the relay's lock, the LISTEN feed, leases, NOTIFY): a
silently dropped peer must surface in seconds, not after the OS's TCP timeouts."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql

KEEPALIVE_OPTIONS: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "connect_timeout": 10,
}


class OwnConnection:
    """An autocommit connection a component keeps for itself (never an event-store one),
    opened on first use and opened again after it broke. Not thread-safe: its owner
    serialises use."""

    def __init__(self, conninfo: str, *setup: str) -> None:
        self._conninfo = conninfo
        self._setup = setup
        self._conn: psycopg.Connection[Any] | None = None

    def get(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._conninfo, autocommit=True, **KEEPALIVE_OPTIONS)
            for statement in self._setup:
                conn.execute(statement)
            self._conn = conn
        return self._conn

    def current(self) -> psycopg.Connection[Any] | None:
        """The connection if it is open; never opens one (what it held, e.g. a lock, went
        with the last one)."""
        return self._conn if self._conn is not None and not self._conn.closed else None

    def drop(self) -> None:
        """Closes it (if open); the next ``get`` opens a fresh one."""
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None


def listen_until_stopped(
    conninfo: str,
    channels: Iterable[str],
    stop: threading.Event,
    *,
    listening: Callable[[], None],
    notice: Callable[[psycopg.Notify], None],
    woken: Callable[[], None] = lambda: None,
    wait_seconds: float,
    stop_after: int | None = None,
    name: str,
    logger: logging.Logger,
) -> None:
    """LISTENs on ``channels`` until ``stop``: ``listening`` once LISTEN is in place (after
    every reconnect), ``notice`` for each notification, ``woken`` after each wait (a
    notification or ``wait_seconds`` passed). Any failure — the connection's, or a callback's
    — reconnects after a second rather than ending the loop: its owner would go deaf until a
    restart."""
    channels = list(channels)
    while not stop.is_set():
        try:
            with psycopg.connect(conninfo, autocommit=True, **KEEPALIVE_OPTIONS) as conn:
                for channel in channels:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                listening()
                while not stop.is_set():
                    for received in conn.notifies(timeout=wait_seconds, stop_after=stop_after):
                        notice(received)
                        if stop.is_set():
                            break
                    woken()
        except Exception as error:
            logger.warning("%s failed (%s); reconnecting", name, type(error).__name__)
            stop.wait(1.0)
