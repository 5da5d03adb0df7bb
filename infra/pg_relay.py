"""What the relay keeps in PostgreSQL: its position, and the advisory lock that makes it the
one active relay. Both live on one dedicated connection, so a relay that lost its
connection (and with it the lock) cannot record a position any more; the relay also asks
whether it still holds the lock before each batch it publishes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg

from application.relay import LeaseLost
from infra.pg_connections import KEEPALIVE_OPTIONS

log = logging.getLogger("agentry.relay")

LOCK_KEY = 0x61676E74  # "agnt": one advisory-lock key per Agentry database
POSITION_NAME = "kafka"


class RelayLease:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn = self._connect()
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS agentry_relay_positions "
            "(name text PRIMARY KEY, position bigint NOT NULL)"
        )
        self._conn.execute(
            "INSERT INTO agentry_relay_positions (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING",
            (POSITION_NAME,),
        )

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self._conninfo, autocommit=True, **KEEPALIVE_OPTIONS)
        conn.execute("SET statement_timeout = '10s'")
        return conn

    def acquire(self, should_stop: Callable[[], bool], poll_seconds: float = 1.0) -> bool:
        waiting_logged = False
        while not should_stop():
            try:
                held = self._one("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            except psycopg.Error as error:
                log.warning("relay lock connection failed (%s); reconnecting", type(error).__name__)
                time.sleep(poll_seconds)
                self._reconnect()
                continue
            if held:
                log.info("this relay is the active one")
                return True
            if not waiting_logged:
                log.info("another relay is active; standing by")
                waiting_logged = True
            time.sleep(poll_seconds)
        return False

    def held(self) -> bool:
        try:
            held = self._one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                " AND pid = pg_backend_pid() AND granted AND classid = 0 AND objid = %s"
                " AND objsubid = 1)",
                (LOCK_KEY,),
            )
        except psycopg.Error:
            return False
        return bool(held)

    def get(self) -> int:
        return int(self._one("SELECT position FROM agentry_relay_positions WHERE name = %s", (POSITION_NAME,)))

    def _one(self, query: str, params: tuple[Any, ...]) -> Any:
        """The single value a one-row query answers (every query here answers one row)."""
        row = self._conn.execute(query, params).fetchone()
        if row is None:
            raise RuntimeError(f"expected one row from: {query}")
        return row[0]

    def set(self, position: int) -> None:
        try:
            self._conn.execute(
                "UPDATE agentry_relay_positions SET position = %s WHERE name = %s",
                (position, POSITION_NAME),
            )
        except psycopg.OperationalError as error:
            raise LeaseLost(f"the relay lock connection failed: {type(error).__name__}") from error

    def release(self) -> None:
        """Gives the lock up (by dropping its connection) and opens a fresh one to stand by on."""
        self._reconnect()

    def _reconnect(self) -> None:
        try:
            self._conn.close()
        except psycopg.Error:
            pass
        try:
            self._conn = self._connect()
        except psycopg.Error as error:
            log.warning("relay cannot reach PostgreSQL (%s); will retry", type(error).__name__)

    def close(self) -> None:
        self._conn.close()
