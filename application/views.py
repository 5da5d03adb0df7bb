"""Wire shapes of resources, shared by the HTTP retrieve path and the list projections so a
resource reads the same whichever path served it."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from application.multiagent import Owner, present


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    # Fixed width (always microseconds) so the strings also sort in time order. %-formatting
    # of the fields, not strftime (which does not pad years before 1000 everywhere): this
    # runs several times per event on every read path and in every projection.
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 (the fastest of the three spellings)
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond,
    )  # fmt: skip


# The bounds a list filters time by (``created_at[gte]=…``). They compare the fixed-width
# strings ``iso`` writes — as values in a log page, or as read-model columns in SQL.
TIME_BOUNDS: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def agent_view(
    agent_id: str,
    definition: dict[str, Any],
    version: int,
    created_at: datetime,
    updated_at: datetime,
    archived_at: datetime | None,
) -> dict[str, Any]:
    return {
        "type": "agent",
        "id": agent_id,
        **definition,
        "metadata": definition.get("metadata") or {},  # a create with "metadata": null stored None
        "multiagent": present(definition.get("multiagent"), Owner(agent_id, version)),
        "version": version,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
        "archived_at": iso(archived_at),
    }


def pinned_agent_view(agent_id: str, definition: dict[str, Any], version: int) -> dict[str, Any]:
    """The agent as a session pinned it: the definition at one version, no timestamps."""
    view = {"type": "agent", "id": agent_id, **definition, "version": version}
    view["multiagent"] = present(definition.get("multiagent"), Owner(agent_id, version))
    view.pop("metadata", None)
    return view


def environment_view(
    environment_id: str,
    definition: dict[str, Any],
    created_at: datetime,
    updated_at: datetime,
    archived_at: datetime | None,
) -> dict[str, Any]:
    return {
        "type": "environment",
        "id": environment_id,
        **definition,
        "metadata": definition.get("metadata") or {},  # a create with "metadata": null stored None
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
        "archived_at": iso(archived_at),
    }


def session_view(
    session_id: str,
    agent: dict[str, Any],
    environment_id: str,
    details: dict[str, Any],
    status: str,
    created_at: datetime,
    updated_at: datetime,
    archived_at: datetime | None,
    usage: dict[str, Any] | None = None,
    active_seconds: float | None = None,
    outcome_evaluations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "type": "session",
        "id": session_id,
        "agent": agent,
        "environment_id": environment_id,
        "title": details.get("title"),
        "metadata": details.get("metadata") or {},
        "resources": details.get("resources") or [],
        "vault_ids": details.get("vault_ids") or [],
        "budget": details.get("budget"),
        "outcome_evaluations": outcome_evaluations or [],
        "stats": {"active_seconds": active_seconds, "duration_seconds": None},
        "usage": usage or {},
        "status": status,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
        "archived_at": iso(archived_at),
    }


def session_event_view(event: Any) -> dict[str, Any]:
    """A recorded public session event as the API shows it; ``seq`` is its log position."""
    # The payload goes first so nothing a client sent can shadow the server's own fields.
    return {
        **event.payload,
        "id": event.event_id,
        "type": event.public_type,
        "processed_at": iso(event.timestamp),
        "seq": event.seq,
    }


# Custom header values are write-only like the API key: a response names the headers only.
REDACTED = "[redacted]"


def model_card_view(
    model_card_id: str,
    settings: dict[str, Any],
    header_names: list[str],
    api_key_preview: str,
    probe: dict[str, Any],
    created_at: datetime,
    updated_at: datetime,
) -> dict[str, Any]:
    """``settings``: ``model_id``, ``provider``, ``model``, ``base_url``. No secret reaches
    this shape: the key is shown by its last 4 characters, header values not at all."""
    return {
        "type": "model_card",
        "id": model_card_id,
        "model_id": settings["model_id"],
        "provider": settings["provider"],
        "model": settings["model"],
        "base_url": settings["base_url"],
        "custom_headers": redacted_headers(header_names),
        "api_key_preview": api_key_preview,
        "probe": probe,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
    }


def model_card_settings(source: Any) -> dict[str, Any]:
    """What a card names in clear — of a ``ModelCard`` or of an event that carries all four."""
    return {"model_id": source.model_id, "provider": source.provider, "model": source.model, "base_url": source.base_url}


def redacted_headers(header_names: list[str]) -> dict[str, str]:
    return {name: REDACTED for name in header_names}


def environment_key_view(
    key_id: str,
    environment_id: str,
    name: str | None,
    hint: str,
    created_at: datetime,
    revoked_at: datetime | None,
) -> dict[str, Any]:
    """An environment key as lists and creates show it; the key itself only ever appears in
    the create response (added there, never stored)."""
    return {
        "type": "environment_key",
        "id": key_id,
        "environment_id": environment_id,
        "name": name,
        "key_preview": hint,
        "created_at": iso(created_at),
        "revoked_at": iso(revoked_at),
    }


def work_view(
    work_id: str,
    environment_id: str,
    session_id: str,
    state: str,
    metadata: dict[str, str],
    created_at: datetime,
    acknowledged_at: datetime | None = None,
    started_at: datetime | None = None,
    stop_requested_at: datetime | None = None,
    stopped_at: datetime | None = None,
) -> dict[str, Any]:
    """A work item as ``BetaSelfHostedWork``; ``latest_heartbeat_at`` comes from its lease
    and ``secret`` only with a poll, both added by the caller."""
    return {
        "type": "work",
        "id": work_id,
        "environment_id": environment_id,
        "state": state,
        "data": {"type": "session", "id": session_id},
        "metadata": metadata,
        "created_at": iso(created_at),
        "acknowledged_at": iso(acknowledged_at),
        "started_at": iso(started_at),
        "latest_heartbeat_at": None,
        "stop_requested_at": iso(stop_requested_at),
        "stopped_at": iso(stopped_at),
        "secret": None,
    }


# What ``GET /v1/models`` says of an agent: Agentry serves it, whatever model it calls.
AGENT_OWNER = "agentry"


@dataclass(frozen=True)
class CatalogEntry:
    """One model of a tenant's catalogue: an agent (``id`` = its id, ``owned_by`` = "agentry")
    or a model card (``id`` = its ``model_id``, ``owned_by`` = its provider)."""

    id: str
    display_name: str
    owned_by: str
    created_at: str  # as ``iso`` writes it


def model_view(entry: CatalogEntry) -> dict[str, Any]:
    """One body both SDKs parse: the ``openai`` SDK's ``Model`` (``object``, unix ``created``,
    ``owned_by``) and the ``anthropic`` SDK's ``ModelInfo`` (``type``, RFC 3339 ``created_at``,
    ``display_name``, ``lifecycle``); each ignores the other's fields."""
    return {
        "type": "model",
        "object": "model",
        "id": entry.id,
        "display_name": entry.display_name,
        "created_at": entry.created_at,
        "created": int(datetime.fromisoformat(entry.created_at).timestamp()),
        "owned_by": entry.owned_by,
        "lifecycle": "active",
    }


