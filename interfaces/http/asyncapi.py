"""The AsyncAPI 3.0 document of Agentry's history: the Kafka topics the relay publishes to and
the SSE stream of a session's public log, every message's payload from the event catalogue."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from application.outbox import AGGREGATE_TOPICS, SECRET_FIELDS, TOPIC_PREFIX
from interfaces.event_catalogue import EventType, catalogue
from interfaces.http.openapi import openapi_document

KAFKA_HEADERS = {
    "type": "object",
    "properties": {
        "event_type": {"type": "string", "description": "`user.message`, … or `Agent.Updated`, …"},
        "event_id": {"type": "string", "format": "uuid", "description": "stable across re-delivery: deduplicate by it"},
        "tenant": {"type": "string"},
        "seq": {"type": "string", "description": "the session event's seq; else the aggregate version"},
        "state_omitted": {"const": "too_large", "description": "present when `state` is null"},
    },
    "required": ["event_type", "event_id", "tenant", "seq"],
}


def _published_state(event: EventType) -> dict[str, Any]:
    """The relay strips secret-named fields from whatever it publishes."""
    properties = {k: v for k, v in event.schema["properties"].items() if k not in SECRET_FIELDS}
    return {**event.schema, "properties": properties, "required": sorted(properties)}


def _kafka_body(event: EventType) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "event_id": {"type": "string", "format": "uuid"},
            "event_type": {"const": event.name},
            "event_topic": {"const": event.topic},
            "aggregate_id": {"type": "string", "format": "uuid"},
            "aggregate_version": {"type": "integer", "minimum": 1},
            "notification_id": {"type": "integer", "minimum": 1},
            "tenant": {"type": "string"},
            "seq": {"type": "integer", "minimum": 1},
            "state": {
                "anyOf": [{"$ref": f"#/components/schemas/{_schema_name(event)}"}, {"type": "null"}],
                "description": "null (with `state_omitted`) when the message would exceed the broker's limit",
            },
            "state_omitted": {"const": "too_large"},
        },
        "required": [
            "event_id", "event_type", "event_topic", "aggregate_id", "aggregate_version",
            "notification_id", "tenant", "seq", "state",
        ],
    }


def _schema_name(event: EventType) -> str:
    return f"{event.name}.v{event.version}"


def _sse_payload(event: EventType) -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": "#/components/schemas/SessionEvent"},
            {"properties": {"type": {"const": event.name}}},
        ],
        "description": "the event's stored `payload` plus `id`, `type`, `processed_at`, `seq`",
    }


@lru_cache(maxsize=1)
def asyncapi_document() -> dict[str, Any]:
    events = catalogue()
    openapi_schemas = openapi_document()["components"]["schemas"]
    schemas: dict[str, Any] = {
        "SessionEvent": {
            **openapi_schemas["SessionEvent"],
            "additionalProperties": True,
        }
    }
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for suffix in AGGREGATE_TOPICS.values():
        address = f"{TOPIC_PREFIX}.{suffix}"
        channels[suffix] = {
            "address": address,
            "title": address,
            "description": (
                f"Every stored {suffix[:-1]} event, keyed by the aggregate's stream id (ordered per key; "
                "delivered at least once — deduplicate by `event_id`). The relay publishes in "
                "transactions (transactional id `<prefix>.relay`): read with "
                "`isolation.level=read_committed` to skip a batch a failed or fenced relay left "
                "uncommitted. The prefix is `AGENTRY_KAFKA_TOPIC_PREFIX`."
            ),
            "messages": {},
        }
    channels["sessionEvents"] = {
        "address": "/v1/sessions/{session_id}/events/stream",
        "title": "Session event stream (SSE)",
        "description": (
            "Server-Sent Events over HTTP GET (authenticated like the API). Each frame: "
            "`event:` the event type, `id:` its seq, `data:` the session event as JSON. Resume with "
            "`Last-Event-ID`, `?after_seq=N` or `?replay=1`; a deleted session's stream ends after "
            "`session.deleted`."
        ),
        "parameters": {"session_id": {"description": "the session's id (`sesn_…`)"}},
        "messages": {},
    }
    for event in events:
        schema_name = _schema_name(event)
        schemas[schema_name] = event.schema
        if event.kafka_topic is None:
            continue  # API-key events never leave the event store
        schemas[schema_name] = _published_state(event)
        suffix = event.kafka_topic.split(".", 1)[1]
        key = f"kafka.{event.name}"
        messages[key] = {
            "name": event.name,
            "title": f"{event.name} (schema v{event.version})",
            "summary": event.description,
            "contentType": "application/json",
            "headers": KAFKA_HEADERS,
            "payload": _kafka_body(event),
            "bindings": {"kafka": {"key": {"type": "string", "format": "uuid"}, "bindingVersion": "0.5.0"}},
            "x-event-topic": event.topic,
            "x-schema-version": event.version,
        }
        channels[suffix]["messages"][event.name] = {"$ref": f"#/components/messages/{key}"}
        if hasattr(event.cls, "public_type"):
            sse_key = f"sse.{event.name}"
            messages[sse_key] = {
                "name": event.name,
                "title": f"{event.name} (SSE)",
                "contentType": "application/json",
                "payload": _sse_payload(event),
                "x-schema-version": event.version,
            }
            channels["sessionEvents"]["messages"][event.name] = {"$ref": f"#/components/messages/{sse_key}"}
    for name, channel in channels.items():
        operations[f"receive_{name}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{m}"} for m in channel["messages"]],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Agentry event catalogue",
            "version": "1",
            "description": (
                "Every event Agentry stores, with the schema version of its class. The relay publishes "
                "agent, environment and session events to Kafka; **API-key events are never published** "
                "(they stay in the event store), and secret-named fields are stripped from any event. "
                "A changed event gets a higher schema version and an upcaster, so stored events of "
                "every version load as the current one; consumers see `state.class_version` from "
                "version 2 on."
            ),
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
