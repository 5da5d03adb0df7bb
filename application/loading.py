"""Loads the aggregate a caller names by public id, as long as it belongs to the caller's
tenant; anything else — a malformed id, no such stream, another type, another tenant — is
the same 404, so ids of other tenants cannot be probed."""

from __future__ import annotations

from typing import TypeVar

from domain.ids import looks_like, stream_id

from application.errors import NotFound
from application.ports import EventStore
from application.tenancy import Principal

A = TypeVar("A")


def load_owned(store: EventStore, who: Principal, kind: type[A], prefix: str, noun: str, public_id: str) -> A:
    missing = NotFound(f"{noun} {public_id!r} not found")
    if not looks_like(prefix, public_id):
        raise missing
    try:
        aggregate = store.load(stream_id(public_id))
    except NotFound:
        raise missing from None
    if not isinstance(aggregate, kind) or aggregate.tenant_id != who.tenant_id:
        raise missing
    return aggregate
