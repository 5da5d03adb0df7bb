"""The ``HttpPoster`` the webhook dispatcher sends with: ``HttpxPoster`` (one POST, no redirects
followed), except that httpx does not log these requests. httpx logs every request's full URL
at INFO, and a webhook URL often carries a token in its query; the dispatcher logs its own
lines, by endpoint and delivery id, never the URL."""

from __future__ import annotations

import logging
import threading

from application.ports import HttpReply
from infra.http_poster import HttpxPoster

_quiet = threading.local()


class _NotWhileQuiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "on", False)


_FILTER = _NotWhileQuiet()


class QuietHttpxPoster(HttpxPoster):
    def __init__(self) -> None:
        logger = logging.getLogger("httpx")  # its request lines ("HTTP Request: POST <url> …")
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)

    def post(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> HttpReply:
        _quiet.on = True
        try:
            return super().post(url, headers, body, timeout)
        finally:
            _quiet.on = False
