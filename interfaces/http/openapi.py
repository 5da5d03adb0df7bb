"""Builds the OpenAPI 3.1 document from the operation table and the pydantic models.

Nothing here is written by hand per endpoint: paths, parameters and bodies come from
``api_description.OPERATIONS``; schemas come from the models (request bodies in validation
mode, responses in serialization mode), all in one pass so shared models are one component."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from interfaces.http.api_description import OPERATIONS, Operation, Param
from interfaces.http.errors import ERROR_TYPE_BY_STATUS
from interfaces.http.responses import ErrorBody

REF = "#/components/schemas/{model}"

# The metadata rules are a Python validator in schemas.py (``check_metadata``), which JSON
# Schema cannot see; stated here so generated clients and fuzzers know them too.
METADATA_RULES = {"maxProperties": 16, "propertyNames": {"minLength": 1, "maxLength": 64}}

ERROR_DESCRIPTIONS = {
    400: "The request is malformed or not acceptable in the resource's current state",
    401: "No API key, or one that is not valid",
    403: "The credential is valid but not on this route (an environment key or a work token outside the work queue and its session)",
    404: "No such resource (or not visible to this key's tenant)",
    409: "Lost a race with another write, or `version` is stale (then `x-should-retry: false`)",
    412: "`expected_last_heartbeat` no longer matches: `error.details.current_state` is the lease",
    413: "The body is larger than 8 MiB",
    415: "The body is not `application/json`",
    429: (
        "A rate limit of this key or its workspace is spent (`retry-after` says when to retry); on chat "
        "completions also: the model provider refused for its rate limit, and the turn is recorded"
    ),
    502: "The model provider failed the turn's request; the turn is recorded",
    503: "The model provider is overloaded; the turn is recorded",
    500: "An unexpected failure; quote the `request_id`",
}

REQUEST_ID_HEADER = {
    "request-id": {"description": "the request's id, as in error bodies", "schema": {"type": "string"}}
}


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for operation in OPERATIONS:
        if operation.request is not None:
            pairs.append((operation.request, "validation"))
        if operation.response is not None:
            pairs.append((operation.response, "serialization"))
    return list(dict.fromkeys(pairs))


def _refine(schema: Any) -> Any:
    """Adds what validators enforce but the generated schema cannot express."""
    if isinstance(schema, dict):
        refined = {key: _refine(value) for key, value in schema.items()}
        properties = refined.get("properties")
        if isinstance(properties, dict) and "metadata" in properties:
            properties["metadata"] = _metadata_rules(properties["metadata"])
        return refined
    if isinstance(schema, list):
        return [_refine(item) for item in schema]
    return schema


def _metadata_rules(schema: dict[str, Any]) -> dict[str, Any]:
    def limit(branch: dict[str, Any]) -> dict[str, Any]:
        if branch.get("type") != "object":
            return branch
        values = branch.get("additionalProperties")
        if isinstance(values, dict) and values.get("type") == "string":
            values = {**values, "maxLength": 512}
        elif isinstance(values, dict) and "anyOf" in values:
            values = {
                **values,
                "anyOf": [{**v, "maxLength": 512} if v.get("type") == "string" else v for v in values["anyOf"]],
            }
        return {**branch, **METADATA_RULES, "additionalProperties": values}

    if "anyOf" in schema:
        return {**schema, "anyOf": [limit(branch) for branch in schema["anyOf"]]}
    return limit(schema)


def _parameter(param: Param) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": param.name,
        "in": param.where,
        "required": param.required,
        "description": param.description,
        "schema": param.schema,
    }
    if param.schema.get("type") == "array":
        described["style"] = "form"
        described["explode"] = True
    return described


def _ref(model: type[BaseModel], names: dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]], mode: JsonSchemaMode) -> dict[str, Any]:
    return names[(model, mode)]


def _operation(op: Operation, names: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    described: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        described["description"] = op.description
    if op.params:
        described["parameters"] = [_parameter(param) for param in op.params]
    if op.request is not None:
        described["requestBody"] = {
            "required": not op.request_optional,
            "content": {"application/json": {"schema": _ref(op.request, names, "validation")}},
        }
    if op.request_content:
        described["requestBody"] = {
            "required": True,
            "content": {media: {"schema": schema} for media, schema in op.request_content.items()},
        }
    if op.response is not None:
        content = {"application/json": {"schema": _ref(op.response, names, "serialization")}}
        content.update({media: {"schema": schema} for media, schema in op.content.items()})
    else:
        content = {media: {"schema": schema} for media, schema in op.content.items()}
    responses: dict[str, Any] = {
        str(op.status): {"description": op.summary, "headers": REQUEST_ID_HEADER, "content": content}
    }
    statuses = set(op.errors) | {500}
    if not op.public:
        statuses.update((401, 429))  # every metered request may be refused by a rate limit
    for status in sorted(statuses):
        responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    described["responses"] = responses
    if op.public:
        described["security"] = []
    return described


def _error_response(status: int) -> dict[str, Any]:
    error_schema = {
        "allOf": [
            {"$ref": REF.format(model="ErrorBody")},
            {"properties": {"error": {"properties": {"type": {"const": ERROR_TYPE_BY_STATUS[status]}}}}},
        ]
    }
    headers = dict(REQUEST_ID_HEADER)
    if status == 409:
        headers["x-should-retry"] = {
            "description": "`false` when retrying cannot help (a stale version)",
            "schema": {"type": "string", "enum": ["true", "false"]},
        }
    return {
        "description": ERROR_DESCRIPTIONS[status],
        "headers": headers,
        "content": {"application/json": {"schema": error_schema}},
    }


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    names, definitions = models_json_schema(_models(), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, names)
    error_statuses = sorted({s for op in OPERATIONS for s in op.errors} | {401, 429, 500})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Agentry API",
            "version": "1",
            "summary": "Event-sourced control plane for AI agents (Anthropic managed-agents compatible)",
            "description": (
                "Every stored event and its schema version is described in the event catalogue: "
                "[/asyncapi.json](/asyncapi.json), rendered at [/docs/events](/docs/events)."
            ),
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "security": [{"apiKey": []}, {"bearer": []}],
        "tags": [{"name": name} for name in dict.fromkeys(op.tag for op in OPERATIONS)],
        "paths": paths,
        "components": {
            "schemas": _refine(definitions.get("$defs", {})),
            "responses": {f"Error{status}": _error_response(status) for status in error_statuses},
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {"type": "http", "scheme": "bearer", "description": "the API key as a bearer token"},
            },
        },
    }
