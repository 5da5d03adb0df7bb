"""Log lines: one JSON object a line for log collectors, readable lines at a terminal.

``AGENTRY_LOG_FORMAT`` is ``auto`` (JSON unless stderr is a terminal), ``json`` or ``text``.
A record's structured fields travel in ``extra={"fields": {...}}``: JSON puts them at the top
level of the object, text appends them as ``key=value``. What goes into fields is chosen by
the code that logs (routes, ids, counts), never request bodies, headers or query strings, so
no key, token or password can reach a line through them.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

LOG_FORMATS = ("auto", "json", "text")
# Keys a record's fields may not take over (they describe the record itself).
_RESERVED = frozenset({"time", "level", "logger", "message", "pid", "exception"})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in _fields(record).items():
            entry[f"field_{key}" if key in _RESERVED else key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self, with_pid: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s" + ("[%(process)d]" if with_pid else "") + ": %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)
        fields = _fields(record)
        if fields:
            line += "  " + " ".join(f"{key}={value}" for key, value in fields.items())
        return line


def wants_json(log_format: str, stream: TextIO) -> bool:
    if log_format == "json":
        return True
    if log_format == "text":
        return False
    isatty = getattr(stream, "isatty", None)
    return not (isatty is not None and isatty())


def configure_logging(level: str, log_format: str = "auto", with_pid: bool = False, stream: TextIO | None = None) -> None:
    """The root logger writes to ``stream`` (stderr) in the chosen format; every logger that
    propagates (Agentry's, uvicorn's once its own config is off) comes out the same way."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if wants_json(log_format, stream) else TextFormatter(with_pid))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # uvicorn's default config (applied by any earlier uvicorn.Config in this process) gives
    # its loggers their own handlers and stops them propagating: hand them back to the root
    # so they come out in this format whatever ran first. Its access log stays off (it
    # prints query strings).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
        named = logging.getLogger(name)
        for old in list(named.handlers):
            named.removeHandler(old)
        named.propagate = True
        named.setLevel(logging.NOTSET)
