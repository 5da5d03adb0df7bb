"""Use cases of the model cards context: a tenant's named ways to reach model providers.

Secrets are sealed here, before anything is recorded: the API key and the custom header
values go through the ``SecretCipher`` under the card's own data key (owner = the card id),
so events, read models and Kafka only ever hold ciphertext, a 4-character key preview and
header names. Deleting a card shreds its data key, which makes every stored copy of its
ciphertext unreadable. The runtime opens a card's secrets at the moment of use
(``target_for``).

A card is probed before it is stored (and again when an update changes what the provider
sees): a key or URL the provider refuses is a 400 carrying the provider's reason, and
nothing is recorded. ``probe: false`` skips the call for offline set-up."""

from __future__ import annotations

from typing import Any

import orjson

from application.commands import Alongside, Commands, Kind, Written, load_as
from application.errors import Invalid
from application.ids import new_id
from application.ports import EventStore, ProviderProbe, ProviderTarget, SecretCipher
from application.retry import retry_on_race
from application.tenancy import Principal
from application.views import model_card_settings, model_card_view
from domain.ids import stream_id
from domain.model_cards import ModelCard, ModelHandle, check_target, handle_stream_id

PROBE_PASSED: dict[str, Any] = {"ok": True}
PROBE_SKIPPED: dict[str, Any] = {"ok": None, "reason": "skipped"}
# A change to any of these alters what the provider sees, so it is probed again.
PROBED_FIELDS = frozenset({"api_key", "base_url", "custom_headers", "model", "provider"})
TARGET_FIELDS = ("model_id", "provider", "model", "base_url")
# Secrets shorter than this are not scrubbed from a provider's message: replacing a
# one-character header value everywhere would garble the message and hide nothing.
SCRUB_MIN_LENGTH = 8


class ProviderRefused(Invalid):
    """The capability probe's request was refused (401, 403, 404, no connection, …)."""


def key_preview(api_key: str) -> str:
    return api_key[-4:]


def render(card: ModelCard) -> dict[str, Any]:
    return model_card_view(
        card.model_card_id,
        model_card_settings(card),
        card.header_names,
        card.api_key_preview,
        card.probe,
        card.created_on,
        card.modified_on,
    )


def render_deleted(card: ModelCard) -> dict[str, Any]:
    return {"id": card.model_card_id, "type": "model_card_deleted"}


MODEL_CARDS: Kind[ModelCard] = Kind(
    ModelCard, "mcard", "model card", gone=lambda card: card.deleted_at is not None
)


def _scrubbed(message: str, target: ProviderTarget) -> str:
    """A provider may quote what it was sent; never let a secret ride back on its message."""
    for secret in (target.api_key, *target.custom_headers.values()):
        if len(secret) >= SCRUB_MIN_LENGTH:
            message = message.replace(secret, "[redacted]")
    return message


