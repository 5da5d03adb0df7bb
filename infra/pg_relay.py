"""What the relay keeps in PostgreSQL: its position, and the advisory lock that makes it the
one active relay. Both live on one dedicated connection, so a relay that lost its
connection (and with it the lock) cannot record a position any more."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg

log = logging.getLogger("agentry.relay")

LOCK_KEY = 0x61676E74  # "agnt": one advisory-lock key per Agentry database
POSITION_NAME = "kafka"


class RelayLease:
    def __init__(self, conninfo: str) -> None:
        self._conn = psycopg.connect(conninfo, autocommit=True)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS agentry_relay_positions "
            "(name text PRIMARY KEY, position bigint NOT NULL)"
        )
        self._conn.execute(
            "INSERT INTO agentry_relay_positions (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING",
            (POSITION_NAME,),
        )

    def acquire(self, should_stop: Callable[[], bool], poll_seconds: float = 1.0) -> bool:
        waiting_logged = False
        while not should_stop():
            (held,) = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
            if held:
                log.info("this relay is the active one")
                return True
            if not waiting_logged:
                log.info("another relay is active; standing by")
                waiting_logged = True
            time.sleep(poll_seconds)
        return False

    def get(self) -> int:
        row = self._conn.execute(
            "SELECT position FROM agentry_relay_positions WHERE name = %s", (POSITION_NAME,)
        ).fetchone()
        return int(row[0])

    def set(self, position: int) -> None:
        self._conn.execute(
            "UPDATE agentry_relay_positions SET position = %s WHERE name = %s", (position, POSITION_NAME)
        )

    def close(self) -> None:
        self._conn.close()
