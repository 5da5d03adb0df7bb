"""Options for long-lived PostgreSQL connections (the relay's lock, the LISTEN feed): a
silently dropped peer must surface in seconds, not after the OS's TCP timeouts."""

from __future__ import annotations

from typing import Any

KEEPALIVE_OPTIONS: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "connect_timeout": 10,
}
