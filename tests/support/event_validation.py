"""Checks every event a test server stored against the published event catalogue, so an
event whose shape drifted from its documented schema fails the suite that produced it."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema_rs

from infra.event_store import EventsourcingEventStore
from interfaces.event_catalogue import by_topic

BATCH = 500


@cache
def _validator(topic: str) -> Any:
    return jsonschema_rs.validator_for(by_topic()[topic].schema)


def stored_event_problems(store: EventsourcingEventStore) -> tuple[int, list[str]]:
    """(events checked, one line per event that breaks its schema or has none)."""
    known = by_topic()
    checked, after = 0, 0
    problems: list[str] = []
    while True:
        batch = store.notifications(after, BATCH)
        if not batch:
            return checked, problems
        for notification in batch:
            after = notification.id
            checked += 1
            if notification.topic not in known:
                problems.append(f"#{notification.id} {notification.topic}: not in the event catalogue")
                continue
            state = store.state_of(notification)
            for error in _validator(notification.topic).iter_errors(state):
                problems.append(f"#{notification.id} {notification.topic}: {error.message[:300]}")
