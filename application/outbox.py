"""Turns a recorded event into the message the relay publishes: one topic per aggregate type,
keyed by aggregate id, headers for routing, and a body that never carries a secret."""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha1
from typing import Any
from uuid import UUID

TOPIC_PREFIX = "agentry"

# Module of the aggregate → topic suffix. A new aggregate type needs a line here.
# Environment keys are deliberately absent: their events are credential material and never
# leave the event store (so ``project --from kafka`` does not list environment keys; their
# read model is fed from the store). API keys are published without their hash (``key_hash``
# is in SECRET_FIELDS; the key itself is never recorded anywhere): issue, status, role and
# name changes are the organization's audit trail.
AGGREGATE_TOPICS = {
    "domain.agents": "agents",
    "domain.environments": "environments",
    "domain.sessions": "sessions",
    # Card events carry sealed secrets only (ciphertext, a key preview, header names): safe
    # to publish, and unreadable everywhere once the card's data key is shredded.
    "domain.model_cards": "model_cards",
    # Work items carry no credential: a claim's token is derived, never recorded.
    "domain.work_items": "work_items",
    # Vault events carry credentials' secrets sealed only, as card events do.
    "domain.vaults": "vaults",
    # A workspace's own rate limits: numbers, nothing secret.
    "domain.rate_limits": "rate_limits",
    # Users and invites: logins, role and membership changes. Their secrets (a password's
    # hash, a sealed TOTP secret, an invite token's hash) are in SECRET_FIELDS below.
    "domain.people": "people",
    "domain.workspaces": "workspaces",
    "domain.api_keys": "api_keys",
    # Tasks (and, on a topic of their own, the boards and departments they are filed in).
    "domain.tasks": "tasks",
    "domain.boards": "boards",
    # Webhook endpoints: URLs, names, event types; the signing secret only sealed, and even
    # that never leaves (``ciphertext`` is in SECRET_FIELDS).
    "domain.webhooks": "webhooks",
    # Readers' read marks of notifications (the notifications themselves are a projection).
    "domain.notifications": "notifications",
    # Skills: names, descriptions and each version's manifest (paths, blob keys), never bytes.
    "domain.skills": "skills",
    # Knowledge bases and documents (metadata, blob keys, chunk text in bounded runs).
    "domain.knowledge": "knowledge",
    # Memory stores: each version's content only sealed under the version's own key (shredded
    # on redaction, so the published copy becomes unreadable too).
    "domain.memory": "memory_stores",
    # Files: metadata and the key of the bytes (their SHA-256), never the bytes.
    "domain.files": "files",
}

# Fields that must never leave the event store, whatever event carries them.
SECRET_FIELDS = frozenset(
    {"key_hash", "secret", "secret_value", "plaintext", "ciphertext", "password_hash", "totp_sealed", "token_hash"}
)

_EVENT_ID_NAMESPACE = UUID("0b6c1f0e-6a53-5d2b-9f57-2f9e0f3c1a77")
_NAMESPACE_BYTES = _EVENT_ID_NAMESPACE.bytes


class UnroutableEvent(ValueError):
    """A recorded event whose aggregate type has no topic."""


@dataclass(frozen=True)
class OutboxMessage:
    """``body`` is JSON-ready; the publisher encodes it (and may omit ``state`` when the
    encoded message would be larger than the broker accepts)."""

    notification_id: int
    topic: str
    key: bytes
    body: dict[str, Any]
    headers: list[tuple[str, bytes]]


def event_id(originator_id: UUID, originator_version: int, aggregate_id: str | None = None) -> str:
    """Stable across re-publication, so consumers can deduplicate by it: the UUIDv5 of
    ``"{originator_id}/{originator_version}"``, made here without ``uuid5``'s objects (the
    relay makes one per message). ``aggregate_id`` is ``str(originator_id)`` when known."""
    name = f"{aggregate_id or originator_id}/{originator_version}".encode()
    digest = bytearray(sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# Runtime state kept beside the public log, never published: the model's thinking text and
# signatures are replayed to the provider only.
UNPUBLISHED_EVENTS = frozenset({"domain.sessions:Session.ThinkingKept"})


def is_published(event_topic: str) -> bool:
    return event_topic.split(":", 1)[0] in AGGREGATE_TOPICS and event_topic not in UNPUBLISHED_EVENTS


def topic_for(event_topic: str, prefix: str = TOPIC_PREFIX) -> str:
    module = event_topic.split(":", 1)[0]
    suffix = AGGREGATE_TOPICS.get(module)
    if suffix is None:
        raise UnroutableEvent(f"no Kafka topic for events of {module}")
    return f"{prefix}.{suffix}"


def event_type(event_topic: str, event: Any) -> str:
    """The session's public type (``user.message``) where there is one, else ``Agent.Updated``."""
    return getattr(event, "public_type", None) or event_topic.split(":", 1)[1]


def redact(state: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in state.items() if key not in SECRET_FIELDS}


def build_message(
    notification_id: int,
    originator_id: UUID,
    originator_version: int,
    event_topic: str,
    state: dict[str, Any],
    event: Any,
    tenant_id: str,
    prefix: str = TOPIC_PREFIX,
) -> OutboxMessage:
    aggregate_id = str(originator_id)
    identifier = event_id(originator_id, originator_version, aggregate_id)
    kind = event_type(event_topic, event)
    seq = getattr(event, "seq", originator_version)
    body = {
        "event_id": identifier,
        "event_type": kind,
        "event_topic": event_topic,
        "aggregate_id": aggregate_id,
        "aggregate_version": originator_version,
        "notification_id": notification_id,
        "tenant": tenant_id,
        "seq": seq,
        "state": redact(state),
    }
    headers = [
        ("event_type", kind.encode()),
        ("event_id", identifier.encode()),
        ("tenant", tenant_id.encode()),
        ("seq", str(seq).encode()),
    ]
    return OutboxMessage(
        notification_id=notification_id,
        topic=topic_for(event_topic, prefix),
        key=aggregate_id.encode(),
        body=body,
        headers=headers,
    )
