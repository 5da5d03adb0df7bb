"""The catalogue of every event Agentry stores: type, topic, schema version, JSON Schema.

It is read off the domain classes themselves (eventsourcing builds each ``@event`` class's
annotations from the decorated method's signature), so a new event or a new field shows up
here without anyone writing a schema, and a field of a type the catalogue cannot describe
fails loudly. Consumers of the history — the Kafka relay's readers, SSE clients, audit —
read it as ``/asyncapi.json`` and ``/docs/events``.

Schemas describe the stored state exactly as the event store holds it and the relay
publishes it (the ``state`` of a Kafka message): the transcoder's tagged JSON, with
``originator_id`` / ``originator_version`` kept apart (they are the message's
``aggregate_id`` / ``aggregate_version``) and ``class_version`` present from version 2 on.
An event whose shape changes gets a higher ``class_version`` and an ``upcast_vN_vN+1`` on its
class, so every stored version still loads as the current one."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, CanInitAggregate, _created_event_classes
from eventsourcing.utils import get_topic

from application.outbox import AGGREGATE_TOPICS, TOPIC_PREFIX, is_published
from domain.agents import Agent
from domain.api_keys import ApiKey
from domain.boards import Board, Department
from domain.environment_keys import EnvironmentKey
from domain.environments import Environment
from domain.files import File
from domain.knowledge import Document, KnowledgeBase
from domain.memory import MemoryStore
from domain.model_cards import ModelCard, ModelHandle
from domain.notifications import Inbox
from domain.people import Invite, User
from domain.rate_limits import WorkspaceRateLimits
from domain.sessions import PublicEvent, Session
from domain.skills import Skill, SkillName
from domain.tasks import Task
from domain.vaults import Vault
from domain.webhooks import WebhookEndpoint
from domain.work_items import WorkItem
from domain.workspaces import Workspace

AGGREGATES: tuple[type[Aggregate], ...] = (
    Agent, Environment, Session, ApiKey, EnvironmentKey, ModelCard, ModelHandle, WorkItem, Vault, User, Invite,
    WorkspaceRateLimits, Workspace, Task, Board, Department, WebhookEndpoint, Inbox,
    Skill, SkillName, KnowledgeBase, Document, MemoryStore, File,
)

# Kept apart from the state by the mapper (they key the stored event instead).
NOT_IN_STATE = frozenset({"originator_id", "originator_version", "originator_id_type"})

DATETIME = {
    "type": "object",
    "description": "a timestamp as the event store's transcoder tags it",
    "properties": {"_type_": {"const": "datetime_iso"}, "_data_": {"type": "string", "format": "date-time"}},
    "required": ["_type_", "_data_"],
    "additionalProperties": False,
}
UUID_HEX = {
    "type": "object",
    "properties": {"_type_": {"const": "uuid_hex"}, "_data_": {"type": "string", "pattern": "^[0-9a-f]{32}$"}},
    "required": ["_type_", "_data_"],
    "additionalProperties": False,
}


class UndescribableField(TypeError):
    """An event field whose type the catalogue has no JSON Schema for."""


@dataclass(frozen=True)
class EventType:
    cls: type[Any]
    topic: str  # eventsourcing's topic, e.g. ``domain.sessions:Session.Started``
    name: str  # what the relay calls it: ``user.message`` or ``Session.Started``
    version: int
    kafka_topic: str | None  # None: never published (API keys)
    schema: dict[str, Any]
    description: str


def _field_schema(hint: Any, where: str) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is str:
        return {"type": "string"}
    if hint is int:
        return {"type": "integer"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is datetime:
        return DATETIME
    if hint is UUID:
        return UUID_HEX
    if origin is dict:
        return {"type": "object"}
    if origin is list:
        return {"type": "array", "items": _field_schema(args[0], where) if args else {}}
    if origin in (typing.Union, __import__("types").UnionType):
        return {"anyOf": [{"type": "null"} if a is type(None) else _field_schema(a, where) for a in args]}
    raise UndescribableField(f"{where}: no JSON Schema for {hint!r}")


def _state_schema(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    for name, hint in hints.items():
        if name in NOT_IN_STATE or typing.get_origin(hint) is typing.ClassVar:
            continue
        properties[name] = _field_schema(hint, f"{cls.__qualname__}.{name}")
    version = getattr(cls, "class_version", 1)
    if version > 1:
        properties["class_version"] = {"const": version}
    return {
        "title": f"{cls.__qualname__} v{version}",
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


def _aggregate_events(aggregate: type[Aggregate]) -> list[type[Any]]:
    # eventsourcing declares a default ``Created`` on every aggregate; only the class the
    # aggregate really starts with (``Started``, ``Issued``…) is ever stored.
    created = set(_created_event_classes.get(aggregate, []))
    found = []
    for value in vars(aggregate).values():
        if not isinstance(value, type) or not issubclass(value, Aggregate.Event):
            continue
        if value is aggregate.Event:
            continue
        if issubclass(value, CanInitAggregate) and value not in created:
            continue
        found.append(value)
    return found


def _public_events() -> list[type[PublicEvent]]:
    pending, found = list(PublicEvent.__subclasses__()), []
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def _describe(cls: type[Any]) -> EventType:
    topic = get_topic(cls)
    public_type = getattr(cls, "public_type", None)
    module = topic.split(":", 1)[0]
    published = is_published(topic)
    if public_type:
        description = f"`{public_type}` in the session's public event log (a `{cls.__name__}`)"
    else:
        description = (cls.__doc__ or "").strip() or f"{cls.__qualname__}: a lifecycle event, not in any public log"
    return EventType(
        cls=cls,
        topic=topic,
        name=public_type or topic.split(":", 1)[1],
        version=getattr(cls, "class_version", 1),
        kafka_topic=f"{TOPIC_PREFIX}.{AGGREGATE_TOPICS[module]}" if published else None,
        schema=_state_schema(cls),
        description=description,
    )


def catalogue() -> list[EventType]:
    classes: list[type[Any]] = []
    for aggregate in AGGREGATES:
        classes.extend(_aggregate_events(aggregate))
    classes.extend(_public_events())
    return [_describe(cls) for cls in classes]


def by_topic() -> dict[str, EventType]:
    return {event.topic: event for event in catalogue()}