def vault_view(
    vault_id: str,
    display_name: str,
    metadata: dict[str, str],
    created_at: datetime,
    updated_at: datetime,
    archived_at: datetime | None,
) -> dict[str, Any]:
    return {
        "type": "vault",
        "id": vault_id,
        "display_name": display_name,
        "metadata": metadata,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
        "archived_at": iso(archived_at),
    }


def vault_credential_view(
    credential_id: str,
    vault_id: str,
    display_name: str | None,
    metadata: dict[str, str],
    auth: dict[str, Any],
    created_at: datetime,
    updated_at: datetime,
    archived_at: datetime | None,
) -> dict[str, Any]:
    """``auth`` is the public part only: secrets are sealed in the events and never shown."""
    return {
        "type": "vault_credential",
        "id": credential_id,
        "vault_id": vault_id,
        "display_name": display_name,
        "metadata": metadata,
        "auth": auth,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
        "archived_at": iso(archived_at),
    }


# Agentry keeps no data-residency or encryption settings: a workspace answers the SDK's
# defaults for them (US storage, unrestricted inference), which is what it does.
WORKSPACE_DATA_RESIDENCY = {"workspace_geo": "us", "allowed_inference_geos": "unrestricted", "default_inference_geo": "global"}
DEFAULT_WORKSPACE_COLOR = "#6C5BB9"


def workspace_view(
    workspace_id: str,
    name: str,
    display_color: str,
    tags: dict[str, str],
    created_at: datetime,
    archived_at: datetime | None,
) -> dict[str, Any]:
    return {
        "type": "workspace",
        "id": workspace_id,
        "name": name,
        "display_color": display_color,
        "tags": tags,
        "created_at": iso(created_at),
        "archived_at": iso(archived_at),
        "compartment_id": workspace_id,
        "data_residency": dict(WORKSPACE_DATA_RESIDENCY),
        "external_key_id": None,
        "user_profile_id": None,
    }


def api_key_view(
    key_id: str,
    name: str,
    workspace_id: str,
    role: str,
    status: str,
    hint: str,
    created_at: datetime,
    created_by: str | None,
) -> dict[str, Any]:
    """Never the key nor its hash: ``partial_key_hint`` shows its last four characters."""
    return {
        "type": "api_key",
        "id": key_id,
        "name": name,
        "created_at": iso(created_at),
        "created_by": None if created_by is None else {"id": created_by, "type": "user"},
        "expires_at": None,
        "partial_key_hint": f"agentry-...{hint}",
        "principal": None,
        "scope": {"type": "workspace", "workspace_id": workspace_id},
        "status": status,
        "role": role,
    }
