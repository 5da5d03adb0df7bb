"""Size limits on what a client may send, checked at the edge before anything is stored.

Three caps, each stated in the error it causes:

- a request body: ``MAX_BODY_BYTES``;
- one session event's content (every string in it, keys included, as UTF-8):
  ``MAX_EVENT_CONTENT_BYTES``;
- one session event as the event store will record it (compact JSON, UTF-8, control
  characters escaped): ``MAX_EVENT_ENCODED_BYTES``. The check adds ``RECORD_ALLOWANCE_BYTES``
  for what the server adds to the client's event (ids, seq, timestamps, the event's name).

An event can pass the content cap and still fail the encoded one: text made of control
characters takes six bytes per character once encoded.
"""

from __future__ import annotations

from typing import Any

import falcon
import orjson

MiB = 1024 * 1024
MAX_BODY_BYTES = 8 * MiB
MAX_EVENT_CONTENT_BYTES = 2 * MiB
MAX_EVENT_ENCODED_BYTES = 4 * MiB
RECORD_ALLOWANCE_BYTES = 1024
# An uploaded file (``POST /v1/files``), by default; ``AGENTRY_FILE_MAX_BYTES`` moves it.
MAX_FILE_BYTES = 500 * MiB


def describe(size: int) -> str:
    return f"{size / MiB:.0f} MiB" if size % MiB == 0 else f"{size / MiB:.2f} MiB"


class EventTooLarge(falcon.HTTPContentTooLarge):
    """Not a ValueError, so pydantic lets it through a validator to the 413 handler."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(description=f"{where}: {message}")


def check_event_sizes(events: Any, field: str) -> Any:
    """A ``mode="before"`` validator for a list of client events: refuses the first event over
    a cap with a 413 naming it. Anything that is not a list of objects is left to the schema."""
    if not isinstance(events, list):
        return events
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            continue
        where = f"{field}.{index}"
        content = content_bytes(event)
        if content > MAX_EVENT_CONTENT_BYTES:
            raise EventTooLarge(
                where,
                f"the event's content is {describe(content)}; one event may carry at most "
                f"{describe(MAX_EVENT_CONTENT_BYTES)} of content",
            )
        encoded = len(orjson.dumps(event)) + RECORD_ALLOWANCE_BYTES
        if encoded > MAX_EVENT_ENCODED_BYTES:
            raise EventTooLarge(
                where,
                f"the event would be recorded as {describe(encoded)} of JSON; one event may be at most "
                f"{describe(MAX_EVENT_ENCODED_BYTES)} encoded (control characters take 6 bytes each)",
            )
    return events


def content_bytes(value: Any) -> int:
    """UTF-8 bytes of every string in ``value`` (object keys included)."""
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item) if item.isascii() else len(item.encode("utf-8", "surrogatepass"))
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return total
