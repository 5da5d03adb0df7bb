"""Model cards: a tenant's named way to reach a model provider, and the claim on its handle.

A card's secrets (the API key and the custom header values) are sealed by the application
before they reach this module: events carry only sealed values, a 4-character preview of
the key and the header names. The domain never sees cleartext.

``model_id`` (the handle an agent's ``model`` names) is unique among a tenant's live cards.
An event store has no unique index across streams, so the handle is an aggregate of its
own, ``ModelHandle``, whose stream id derives from (tenant, model_id): two cards claiming
one handle write the same stream, and the store's optimistic check lets only one of them
win. The card and its handle are saved in one append."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, Taken
from domain.ids import stream_id
from domain.stamps import Stamped

# Providers whose endpoint is not a default one: they need a base URL to go anywhere.
NEEDS_BASE_URL = frozenset({"ant-compatible", "oai-compatible"})


class MissingBaseUrl(DomainError):
    """A ``*-compatible`` provider without a base URL has nowhere to send requests."""


def check_target(provider: str, base_url: str | None) -> None:
    if provider in NEEDS_BASE_URL and not base_url:
        raise MissingBaseUrl(f"provider {provider!r} needs a base_url (the compatible endpoint to call)")


def handle_stream_id(tenant_id: str, model_id: str) -> UUID:
    # JSON keeps the pair unambiguous whatever characters the handle holds.
    return stream_id("modelhandle_" + json.dumps([tenant_id, model_id]))


class ModelCard(Aggregate):
    @staticmethod
    def create_id(model_card_id: str, **_: Any) -> UUID:
        return stream_id(model_card_id)

    class Created(Aggregate.Created):
        model_card_id: str
        tenant_id: str
        model_id: str
        provider: str
        model: str
        base_url: str | None
        sealed_api_key: str
        api_key_preview: str
        header_names: list[str]
        sealed_headers: str | None
        probe: dict[str, Any]

    class Retargeted(Aggregate.Event):
        """The card's handle, provider, wire model or base URL changed (all four recorded)."""

        model_id: str
        provider: str
        model: str
        base_url: str | None

    class KeyRotated(Aggregate.Event):
        """A new API key, sealed; the old sealed key stays in history, unreadable once shredded."""

        sealed_api_key: str
        api_key_preview: str

    class HeadersReplaced(Aggregate.Event):
        """The whole set of custom headers was replaced (values sealed, names in clear)."""

        header_names: list[str]
        sealed_headers: str | None

    class Probed(Aggregate.Event):
        """The outcome of the capability probe an update ran (or was told to skip)."""

        probe: dict[str, Any]

    class Deleted(Stamped):
        """The card is gone; its data key is shredded right after this is recorded."""

        stamp = "deleted_at"

    @event(Created)
    def __init__(
        self,
        model_card_id: str,
        tenant_id: str,
        model_id: str,
        provider: str,
        model: str,
        base_url: str | None,
        sealed_api_key: str,
        api_key_preview: str,
        header_names: list[str],
        sealed_headers: str | None,
        probe: dict[str, Any],
    ) -> None:
        # check_target runs before creation (in the application): an __init__ also runs on
        # every load, where a refusal would make a stored card unreadable.
        self.model_card_id = model_card_id
        self.tenant_id = tenant_id
        self.model_id = model_id
        self.provider = provider
        self.model = model
        self.base_url = base_url
        self.sealed_api_key = sealed_api_key
        self.api_key_preview = api_key_preview
        self.header_names = header_names
        self.sealed_headers = sealed_headers
        self.probe = probe
        self.deleted_at: datetime | None = None

    def retarget(self, model_id: str, provider: str, model: str, base_url: str | None) -> bool:
        check_target(provider, base_url)
        if (model_id, provider, model, base_url) == (self.model_id, self.provider, self.model, self.base_url):
            return False
        self._record_retarget(model_id=model_id, provider=provider, model=model, base_url=base_url)
        return True

    @event(Retargeted)
    def _record_retarget(self, model_id: str, provider: str, model: str, base_url: str | None) -> None:
        self.model_id = model_id
        self.provider = provider
        self.model = model
        self.base_url = base_url

    @event(KeyRotated)
    def rotate_key(self, sealed_api_key: str, api_key_preview: str) -> None:
        self.sealed_api_key = sealed_api_key
        self.api_key_preview = api_key_preview

    @event(HeadersReplaced)
    def replace_headers(self, header_names: list[str], sealed_headers: str | None) -> None:
        self.header_names = header_names
        self.sealed_headers = sealed_headers

    @event(Probed)
    def record_probe(self, probe: dict[str, Any]) -> None:
        self.probe = probe

    def delete(self) -> bool:
        if self.deleted_at is not None:
            return False
        self._record_deletion()
        return True

    @event(Deleted)
    def _record_deletion(self) -> None:
        pass  # Deleted stamps deleted_at


class ModelHandle(Aggregate):
    """Which live card of a tenant holds a ``model_id``; ``holder`` is None once released."""

    @staticmethod
    def create_id(tenant_id: str, model_id: str, **_: Any) -> UUID:
        return handle_stream_id(tenant_id, model_id)

    class Claimed(Aggregate.Created):
        tenant_id: str
        model_id: str
        model_card_id: str

    class Reclaimed(Aggregate.Event):
        """A released handle was claimed by another (or the same) card."""

        model_card_id: str

    class Released(Aggregate.Event):
        """Its card was deleted or took another handle."""

    @event(Claimed)
    def __init__(self, tenant_id: str, model_id: str, model_card_id: str) -> None:
        self.tenant_id = tenant_id
        self.model_id = model_id
        self.holder: str | None = model_card_id

    def check_claimable(self, model_card_id: str | None = None) -> None:
        if self.holder is not None and self.holder != model_card_id:
            raise Taken(f"model_id {self.model_id!r} is already used by model card {self.holder}")

    def claim(self, model_card_id: str) -> bool:
        self.check_claimable(model_card_id)
        if self.holder == model_card_id:
            return False
        self._record_reclaim(model_card_id=model_card_id)
        return True

    @event(Reclaimed)
    def _record_reclaim(self, model_card_id: str) -> None:
        self.holder = model_card_id

    def release(self, model_card_id: str) -> bool:
        if self.holder != model_card_id:
            return False
        self._record_release()
        return True

    @event(Released)
    def _record_release(self) -> None:
        self.holder = None
