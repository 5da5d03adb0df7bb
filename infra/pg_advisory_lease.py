"""A PostgreSQL advisory lock that makes one process of many the active one for a job (the
Kafka relay, the webhook dispatcher), held on a dedicated connection: a process whose
connection dropped has lost the lock with it, and ``held`` asks the database, not a flag."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg

from infra.pg_connections import OwnConnection

log = logging.getLogger("agentry.lease")

WEBHOOKS_LOCK_KEY = 0x61677768  # "agwh"
# The API process of `serve --workers N` that follows the log (projections, vectors, followers).
LOG_FOLLOWING_LOCK_KEY = 0x61676C66  # "aglf"


class AdvisoryLease:
    def __init__(self, conninfo: str, key: int, job: str) -> None:
        self._key = key
        self._job = job
        self._conn = OwnConnection(conninfo, "SET statement_timeout = '10s'")

    def acquire(self, should_stop: Callable[[], bool], poll_seconds: float = 1.0) -> bool:
        waiting_logged = False
        while not should_stop():
            try:
                held = self._one("SELECT pg_try_advisory_lock(%s)", (self._key,))
            except psycopg.Error as error:
                log.warning("%s lock connection failed (%s); reconnecting", self._job, type(error).__name__)
                self.release()
                time.sleep(poll_seconds)
                continue
            if held:
                log.info("this process runs the %s", self._job)
                return True
            if not waiting_logged:
                log.info("another process runs the %s; standing by", self._job)
                waiting_logged = True
            time.sleep(poll_seconds)
        return False

    def held(self) -> bool:
        try:
            return bool(
                self._one(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                    " AND pid = pg_backend_pid() AND granted AND classid = 0 AND objid = %s AND objsubid = 1)",
                    (self._key,),
                )
            )
        except psycopg.Error:
            return False

    def _one(self, query: str, params: tuple[Any, ...]) -> Any:
        """The single value a one-row query answers (every query here answers one row)."""
        row = self._conn.get().execute(query, params).fetchone()
        if row is None:
            raise RuntimeError(f"expected one row from: {query}")
        return row[0]

    def release(self) -> None:
        """Gives the lock up by closing its connection (the next use opens a fresh one)."""
        self._conn.drop()

    close = release
