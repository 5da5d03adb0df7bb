"""Long-lived PostgreSQL connections (the relay's lock, the LISTEN feed, leases, NOTIFY): a
silently dropped peer must surface in seconds, not after the OS's TCP timeouts."""

from __future__ import annotations

from typing import Any

import psycopg

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

    def drop(self) -> None:
        """Closes it (if open); the next ``get`` opens a fresh one."""
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None