class ModelCardService:
    def __init__(self, store: EventStore, cipher: SecretCipher, probe: ProviderProbe) -> None:
        self._store = store
        self._cipher = cipher
        self._probe = probe
        self._commands = Commands(store, MODEL_CARDS, render)

    # -- commands ---------------------------------------------------------------------

    def create(self, who: Principal, fields: dict[str, Any]) -> Written:
        model_id = fields["model_id"]
        settings = {
            "model_id": model_id,
            "provider": fields["provider"],
            "model": fields.get("model") or model_id,
            "base_url": fields.get("base_url"),
        }
        api_key: str = fields["api_key"]
        headers: dict[str, str] = fields.get("custom_headers") or {}
        check_target(settings["provider"], settings["base_url"])
        # A taken handle fails now, not after a probe of up to 6 s (the save checks again).
        handle = self._handle(who.tenant_id, model_id)
        if handle is not None:
            handle.check_claimable()
        probe = self._check(self._target(settings, api_key, headers), fields.get("probe", True))
        card_id = new_id("mcard")
        try:
            secrets = {
                "sealed_api_key": self._cipher.seal(card_id, api_key),
                "api_key_preview": key_preview(api_key),
                **self._sealed_headers(card_id, headers),
            }

            def attempt() -> Written:
                # Built afresh on every attempt: a failed save has already taken the
                # pending events of the aggregates it was given.
                card = ModelCard(model_card_id=card_id, tenant_id=who.tenant_id, **settings, **secrets, probe=probe)
                return self._commands.create(card, self._claim(who.tenant_id, model_id, card_id))

            return retry_on_race(attempt, key=str(handle_stream_id(who.tenant_id, model_id)))
        except BaseException:
            # Nothing was stored, so the data key made for this card must not outlive it.
            self._cipher.shred(card_id)
            raise

    def update(self, who: Principal, model_card_id: str, changes: dict[str, Any]) -> Written:
        """Partial: ``base_url: null`` clears it; ``custom_headers`` replaces the whole set
        (``null`` or ``{}`` clears); ``api_key`` rotates the key; a new ``model_id`` moves
        the card to that handle if no other live card holds it."""
        changes = dict(changes)
        wanted = changes.pop("probe", True)
        probe = None
        if PROBED_FIELDS & changes.keys():
            # Loaded first in any case: nothing is sealed for a card that is not the caller's.
            card = self._commands.load(who, model_card_id)
            settings = model_card_settings(card) | {name: changes[name] for name in TARGET_FIELDS if name in changes}
            check_target(settings["provider"], settings["base_url"])
            probe = dict(PROBE_SKIPPED)
            if wanted:
                api_key = changes["api_key"] if "api_key" in changes else self._open_key(card)
                headers = (changes["custom_headers"] or {}) if "custom_headers" in changes else self._open_headers(card)
                probe = self._check(self._target(settings, api_key, headers), wanted)
        sealed_key = self._cipher.seal(model_card_id, changes["api_key"]) if "api_key" in changes else None
        sealed_headers = (
            self._sealed_headers(model_card_id, changes["custom_headers"] or {}) if "custom_headers" in changes else None
        )

        def command(card: ModelCard) -> Alongside:
            settings = model_card_settings(card) | {name: changes[name] for name in TARGET_FIELDS if name in changes}
            handles = self._move_handle(card, settings["model_id"])
            card.retarget(**settings)
            if sealed_key is not None:
                card.rotate_key(sealed_api_key=sealed_key, api_key_preview=key_preview(changes["api_key"]))
            if sealed_headers is not None:
                card.replace_headers(**sealed_headers)
            if probe is not None:
                card.record_probe(probe=probe)
            return Alongside(handles)

        return self._commands.change(who, model_card_id, command)

    def delete(self, who: Principal, model_card_id: str) -> Written:
        """Records the deletion (releasing the handle), then shreds the card's data key: its
        key is unreadable from then on, in every event that ever held it."""

        def command(card: ModelCard) -> Alongside:
            card.delete()
            handle = self._handle(card.tenant_id, card.model_id)
            released = handle is not None and handle.release(card.model_card_id)
            return Alongside((handle,) if released and handle is not None else ())

        written = self._commands.change(who, model_card_id, command, render=render_deleted)
        self._cipher.shred(model_card_id)
        return written

    # -- reads ------------------------------------------------------------------------

    def retrieve(self, who: Principal, model_card_id: str) -> dict[str, Any]:
        return self._commands.view(who, model_card_id)

    def target_for(self, tenant_id: str, handle: str) -> ProviderTarget | None:
        """Where a model request for ``handle`` goes: the tenant's live card with that
        ``model_id``, its secrets opened now; None when the tenant has no such card.
        Two small stream loads (the handle, then the card), current in every process.
        Raises ``SecretUnavailable`` when the card's key cannot be opened (a root key that
        is not the one it was sealed under)."""
        card = self.live_card(tenant_id, handle)
        if card is None:
            return None
        return self._target(model_card_settings(card), self._open_key(card), self._open_headers(card))

    def live_card(self, tenant_id: str, handle: str) -> ModelCard | None:
        """The tenant's live card holding ``handle`` (its ``model_id``), secrets still sealed."""
        claim = self._handle(tenant_id, handle)
        if claim is None or claim.holder is None:
            return None
        card = load_as(self._store, stream_id(claim.holder), ModelCard)
        if card is None or card.deleted_at is not None:
            return None
        return card

    # -- helpers ----------------------------------------------------------------------

    def _check(self, target: ProviderTarget, wanted: bool) -> dict[str, Any]:
        """The probe outcome to record, or ``ProviderRefused`` with the provider's reason."""
        if not wanted:
            return dict(PROBE_SKIPPED)
        result = self._probe.probe(target)
        reason = _scrubbed(result.message, target)
        if result.ok:
            # A busy or picky provider (429, 5xx, 400) still recognised the key: kept as a note.
            return dict(PROBE_PASSED) | ({"status": result.status, "message": reason} if reason else {})
        reason = reason or (f"HTTP {result.status}" if result.status else "no reason given")
        raise ProviderRefused(f"the provider refused this model card, so nothing was stored: {reason}")

    @staticmethod
    def _target(settings: dict[str, Any], api_key: str, headers: dict[str, str]) -> ProviderTarget:
        return ProviderTarget(
            provider=settings["provider"],
            model=settings["model"],
            api_key=api_key,
            base_url=settings["base_url"],
            custom_headers=dict(headers),
        )

    def _open_key(self, card: ModelCard) -> str:
        return self._cipher.open(card.model_card_id, card.sealed_api_key)

    def _open_headers(self, card: ModelCard) -> dict[str, str]:
        if card.sealed_headers is None:
            return {}
        headers: dict[str, str] = orjson.loads(self._cipher.open(card.model_card_id, card.sealed_headers))
        return headers

    def _sealed_headers(self, model_card_id: str, headers: dict[str, str]) -> dict[str, Any]:
        sealed = self._cipher.seal(model_card_id, orjson.dumps(headers).decode()) if headers else None
        return {"header_names": list(headers), "sealed_headers": sealed}

    def _handle(self, tenant_id: str, model_id: str) -> ModelHandle | None:
        return load_as(self._store, handle_stream_id(tenant_id, model_id), ModelHandle)

    def _claim(self, tenant_id: str, model_id: str, model_card_id: str) -> ModelHandle:
        """The handle, claimed for the card (``Taken`` when another live card holds it)."""
        handle = self._handle(tenant_id, model_id)
        if handle is None:
            return ModelHandle(tenant_id=tenant_id, model_id=model_id, model_card_id=model_card_id)
        handle.claim(model_card_id)
        return handle

    def _move_handle(self, card: ModelCard, model_id: str) -> tuple[ModelHandle, ...]:
        if model_id == card.model_id:
            return ()
        claimed = self._claim(card.tenant_id, model_id, card.model_card_id)
        old = self._handle(card.tenant_id, card.model_id)
        if old is not None and old.release(card.model_card_id):
            return (claimed, old)
        return (claimed,)
