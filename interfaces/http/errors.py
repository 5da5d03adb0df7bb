"""The one error envelope: ``{"type": "error", "error": {"type", "message"}}``; on the
OpenAI-compatible paths the error also carries OpenAI's ``param`` and ``code`` (one body
that both SDKs read).

Bad input is a 4xx with a message that says what to fix; anything unexpected is a 500 with
a request id to quote and no stack trace (the trace goes to the server log only)."""

from __future__ import annotations

import logging
from typing import Any

import falcon
import orjson
import pydantic

from application.errors import (
    ApplicationError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PreconditionFailed,
    Unauthorized,
    Unavailable,
)
from application.people import Throttled
from application.ports import BlobMissing
from application.rate_limits import RateLimited
from domain.errors import DomainError, Taken, VersionMismatch
from domain.memory import MemoryPreconditionFailed
from projections.queries import BadPageToken

log = logging.getLogger("agentry.http")

ERROR_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    412: "precondition_failed_error",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
}

# Refusals that carry a type of their own (``error_type``) beside their status's usual one.
SPECIFIC_ERROR_TYPES = {409: ("memory_precondition_failed_error", "memory_path_conflict_error")}


MAX_MESSAGE = 1000


def envelope(status: int, message: str) -> dict[str, Any]:
    if len(message) > MAX_MESSAGE:
        # Messages quote the offending input; a 60 KB id must not come back as 60 KB.
        message = message[: MAX_MESSAGE - 1] + "…"
    return {
        "type": "error",
        "error": {"type": ERROR_TYPE_BY_STATUS.get(status, "invalid_request_error"), "message": message},
    }


# Paths the openai SDK calls: its errors read ``error.param`` and ``error.code`` too.
OPENAI_PATHS = ("/v1/chat/", "/v1/models")
OPENAI_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}


def write_error(
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response,
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
) -> None:
    body = envelope(status, message)
    if req.path.startswith(OPENAI_PATHS):
        body["error"]["param"] = param
        body["error"]["code"] = code or OPENAI_CODES.get(status)
    request_id = getattr(req.context, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps(body)


# Parts pydantic adds to a location for the member of a union it tried (a discriminator's
# value, a type's name); a caller's ``param`` names fields and indexes only.
_UNION_TAGS = frozenset({"system", "developer", "user", "assistant", "tool", "text", "image_url", "refusal"})


def first_location(error: pydantic.ValidationError) -> str | None:
    """The first problem's place as OpenAI's ``param`` spells it: ``messages[0].content``."""
    items = error.errors(include_url=False)
    if not items:
        return None
    param = ""
    loc = list(items[0]["loc"])
    for index, part in enumerate(loc):
        if isinstance(part, int):
            param += f"[{part}]"
        elif any(mark in part for mark in "[]-(") or part in ("str", "int", "float", "bool", "list", "dict"):
            continue
        elif part in _UNION_TAGS and index > 0 and isinstance(loc[index - 1], int) and index + 1 < len(loc):
            continue  # the member of a tagged union, not a field
        else:
            param += f".{part}" if param else part
    return param or None


def describe_validation_error(error: pydantic.ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False)[:5]:
        where = ".".join(str(part) for part in item["loc"]) or "body"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


# The status of every refusal a use case or an aggregate can raise, by class: the most
# specific class in an error's MRO wins, so a new subclass needs no line here.
STATUS_BY_ERROR: dict[type[Exception], int] = {
    NotFound: 404,
    Conflict: 409,
    VersionMismatch: 409,
    Taken: 409,
    MemoryPreconditionFailed: 409,
    Invalid: 400,
    Unauthorized: 401,
    Forbidden: 403,
    PreconditionFailed: 412,
    RateLimited: 429,
    BadPageToken: 400,
    DomainError: 400,
    Throttled: 429,
    Unavailable: 503,
    # Bytes a record names but the blob store no longer holds.
    BlobMissing: 404,
}


def status_of(error: Exception) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


async def handle_refusal(req, resp, error: Exception, params) -> None:  # noqa: ANN001
    status = status_of(error)
    write_error(req, resp, status, str(error), code=getattr(error, "code", None))
    error_type = getattr(error, "error_type", None)
    if isinstance(error_type, str):
        # A refusal with a type of its own (``memory_path_conflict_error``): the SDK shows it.
        body = orjson.loads(resp.data)
        body["error"]["type"] = error_type
        resp.data = orjson.dumps(body)
    error_code = getattr(error, "error_code", None)
    if isinstance(error_code, str):
        # The SDK picks its error class by ``error.details.error_code`` (its worker also reads
        # ``error.details.current_state`` of a PreconditionFailed); the code sits in both places.
        body = orjson.loads(resp.data)
        body["error"]["error_code"] = error_code
        body["error"]["details"] = {"error_code": error_code, **getattr(error, "details", {})}
        resp.data = orjson.dumps(body)
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int):
        resp.set_header("retry-after", str(retry_after))
    if status == 409:
        # The anthropic SDK retries 409s unless told not to; a stale version never heals.
        retryable = isinstance(error, Conflict) and error.retryable
        resp.set_header("x-should-retry", "true" if retryable else "false")


async def handle_validation_error(req, resp, error, params) -> None:  # noqa: ANN001
    write_error(req, resp, 400, describe_validation_error(error), param=first_location(error))


async def handle_http_error(req, resp, error: falcon.HTTPError, params) -> None:  # noqa: ANN001
    status = error.status_code
    message = error.description or error.title or "request failed"
    if status == 404 and not error.description:
        message = f"no route for {req.method} {req.path}"
    write_error(req, resp, status, message)
    resp.set_headers(error.headers or {})


async def handle_unexpected(req, resp, error: Exception, params) -> None:  # noqa: ANN001
    log.error(
        "unhandled %s on %s %s (request %s)",
        type(error).__name__,
        req.method,
        req.path,
        getattr(req.context, "request_id", "-"),
        exc_info=error,
    )
    write_error(req, resp, 500, "internal server error")


def install(app: falcon.asgi.App) -> None:
    # Falcon picks the most specific registered handler for an exception.
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(pydantic.ValidationError, handle_validation_error)
    for error_class in (ApplicationError, DomainError, BadPageToken):
        app.add_error_handler(error_class, handle_refusal)
