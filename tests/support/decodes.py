"""Watches which events an event store decodes (a follower that should pass some over)."""

from __future__ import annotations

import pytest

from infra.event_store import EventsourcingEventStore


def record_decodes(monkeypatch: pytest.MonkeyPatch, store: EventsourcingEventStore) -> list[str]:
    """The topics of the notifications ``store`` decodes from now on, in order."""
    decoded: list[str] = []
    decode = store.decode
    monkeypatch.setattr(store, "decode", lambda notification: decoded.append(notification.topic) or decode(notification))
    return decoded
