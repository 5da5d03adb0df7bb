"""What a stored event means in the activity feed (the audit trail): which entity it is
about, the action's public name, who acted, and a short summary that is safe to show.

The mapping is generic, read off the event's class, so an aggregate added later shows up
with no line here:

- **entity type**: the aggregate's class in snake case (``Agent`` → ``agent``, ``ApiKey`` →
  ``api_key``, ``Task`` → ``task``); an event class defined at module level (a session's
  public events) takes its module's name in the singular (``domain.sessions`` → ``session``).
- **action**: ``<entity>.<event name in snake case>`` (``agent.updated``,
  ``api_key.status_changed``, ``task.commented``); an aggregate's first event is always
  ``<entity>.created`` (``Session.Started``, ``ApiKey.Issued`` …); an event with a
  ``public_type`` keeps it (the session log's ``user.message``, ``session.status_idle`` …).
- **entity id**: the first event's ``<entity>_id`` field, or the one ``ID_FIELDS`` names.
- **actor**: an event may record who acted as ``actor = {"type": "user" | "agent" |
  "api_key" | "system", "id": …}``; no event does yet, so the rest is what the events
  themselves imply (``actor_of``), and None where they do not say.

Summaries are built from a short list of harmless fields (names, titles, a new status or
role, a tool's name); never from a message's text, a payload, or any secret-bearing field.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import CanInitAggregate

from application.ids import base62
from application.outbox import SECRET_FIELDS
from application.people import ORGANIZATION_ID
from application.tenancy import Principal

ACTOR_TYPES = ("user", "agent", "api_key", "system")

# Aggregates whose public id is not the first event's ``<entity>_id``.
ID_FIELDS = {
    "api_key": "key_id",
    "environment_key": "key_id",
    "work_item": "work_id",
    "model_handle": "model_id",
    "workspace_rate_limits": "workspace_id",
}

# Events the runtime records on its own (no person or key asked for them).
SYSTEM_EVENTS = frozenset(
    {
        "Session.TurnAnswered", "Session.ThinkingKept", "Session.RequestCosted", "Session.InterruptHandled",
        "Session.WorkReleased", "Session.McpCallsStarted", "Session.ToolsRouted", "Session.OutcomeClosed",
        "ModelCard.Probed",
    }
)  # fmt: skip
# A person's own doing: only that person can log in, change their password or second factor.
SELF_SERVICE_EVENTS = frozenset(
    {"User.LoggedIn", "User.PasswordChanged", "User.ProfileUpdated", "User.TotpStarted", "User.TotpEnabled", "User.TotpDisabled"}
)

LABEL_FIELDS = ("title", "name", "display_name", "model_id")
CHANGE_FIELDS = ("status", "role", "workspace_role")
MAX_LABEL = 80



def snake(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


@dataclass(frozen=True)
class Naming:
    """What every event of one class is called in the feed."""

    entity_type: str
    action: str
    event_name: str  # ``Agent.Updated``, ``UserMessageSent``: keys SYSTEM_EVENTS and the like
    creates: bool


_NAMINGS: dict[type, Naming] = {}


def naming_of(cls: type) -> Naming:
    found = _NAMINGS.get(cls)
    if found is None:
        found = _NAMINGS[cls] = _naming(cls)
    return found


def _naming(cls: type) -> Naming:
    qualname = cls.__qualname__
    if "." in qualname:
        aggregate, event_name = qualname.split(".")[-2:]
        entity_type = snake(aggregate)
    else:
        event_name = qualname
        entity_type = _singular(cls.__module__.rsplit(".", 1)[-1])
    creates = issubclass(cls, CanInitAggregate)
    public = getattr(cls, "public_type", None)
    if isinstance(public, str):
        action = public
    elif creates:
        action = f"{entity_type}.created"
    else:
        action = f"{entity_type}.{snake(event_name)}"
    return Naming(entity_type, action, qualname, creates)


@dataclass(frozen=True)
class Subject:
    """What the feed remembers of a stream from its first event: whose it is (the
    workspace, or the organization for people), its public id and the agent it concerns."""

    tenant_id: str | None
    entity_type: str
    entity_id: str | None
    agent_id: str | None


def subject_of(event: Any) -> Subject:
    """From an aggregate's first event (or, for a stream whose first event was never seen,
    whatever this one says)."""
    naming = naming_of(type(event))
    tenant = _text(getattr(event, "tenant_id", None)) or _text(getattr(event, "workspace_id", None))
    field = ID_FIELDS.get(naming.entity_type, f"{naming.entity_type}_id")
    entity_id = _text(getattr(event, field, None)) if naming.creates else None
    return Subject(tenant, naming.entity_type, entity_id, agent_named(event))


def agent_named(event: Any) -> str | None:
    """The agent an event names: ``agent_id``, ``assigned_agent_id`` or an ``agent`` dict
    (a session's pinned agent)."""
    for field in ("agent_id", "assigned_agent_id"):
        value = _text(getattr(event, field, None))
        if value:
            return value
    agent = getattr(event, "agent", None)
    return _text(agent.get("id")) if isinstance(agent, dict) else None


def actor_of(event: Any, subject: Subject) -> dict[str, Any] | None:
    """Who did it, as far as the event says; None when it does not."""
    # ``by``: a task's verdict; ``author``: a comment's.
    for attribute in ("actor", "by", "author"):
        recorded = getattr(event, attribute, None)
        if isinstance(recorded, dict) and recorded.get("type") in ACTOR_TYPES:
            return {"type": recorded["type"], "id": _text(recorded.get("id"))}
    naming = naming_of(type(event))
    public = getattr(type(event), "public_type", None)
    if isinstance(public, str):
        if public.startswith("agent."):
            return {"type": "agent", "id": subject.agent_id}
        if public.startswith(("span.", "session.")) and public != "session.deleted":
            return {"type": "system", "id": None}
        return None  # user.*, system.message, session.deleted: a key or a person, not recorded
    if naming.event_name in SYSTEM_EVENTS:
        return {"type": "system", "id": None}
    if naming.event_name in SELF_SERVICE_EVENTS and subject.entity_id:
        return {"type": "user", "id": subject.entity_id}
    if naming.event_name == "Invite.Accepted":
        return {"type": "user", "id": _text(getattr(event, "user_id", None))}
    created_by = _text(getattr(event, "created_by", None))
    if created_by:
        return {"type": "user", "id": created_by}
    return None


def user_of(event: Any, subject: Subject, actor: dict[str, Any] | None) -> str | None:
    """The user who acted, else the user the entry is about."""
    if actor is not None and actor["type"] == "user" and actor["id"]:
        return str(actor["id"])
    if subject.entity_type == "user":
        return subject.entity_id
    return _text(getattr(event, "user_id", None))


def summary_of(event: Any, naming: Naming) -> str:
    """A short line: the action in words and, where there is one, a harmless detail."""
    public = getattr(type(event), "public_type", None)
    if isinstance(public, str):
        return _public_summary(public, getattr(event, "payload", None) or {})
    words = naming.action.replace("_", " ").replace(".", " ", 1)
    label = _label(event)
    if label:
        words += f' "{label}"'
    if not naming.creates:
        for field in CHANGE_FIELDS:
            value = _text(getattr(event, field, None))
            if value and field not in SECRET_FIELDS:
                words += f" → {_clip(value)}"
                break
    return words


def _public_summary(public: str, payload: dict[str, Any]) -> str:
    words = public.replace("_", " ").replace(".", " ", 1)
    if public in ("agent.tool_use", "agent.mcp_tool_use", "agent.custom_tool_use"):
        name = _text(payload.get("name") or payload.get("tool_name"))
        return f"{words}: {_clip(name)}" if name else words
    if public in ("agent.tool_result", "agent.mcp_tool_result") and payload.get("is_error"):
        return f"{words} (error)"
    if public == "session.status_idle":
        reason = payload.get("stop_reason")
        kind = _text(reason.get("type")) if isinstance(reason, dict) else None
        return f"{words}: {_clip(kind)}" if kind else words
    if public == "session.error":
        error = payload.get("error")
        kind = _text(error.get("type")) if isinstance(error, dict) else None
        return f"{words}: {_clip(kind)}" if kind else words
    return words


def _label(event: Any) -> str | None:
    for holder in (event, getattr(event, "definition", None), getattr(event, "details", None)):
        for field in LABEL_FIELDS:
            value = holder.get(field) if isinstance(holder, dict) else getattr(holder, field, None)
            text = _text(value)
            if text:
                return _clip(text)
    return None


def _clip(text: str) -> str:
    single = " ".join(text.split())
    return single if len(single) <= MAX_LABEL else single[: MAX_LABEL - 1] + "…"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def activity_id(stream: str, version: int) -> str:
    """The entry's id: derived from the event's place in the log, so a rebuild gives the
    same ids."""
    return "actv_" + base62(int.from_bytes(hashlib.sha256(f"{stream}/{version}".encode()).digest()[:18]), 24)


# -- who may read what -----------------------------------------------------------------------


def is_organization(tenant_id: str | None) -> bool:
    """People (users, invites) belong to the organization, not to a workspace."""
    return tenant_id == ORGANIZATION_ID


def readable_tenants(who: Principal) -> tuple[str, ...]:
    """A caller reads its workspace's activity; an organization admin also the
    organization's own (people: users and invites), which belongs to no workspace."""
    if who.organization_admin:
        return (who.tenant_id, ORGANIZATION_ID)
    return (who.tenant_id,)
