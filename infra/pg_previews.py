"""Live previews across processes: the process that streams from the provider (a worker)
publishes each preview frame with NOTIFY; every API process LISTENs and hands the frames to
its live hub, which sends them to the tails that asked. Best-effort like previews themselves:
the stored event always carries the complete content.

Frames go out from a queue on a thread of their own, in order and batched, so a slow
database never slows the provider stream down; a full queue drops frames rather than wait."""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from typing import Any, Protocol

from infra.pg_signals import MAX_PAYLOAD_BYTES, PREVIEWS_CHANNEL, PostgresNotifier

log = logging.getLogger("agentry.signals")

QUEUE_LIMIT = 10_000
BATCH = 200


class PreviewTarget(Protocol):
    def preview(self, tenant_id: str, session_id: str, event_type: str, frame: dict[str, Any]) -> None: ...


def encode_previews(origin: str, tenant_id: str, session_id: str, event_type: str, frame: dict[str, Any]) -> list[str]:
    """The NOTIFY payloads for one frame: one, or a text delta cut into pieces that each fit,
    or none when a frame of another kind is too large to send."""
    payload = json.dumps({"o": origin, "t": tenant_id, "s": session_id, "e": event_type, "f": frame}, ensure_ascii=False)
    if len(payload.encode()) <= MAX_PAYLOAD_BYTES:
        return [payload]
    content = (frame.get("delta") or {}).get("content") or {}
    text = content.get("text")
    if frame.get("type") != "event_delta" or not isinstance(text, str) or len(text) < 2:
        log.debug("a %s preview frame is too large to send; dropped", frame.get("type"))
        return []
    half = len(text) // 2
    pieces: list[str] = []
    for part in (text[:half], text[half:]):
        piece = {**frame, "delta": {**frame["delta"], "content": {**content, "text": part}}}
        pieces.extend(encode_previews(origin, tenant_id, session_id, event_type, piece))
    return pieces


class PostgresPreviewPublisher:
    """A ``PreviewSink`` for the runtime."""

    def __init__(self, notifier: PostgresNotifier, origin: str | None = None) -> None:
        self.origin = origin or uuid.uuid4().hex
        self._notifier = notifier
        self._queue: queue.Queue[str | None] = queue.Queue(QUEUE_LIMIT)
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name="agentry-previews", daemon=True)
        self._thread.start()

    def preview(self, tenant_id: str, session_id: str, event_type: str, frame: dict[str, Any]) -> None:
        for payload in encode_previews(self.origin, tenant_id, session_id, event_type, frame):
            try:
                self._queue.put_nowait(payload)
            except queue.Full:
                self._dropped += 1
                if self._dropped % 1000 == 1:
                    log.warning("preview queue full; %d frames dropped so far", self._dropped)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._notifier.notify_many(PREVIEWS_CHANNEL, batch)
                    return
                batch.append(more)
            self._notifier.notify_many(PREVIEWS_CHANNEL, batch)

    def close(self) -> None:
        """Sends what is queued, then stops."""
        self._queue.put(None)
        self._thread.join(timeout=5)


class PreviewReceiver:
    """The LISTEN side: a ``previews`` payload → the live hub. Frames this process published
    itself (``skip_origin``) were already delivered locally."""

    def __init__(self, target: PreviewTarget, skip_origin: str = "") -> None:
        self._target = target
        self._skip = skip_origin

    def __call__(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message.get("o") == self._skip:
                return
            self._target.preview(message["t"], message["s"], message["e"], message["f"])
        except (ValueError, KeyError, TypeError):
            log.debug("an unreadable preview signal was ignored")


class FanOutPreviews:
    """Frames to several sinks (this process's hub and the other processes)."""

    def __init__(self, *sinks: PreviewTarget) -> None:
        self._sinks = sinks

    def preview(self, tenant_id: str, session_id: str, event_type: str, frame: dict[str, Any]) -> None:
        for sink in self._sinks:
            sink.preview(tenant_id, session_id, event_type, frame)
