"""Which stored events become which webhook events, and what a webhook event looks like.

A webhook event is the SDK's ``BetaWebhookEvent``: ``{"id", "type": "event", "created_at",
"data"}``, with a thin ``data`` — the kind (``data.type``), the id of the object it is about,
its workspace and organization (and, for an object inside another, the container's id). A
receiver fetches the object itself for its current state.

The extension point is ``KINDS``: a stored event's topic → the webhook kinds it produces.
Adding Agentry's own kinds (tasks, approvals) is one line per event, in the same style, plus
the aggregate's id attribute in ``RESOURCE_IDS`` once. An event may produce several kinds
(an idle session that waits for a confirmation is both ``session.status_idled`` and
``session.requires_action``); ``when`` picks by the event's payload.

Ids: a webhook event's ``id`` derives from the stored event and the kind, so it is the same
on every delivery and retry (receivers deduplicate by it)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from application.ids import base62
from application.views import iso

EVENT_PREFIX = "wevt"


def _always(event: Any) -> bool:
    return True


def stopped_for(reason: str) -> Callable[[Any], bool]:
    """An idle session whose stop reason is ``reason`` (``requires_action``, ``budget_reached``)."""

    def matches(event: Any) -> bool:
        stop = (getattr(event, "payload", None) or {}).get("stop_reason") or {}
        return isinstance(stop, dict) and stop.get("type") == reason

    return matches


@dataclass(frozen=True)
class Emit:
    """One webhook kind a stored event produces.

    ``item``: the event attribute naming an object that lives inside the aggregate (a vault's
    credential): it becomes ``data.id``, and the aggregate's own id goes in as
    ``data.<its id attribute>`` (``vault_id``)."""

    kind: str
    when: Callable[[Any], bool] = _always
    item: str | None = None


# The aggregate module → the attribute of its first event that holds the public id (every
# aggregate's first event also carries ``tenant_id``, its workspace).
RESOURCE_IDS: dict[str, str] = {
    "domain.agents": "agent_id",
    "domain.environments": "environment_id",
    "domain.sessions": "session_id",
    "domain.vaults": "vault_id",
    "domain.tasks": "task_id",
    "domain.memory": "memory_store_id",
}

# Stored event topic → the webhook kinds it produces (the SDK's ``BetaWebhook*EventData``
# types where Agentry makes the event, then Agentry's own kinds in the same style).
KINDS: dict[str, tuple[Emit, ...]] = {
    "domain.agents:Agent.Created": (Emit("agent.created"),),
    "domain.agents:Agent.Updated": (Emit("agent.updated"),),
    "domain.agents:Agent.Archived": (Emit("agent.archived"),),
    "domain.environments:Environment.Created": (Emit("environment.created"),),
    "domain.environments:Environment.Updated": (Emit("environment.updated"),),
    # Deleting an environment archives it (its history stays): one event, archived.
    "domain.environments:Environment.Archived": (Emit("environment.archived"),),
    "domain.sessions:Session.Started": (Emit("session.created"),),
    "domain.sessions:Session.Updated": (Emit("session.updated"),),
    "domain.sessions:Session.AgentReconfigured": (Emit("session.updated"),),
    "domain.sessions:Session.Archived": (Emit("session.archived"),),
    "domain.sessions:SessionWasDeleted": (Emit("session.deleted"),),
    "domain.sessions:SessionBecameRunning": (Emit("session.status_run_started"),),
    "domain.sessions:SessionBecameIdle": (
        Emit("session.status_idled"),
        Emit("session.requires_action", when=stopped_for("requires_action")),
        Emit("session.budget_reached", when=stopped_for("budget_reached")),
    ),
    "domain.sessions:SessionWasRescheduled": (Emit("session.status_rescheduled"),),
    "domain.sessions:SessionWasTerminated": (Emit("session.status_terminated"),),
    "domain.sessions:OutcomeEvaluationEnded": (Emit("session.outcome_evaluation_ended"),),
    "domain.vaults:Vault.Created": (Emit("vault.created"),),
    "domain.vaults:Vault.Archived": (Emit("vault.archived"),),
    "domain.vaults:Vault.Deleted": (Emit("vault.deleted"),),
    "domain.vaults:Vault.CredentialAdded": (Emit("vault_credential.created", item="credential_id"),),
    "domain.vaults:Vault.CredentialArchived": (Emit("vault_credential.archived", item="credential_id"),),
    "domain.vaults:Vault.CredentialDeleted": (Emit("vault_credential.deleted", item="credential_id"),),
    "domain.memory:MemoryStore.Created": (Emit("memory_store.created"),),
    "domain.memory:MemoryStore.Archived": (Emit("memory_store.archived"),),
    "domain.memory:MemoryStore.Deleted": (Emit("memory_store.deleted"),),
    # -- Agentry's own kinds (domain/tasks.py): one line per event -------------------------
    "domain.tasks:Task.Created": (Emit("task.created"),),
    "domain.tasks:Task.Updated": (Emit("task.updated"),),
    "domain.tasks:Task.StatusChanged": (Emit("task.status_changed"),),
    "domain.tasks:Task.Approved": (Emit("task.approved"),),
    "domain.tasks:Task.Rejected": (Emit("task.rejected"),),
}

# Kinds the SDK defines that Agentry never produces (no deployments, user
# profiles, external keys or storage, multiagent threads yet). An endpoint may still name
# them (the SDK's own examples do); it simply receives none.
SDK_ONLY_KINDS = frozenset(
    {
        "agent.deleted",
        "deployment.archived", "deployment.created", "deployment.deleted", "deployment.paused",
        "deployment.unpaused", "deployment.updated",
        "deployment_run.failed", "deployment_run.started", "deployment_run.succeeded",
        "environment.deleted",
        "external_key.failed", "external_key.recovered",
        "external_storage.failed", "external_storage.recovered",
        "session.idled", "session.pending", "session.running",
        "session.thread_created", "session.thread_idled", "session.thread_terminated",
        "user_profile.enforcement_action_opened", "user_profile.enforcement_action_resolved",
        "user_profile.program_status_updated",
        "vault_credential.refresh_failed",
    }
)  # fmt: skip

PRODUCED_KINDS = frozenset(emit.kind for emits in KINDS.values() for emit in emits)
KNOWN_KINDS = PRODUCED_KINDS | SDK_ONLY_KINDS


def unknown_kinds(kinds: list[str]) -> list[str]:
    return [kind for kind in kinds if kind not in KNOWN_KINDS]


def watched(topic: str) -> bool:
    return topic in KINDS


@dataclass(frozen=True)
class Origin:
    """The object a stored event is about: its public id and workspace."""

    public_id: str
    workspace_id: str


@dataclass(frozen=True)
class WebhookEvent:
    """One webhook event, ready to deliver: ``body`` is the JSON document receivers get."""

    id: str
    kind: str
    body: dict[str, Any]


def event_id(originator_id: UUID, originator_version: int, kind: str) -> str:
    digest = int.from_bytes(hashlib.sha256(f"{originator_id}/{originator_version}/{kind}".encode()).digest()[:18])
    return f"{EVENT_PREFIX}_{base62(digest, 24)}"


def origin_of(topic: str, first_event: Any) -> Origin | None:
    """The public id and workspace of the aggregate whose first event is ``first_event``;
    None when that event does not carry them (a stream of an unexpected shape)."""
    attribute = RESOURCE_IDS.get(topic.split(":", 1)[0])
    public_id = getattr(first_event, attribute, None) if attribute else None
    workspace_id = getattr(first_event, "tenant_id", None)
    if not isinstance(public_id, str) or not isinstance(workspace_id, str):
        return None
    return Origin(public_id, workspace_id)


def webhook_events(topic: str, event: Any, origin: Origin, organization_id: str) -> list[WebhookEvent]:
    """The webhook events one stored event produces, in the order ``KINDS`` lists them."""
    made: list[WebhookEvent] = []
    for emit in KINDS.get(topic, ()):
        if not emit.when(event):
            continue
        data: dict[str, Any] = {
            "type": emit.kind,
            "id": origin.public_id,
            "organization_id": organization_id,
            "workspace_id": origin.workspace_id,
        }
        if emit.item is not None:
            item = getattr(event, emit.item, None)
            if not isinstance(item, str):
                continue
            data["id"] = item
            data[RESOURCE_IDS[topic.split(":", 1)[0]]] = origin.public_id
        identifier = event_id(event.originator_id, event.originator_version, emit.kind)
        body = {"id": identifier, "type": "event", "created_at": iso(event.timestamp), "data": data}
        made.append(WebhookEvent(identifier, emit.kind, body))
    return made
