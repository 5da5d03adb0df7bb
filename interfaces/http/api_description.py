"""Every HTTP operation Agentry serves, as one declarative table.

``openapi.py`` turns the table into the OpenAPI document and a test checks the table against
the routes registered on the Falcon app (both ways), so a new endpoint is one entry here —
and an endpoint without an entry fails the suite. Request bodies are the very pydantic
models the resources validate with; responses are the models in ``responses.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from application.ports import PROVIDER_KINDS
from interfaces.http import chat_schemas as chat
from interfaces.http import responses as out
from interfaces.http import schemas as body
from interfaces.http.responses import SESSION_EVENT_TYPES, SESSION_STATUSES

Where = Literal["query", "path", "header"]


@dataclass(frozen=True)
class Param:
    name: str
    where: Where
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    response: type[BaseModel] | None
    status: int = 200
    request: type[BaseModel] | None = None
    # An empty body is accepted (the SDK's archive/delete calls send none).
    request_optional: bool = False
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    public: bool = False
    # For the rare operation that does not answer JSON: media type → schema.
    content: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""
    # Bodies it takes besides (or instead of) JSON, uploads: media type → OpenAPI media type object.
    request_content: dict[str, dict[str, Any]] = field(default_factory=dict)


# -- parameters ----------------------------------------------------------------------------

def path_id(name: str, prefix: str) -> Param:
    return Param(name, "path", {"type": "string", "minLength": 1}, f"the id (`{prefix}_…`)", required=True)


def integer(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


LIMIT: Param = Param("limit", "query", integer(1, 2**31), "page size; values above 1000 are clamped to 1000")
EVENT_LIMIT: Param = Param("limit", "query", integer(1, 2**31), "page size (default 100); above 1000 is clamped")
PAGE: Param = Param("page", "query", {"type": "string"}, "the opaque `next_page` or `prev_page` of another page")
INCLUDE_ARCHIVED: Param = Param("include_archived", "query", {"type": "boolean"}, "also list archived ones")
ORDER_DESC: Param = Param("order", "query", {"type": "string", "enum": ["asc", "desc"]}, "by creation time (default desc)")
ORDER_ASC: Param = Param("order", "query", {"type": "string", "enum": ["asc", "desc"]}, "by seq (default asc)")


def created_at(*ops: str) -> tuple[Param, ...]:
    return tuple(
        Param(f"created_at[{op}]", "query", {"type": "string", "format": "date-time"}, f"created_at {op} (RFC 3339)")
        for op in ops
    )


def string_list(name: str, items: dict[str, Any], description: str) -> Param:
    return Param(f"{name}[]", "query", {"type": "array", "items": items}, description)


# One frame of the stream, as OpenAPI 3.2 describes Server-Sent Events (each frame a schema).
SSE_FRAME = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": SESSION_EVENT_TYPES},
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "the event's seq"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/SessionEvent"},
        },
    },
    "required": ["event", "id", "data"],
}

# OpenAI's stream: data-only frames (no `event:` or `id:`), each a chunk as JSON, then `[DONE]`.
CHAT_STREAM_FRAME = {
    "type": "object",
    "description": "with `stream: true`: data-only `chat.completion.chunk` frames, then `data: [DONE]`",
    "properties": {
        "event": {"type": "string", "const": "message", "description": "never sent; the SSE default"},
        "data": {
            "anyOf": [
                {"type": "string", "const": "[DONE]"},
                {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "object": {"const": "chat.completion.chunk"},
                            "choices": {"type": "array"},
                        },
                        "required": ["id", "object", "choices"],
                    },
                },
            ],
        },
    },
    "required": ["data"],
}

# What every list of resources takes (projections.queries.ListQuery).
LIST_QUERY: tuple[Param, ...] = (LIMIT, PAGE, INCLUDE_ARCHIVED, ORDER_DESC, *created_at("gt", "gte", "lt", "lte"))

AFTER_SEQ = Param("after_seq", "query", integer(0, 2**62), "only events with a larger seq")

# -- rate limits ---------------------------------------------------------------------------

GROUP_TYPE = Param(
    "group_type", "query", {"type": "string", "enum": ["batch", "files", "model_group", "skills", "token_count", "web_search"]},
    "only entries of this group type",
)
RATE_LIMIT_PAGE = (Param("limit", "query", integer(1, 1000), "page size (default: all)"), PAGE)
WORKSPACE = Param("workspace_id", "path", {"type": "string", "minLength": 1}, "the workspace's id", required=True)
RATE_LIMIT_OPERATIONS = (
    Operation(
        "get", "/v1/organizations/rate_limits", "listRateLimits",
        "The requests-per-minute limits Agentry meters by", "rate limits", out.OrganizationRateLimitPage,
        params=(GROUP_TYPE, Param("model", "query", {"type": "string"}, "only entries that cover this model"), *RATE_LIMIT_PAGE),
        errors=(400, 404),
        description=(
            "Two entries: requests per minute per workspace (each workspace's unless it sets its own) and "
            "per caller (an API key or a person). A request over either is answered 429 with `retry-after`."
        ),
    ),
    Operation(
        "get", "/v1/organizations/workspaces/{workspace_id}/rate_limits", "listWorkspaceRateLimits",
        "A workspace's own rate limits (and, with include_inherited, the organization's)", "rate limits",
        out.WorkspaceRateLimitPage,
        params=(
            WORKSPACE, GROUP_TYPE,
            Param("include_inherited", "query", {"type": "boolean"}, "also list the organization's values it inherits"),
            *RATE_LIMIT_PAGE,
        ),
        errors=(400, 404),
    ),
    Operation(
        "post", "/v1/organizations/workspaces/{workspace_id}/rate_limits/{rate_limit_id}", "updateWorkspaceRateLimit",
        "Set or clear a workspace's own limits", "rate limits", out.WorkspaceRateLimit,
        request=body.WorkspaceRateLimitUpdate,
        params=(WORKSPACE, Param("rate_limit_id", "path", {"type": "string", "minLength": 1}, "the organization entry's id", required=True)),
        errors=(400, 413, 415, 403, 404),
    ),
)

# -- the table -----------------------------------------------------------------------------

BODY: tuple[int, ...] = (400, 413, 415)
WRITE: tuple[int, ...] = (*BODY, 409)

# -- vaults (kept apart so the table above gains one line) -----------------------------------

VAULT = path_id("vault_id", "vlt")
CREDENTIAL = (VAULT, path_id("credential_id", "vcrd"))
VAULT_LIST = (
    Param("limit", "query", integer(1, 2**31), "page size (default 20); values above 100 are clamped to 100"),
    PAGE, INCLUDE_ARCHIVED, ORDER_DESC, *created_at("gt", "gte", "lt", "lte"),
)  # fmt: skip
WORKSPACE = path_id("workspace_id", "wrkspc")
API_KEY = path_id("api_key_id", "apikey")
AFTER_ID = Param("after_id", "query", {"type": "string"}, "the page after this id (a page's `last_id`)")
BEFORE_ID = Param("before_id", "query", {"type": "string"}, "the page before this id (a page's `first_id`)")
ID_LIST = (LIMIT, AFTER_ID, BEFORE_ID)
ADMIN_WRITE = (*BODY, 403, 404)
ORGANIZATION_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post", "/v1/organizations/workspaces", "createWorkspace", "Create a workspace (organization admins)",
        "organization", out.Workspace, request=body.WorkspaceCreate, errors=(*BODY, 403),
    ),
    Operation(
        "get", "/v1/organizations/workspaces", "listWorkspaces", "List the workspaces the caller reaches, oldest first",
        "organization", out.WorkspacePage, errors=(400,),
        params=(
            *ID_LIST, INCLUDE_ARCHIVED,
            Param("include_default", "query", {"type": "boolean"}, "lead the first page with the default workspace"),
            string_list("ids", {"type": "string"}, "only these workspaces (at most 100)"),
        ),
    ),
    Operation(
        "get", "/v1/organizations/workspaces/{workspace_id}", "getWorkspace", "Retrieve a workspace",
        "organization", out.Workspace, params=(WORKSPACE,), errors=(404,),
    ),
    Operation(
        "post", "/v1/organizations/workspaces/{workspace_id}", "updateWorkspace",
        "Update a workspace's name, colour or tags (its admins, organization admins)", "organization",
        out.Workspace, request=body.WorkspaceUpdate, request_optional=True, params=(WORKSPACE,), errors=ADMIN_WRITE,
    ),
    Operation(
        "post", "/v1/organizations/workspaces/{workspace_id}/archive", "archiveWorkspace",
        "Archive a workspace: its keys stop working (organization admins)", "organization", out.Workspace,
        params=(WORKSPACE,), errors=(400, 403, 404),
    ),
    Operation(
        "post", "/v1/organizations/api_keys", "createApiKey",
        "Create an API key bound to a workspace and a role; the key is shown once, as `key`", "organization",
        out.CreatedApiKey, request=body.ApiKeyCreate, errors=ADMIN_WRITE,
    ),
    Operation(
        "get", "/v1/organizations/api_keys", "listApiKeys", "List the API keys of the workspaces the caller reaches",
        "organization", out.ApiKeyPage, errors=(400,),
        params=(
            *ID_LIST,
            Param("workspace_id", "query", {"type": "string"}, "only this workspace's keys"),
            Param("status", "query", {"type": "string", "enum": ["active", "inactive", "archived", "expired"]}, "only keys in this status"),
            Param("created_by_user_id", "query", {"type": "string"}, "only keys this user created"),
        ),
    ),
    Operation(
        "get", "/v1/organizations/api_keys/{api_key_id}", "getApiKey", "Retrieve an API key (never the key itself)",
        "organization", out.ApiKey, params=(API_KEY,), errors=(404,),
    ),
    Operation(
        "post", "/v1/organizations/api_keys/{api_key_id}", "updateApiKey",
        "Rename an API key, change its role, or make it inactive or archived (refused from the next request on)",
        "organization", out.ApiKey, request=body.ApiKeyUpdate, request_optional=True, params=(API_KEY,),
        errors=(*ADMIN_WRITE, 409),
    ),
)  # fmt: skip

VAULT_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post", "/v1/vaults", "createVault", "Create a vault", "vaults", out.Vault, request=body.VaultCreate,
        errors=BODY,
    ),
    Operation("get", "/v1/vaults", "listVaults", "List vaults, newest first", "vaults", out.VaultPage, params=VAULT_LIST, errors=(400,)),
    Operation("get", "/v1/vaults/{vault_id}", "getVault", "Retrieve a vault", "vaults", out.Vault, params=(VAULT,), errors=(404,)),
    Operation(
        "post", "/v1/vaults/{vault_id}", "updateVault", "Update a vault's name or metadata (a patch)", "vaults",
        out.Vault, request=body.VaultUpdate, request_optional=True, params=(VAULT,), errors=(*WRITE, 404),
    ),
    Operation(
        "post", "/v1/vaults/{vault_id}/archive", "archiveVault", "Archive a vault and every credential in it",
        "vaults", out.Vault, params=(VAULT,), errors=(409, 404),
    ),
    Operation(
        "delete", "/v1/vaults/{vault_id}", "deleteVault",
        "Delete a vault (its credentials' secrets become unreadable everywhere)", "vaults", out.VaultDeleted,
        params=(VAULT,), errors=(409, 404),
    ),
    Operation(
        "post", "/v1/vaults/{vault_id}/credentials", "createVaultCredential", "Add a credential to a vault",
        "vaults", out.VaultCredential, request=body.CredentialCreate, params=(VAULT,), errors=(*WRITE, 404),
        description=(
            "Secrets are write-only: sealed before they are stored, never returned. One active credential "
            "per `mcp_server_url` per vault (a second is a 409); at most 20 credentials per vault."
        ),
    ),
    Operation(
        "get", "/v1/vaults/{vault_id}/credentials", "listVaultCredentials", "List a vault's credentials, newest first",
        "vaults", out.VaultCredentialPage, params=(VAULT, *VAULT_LIST), errors=(400, 404),
    ),
    Operation(
        "get", "/v1/vaults/{vault_id}/credentials/{credential_id}", "getVaultCredential", "Retrieve a credential",
        "vaults", out.VaultCredential, params=CREDENTIAL, errors=(404,),
    ),
    Operation(
        "post", "/v1/vaults/{vault_id}/credentials/{credential_id}", "updateVaultCredential",
        "Update a credential: rotate its secrets, change its settings, name or metadata", "vaults",
        out.VaultCredential, request=body.CredentialUpdate, request_optional=True, params=CREDENTIAL,
        errors=(*WRITE, 404),
        description=(
            "`auth.type` must be the credential's own; `mcp_server_url`, `secret_name` and the refresh "
            "settings' `token_endpoint`, `client_id` and `resource` are immutable. An omitted secret is kept."
        ),
    ),
    Operation(
        "post", "/v1/vaults/{vault_id}/credentials/{credential_id}/archive", "archiveVaultCredential",
        "Archive a credential", "vaults", out.VaultCredential, params=CREDENTIAL, errors=(409, 404),
    ),
    Operation(
        "delete", "/v1/vaults/{vault_id}/credentials/{credential_id}", "deleteVaultCredential",
        "Delete a credential (its secrets become unreadable everywhere)", "vaults", out.VaultCredentialDeleted,
        params=CREDENTIAL, errors=(409, 404),
    ),
    Operation(
        "post", "/v1/vaults/{vault_id}/credentials/{credential_id}/mcp_oauth_validate", "validateVaultCredential",
        "Probe the credential's MCP server with it", "vaults", out.CredentialValidation, params=CREDENTIAL,
        errors=(400, 404),
        description=(
            "Sends an MCP `initialize` request with the credential's bearer (5 s timeout); on a 401 with "
            "refresh settings it tries the refresh and keeps the new tokens. Bodies in the report are "
            "truncated and scrubbed of secrets."
        ),
    ),
)


# Its own module (it reads the helpers above, defined by now).
from interfaces.http.activity_description import ACTIVITY_OPERATIONS  # noqa: E402
from interfaces.http.files_description import FILE_OPERATIONS  # noqa: E402
from interfaces.http.knowledge_description import KNOWLEDGE_OPERATIONS  # noqa: E402
from interfaces.http.memory_description import MEMORY_OPERATIONS  # noqa: E402
from interfaces.http.notification_description import NOTIFICATION_OPERATIONS  # noqa: E402
from interfaces.http.operations import METRICS_CONTENT, Live, Ready  # noqa: E402
from interfaces.http.people_description import PEOPLE_OPERATIONS  # noqa: E402
from interfaces.http.search_description import SEARCH_OPERATIONS  # noqa: E402
from interfaces.http.skill_description import SKILL_OPERATIONS  # noqa: E402
from interfaces.http.task_description import TASK_OPERATIONS  # noqa: E402
from interfaces.http.usage_description import USAGE_OPERATIONS  # noqa: E402
from interfaces.http.webhooks_description import WEBHOOK_OPERATIONS  # noqa: E402

OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/healthz", "health", "Liveness", "system", out.Health, public=True),
    Operation(
        "get", "/livez", "livez", "Liveness probe: the process answers (no I/O)", "system", Live, public=True,
    ),
    Operation(
        "get", "/readyz", "readyz", "Readiness probe: event store, projection lag, runtime", "system", Ready,
        public=True, errors=(503,),
        description=(
            "200 when every check passes. 503 (an error envelope, with `status` and `checks` beside it) when the "
            "event store does not answer, a projection is more than `AGENTRY_READY_MAX_LAG` events behind, or "
            "the turn runtime of this process stopped."
        ),
    ),
    Operation(
        "get", "/metrics", "metrics", "Metrics in the Prometheus text format", "system", None, public=True,
        content=METRICS_CONTENT,
        description="Public unless `AGENTRY_METRICS_REQUIRE_KEY=1`, which makes it need an API key (401 without one).",
    ),
    # agents
    Operation(
        "post", "/v1/agents", "createAgent", "Create an agent (version 1)", "agents", out.Agent,
        request=body.AgentCreate, errors=(*WRITE, 404),
        description=(
            "A `department_id` or `primary_board_id` that is not the caller's: 404 (archived: 400). "
            "So is a `knowledge_bases` entry naming a knowledge base the caller does not have."
        ),
    ),
    Operation(
        "get", "/v1/agents", "listAgents", "List agents, newest first", "agents", out.AgentPage,
        params=(
            *LIST_QUERY,
            Param("department_id", "query", {"type": "string"}, "Agentry: only agents of this department"),
            Param("board_id", "query", {"type": "string"}, "Agentry: only agents with this primary board"),
        ),
        errors=(400,),
    ),
    Operation(
        "get", "/v1/agents/{agent_id}", "getAgent", "Retrieve an agent (latest or one version)", "agents",
        out.Agent, params=(path_id("agent_id", "agent"), Param("version", "query", integer(1, 2**31), "a past version")),
        errors=(400, 404),
    ),
    Operation(
        "post", "/v1/agents/{agent_id}", "updateAgent", "Update an agent (a new version)", "agents", out.Agent,
        request=body.AgentUpdate, params=(path_id("agent_id", "agent"),), errors=(*WRITE, 404),
        description=(
            "`version` is the version you saw: a stale one is a 409 with `x-should-retry: false`. "
            "A `knowledge_bases` entry naming a knowledge base the caller does not have: 404."
        ),
    ),
    Operation(
        "post", "/v1/agents/{agent_id}/archive", "archiveAgent", "Archive an agent", "agents", out.Agent,
        params=(path_id("agent_id", "agent"),), errors=(409, 404),
    ),
    Operation(
        "get", "/v1/agents/{agent_id}/versions", "listAgentVersions", "Every version, newest first", "agents",
        out.AgentPage, params=(path_id("agent_id", "agent"), LIMIT, PAGE, ORDER_DESC), errors=(400, 404),
    ),
    # environments
    Operation(
        "post", "/v1/environments", "createEnvironment", "Create an environment", "environments",
        out.Environment, request=body.EnvironmentCreate, errors=WRITE,
    ),
    Operation(
        "get", "/v1/environments", "listEnvironments", "List environments, newest first", "environments",
        out.EnvironmentPage, params=LIST_QUERY, errors=(400,),
    ),
    Operation(
        "get", "/v1/environments/{environment_id}", "getEnvironment", "Retrieve an environment", "environments",
        out.Environment, params=(path_id("environment_id", "env"),), errors=(404,),
    ),
    Operation(
        "post", "/v1/environments/{environment_id}", "updateEnvironment", "Update an environment",
        "environments", out.Environment, request=body.EnvironmentUpdate,
        params=(path_id("environment_id", "env"),), errors=(*WRITE, 404),
    ),
    Operation(
        "delete", "/v1/environments/{environment_id}", "deleteEnvironment",
        "Delete an environment (archives it; its history stays)", "environments", out.EnvironmentDeleted,
        params=(path_id("environment_id", "env"),), errors=(409, 404),
    ),
    Operation(
        "post", "/v1/environments/{environment_id}/archive", "archiveEnvironment", "Archive an environment",
        "environments", out.Environment, params=(path_id("environment_id", "env"),), errors=(409, 404),
    ),
    # environment keys
    Operation(
        "post", "/v1/environments/{environment_id}/keys", "createEnvironmentKey",
        "Issue a key for the environment's workers (shown once)", "environments", out.IssuedEnvironmentKey,
        request=body.EnvironmentKeyCreate, request_optional=True,
        params=(path_id("environment_id", "env"),), errors=(*WRITE, 404),
        description=(
            "`key` is in this response only; Agentry stores its keyed hash. An archived "
            "environment takes no new keys (400). An environment key is not an API key."
        ),
    ),
    Operation(
        "get", "/v1/environments/{environment_id}/keys", "listEnvironmentKeys",
        "List the environment's keys (never the keys themselves), newest first", "environments",
        out.EnvironmentKeyPage, params=(path_id("environment_id", "env"), *LIST_QUERY), errors=(400, 404),
    ),
    Operation(
        "delete", "/v1/environments/{environment_id}/keys/{key_id}", "revokeEnvironmentKey",
        "Revoke an environment key", "environments", out.EnvironmentKeyDeleted,
        params=(path_id("environment_id", "env"), path_id("key_id", "envkey")), errors=(409, 404),
    ),
    # environments' work queues
    Operation(
        "get", "/v1/environments/{environment_id}/work/poll", "pollWork",
        "Claim the oldest work item a worker may take (long poll)", "work", None,
        params=(
            path_id("environment_id", "env"),
            Param("block_ms", "query", integer(1, 999), "wait up to this long for work (default: answer at once)"),
            Param("reclaim_older_than_ms", "query", integer(0, 86_400_000), "take over claims not acknowledged for this long (default 5000)"),
            Param("Anthropic-Worker-ID", "header", {"type": "string"}, "the polling worker, counted in the queue's stats"),
        ),
        errors=(400, 401, 403, 404),
        content={"application/json": {"anyOf": [{"$ref": "#/components/schemas/Work"}, {"type": "null"}]}},
        description=(
            "An environment key (or an API key). The claimed item carries a `secret` whose "
            "`sessions_token` authorizes its heartbeat, its stop and its worker's calls for its "
            "session. No work: `null`."
        ),
    ),
    Operation(
        "get", "/v1/work/poll", "pollCloudWork",
        "Claim the oldest work item of any cloud environment (Agentry's own sandbox workers)", "work", None,
        params=(
            Param("block_ms", "query", integer(1, 999), "wait up to this long for work (default: answer at once)"),
            Param("reclaim_older_than_ms", "query", integer(0, 86_400_000), "take over claims not acknowledged for this long (default 5000)"),
            Param("Anthropic-Worker-ID", "header", {"type": "string"}, "the polling worker"),
        ),
        errors=(400, 401, 403),
        content={"application/json": {"anyOf": [{"$ref": "#/components/schemas/Work"}, {"type": "null"}]}},
        description=(
            "Takes the sandbox worker key (`AGENTRY_SANDBOX_WORKER_KEY`) only. The item carries its "
            "`secret` and, as `environment`, its environment's id and `config` (networking, packages)."
        ),
    ),
    Operation(
        "get", "/v1/environments/{environment_id}/work/stats", "getWorkQueueStats",
        "The queue's depth, pending claims and polling workers", "work", out.WorkQueueStats,
        params=(path_id("environment_id", "env"),), errors=(403, 404),
    ),
    Operation(
        "get", "/v1/environments/{environment_id}/work", "listWork",
        "List the environment's work items (environment key only)", "work", out.WorkPage,
        params=(path_id("environment_id", "env"), LIMIT, PAGE), errors=(400, 403),
    ),
    Operation(
        "get", "/v1/environments/{environment_id}/work/{work_id}", "getWork", "Retrieve a work item (API key only)",
        "work", out.Work, params=(path_id("environment_id", "env"), path_id("work_id", "work")), errors=(403, 404),
    ),
    Operation(
        "post", "/v1/environments/{environment_id}/work/{work_id}", "updateWork",
        "Update a work item's metadata (a null value deletes the key)", "work", out.Work, request=body.WorkUpdate,
        params=(path_id("environment_id", "env"), path_id("work_id", "work")), errors=(*WRITE, 403, 404),
    ),
    Operation(
        "post", "/v1/environments/{environment_id}/work/{work_id}/ack", "acknowledgeWork",
        "Acknowledge a claimed item (queued → starting)", "work", out.Work,
        params=(path_id("environment_id", "env"), path_id("work_id", "work")), errors=(403, 404, 409),
    ),
    Operation(
        "post", "/v1/environments/{environment_id}/work/{work_id}/heartbeat", "heartbeatWork",
        "Extend the item's lease (compare-and-set on the last heartbeat)", "work", out.WorkHeartbeat,
        params=(
            path_id("environment_id", "env"),
            path_id("work_id", "work"),
            Param("expected_last_heartbeat", "query", {"type": "string"}, "`NO_HEARTBEAT` first, then the last `last_heartbeat`"),
            Param("desired_ttl_seconds", "query", integer(1, 3600), "lease length (default AGENTRY_WORK_LEASE)"),
        ),
        errors=(400, 403, 404, 412),
        description="A stale `expected_last_heartbeat` is a 412 whose `error.details.current_state` is the lease.",
    ),
    Operation(
        "post", "/v1/environments/{environment_id}/work/{work_id}/stop", "stopWork",
        "Stop a work item (graceful: stopping; forced: stopped)", "work", out.Work,
        request=body.WorkStop, request_optional=True,
        params=(path_id("environment_id", "env"), path_id("work_id", "work")), errors=(*BODY, 403, 404, 409),
    ),
    # sessions
    Operation(
        "post", "/v1/sessions", "createSession", "Start a session on a pinned agent version", "sessions",
        out.Session, request=body.SessionCreate, errors=(*WRITE, 404),
    ),
    Operation(
        "get", "/v1/sessions", "listSessions", "List sessions", "sessions", out.SessionPage,
        params=(
            *LIST_QUERY,
            Param("agent_id", "query", {"type": "string"}, "only sessions of this agent"),
            Param("agent_version", "query", integer(1, 2**31 - 1), "only sessions pinned to this version"),
            string_list("statuses", {"type": "string", "enum": list(SESSION_STATUSES)}, "only these statuses"),
        ),
        errors=(400,),
    ),
    Operation(
        "get", "/v1/sessions/{session_id}", "getSession", "Retrieve a session", "sessions", out.Session,
        params=(path_id("session_id", "sesn"),), errors=(404,),
    ),
    Operation(
        "post", "/v1/sessions/{session_id}", "updateSession", "Update a session's title or metadata",
        "sessions", out.Session, request=body.SessionUpdate, params=(path_id("session_id", "sesn"),),
        errors=(*WRITE, 404),
    ),
    Operation(
        "delete", "/v1/sessions/{session_id}", "deleteSession",
        "Delete a session (its stream ends with `session.deleted`)", "sessions", out.SessionDeleted,
        params=(path_id("session_id", "sesn"),), errors=(400, 409, 404),
    ),
    Operation(
        "post", "/v1/sessions/{session_id}/archive", "archiveSession", "Archive a session", "sessions",
        out.Session, params=(path_id("session_id", "sesn"),), errors=(400, 409, 404),
    ),
    # session events
    Operation(
        "get", "/v1/sessions/{session_id}/events", "listSessionEvents", "The session's public event log",
        "events", out.SessionEventPage,
        params=(
            path_id("session_id", "sesn"), EVENT_LIMIT, PAGE, ORDER_ASC, AFTER_SEQ,
            string_list("types", {"type": "string"}, "only events of these types"),
            *created_at("gt", "gte", "lt", "lte"),
        ),
        errors=(400, 404),
    ),
    Operation(
        "post", "/v1/sessions/{session_id}/events", "sendSessionEvents",
        "Send user events (a `user.message` starts a turn)", "events", out.SentEvents, status=202,
        request=body.SendEvents, params=(path_id("session_id", "sesn"),), errors=(*WRITE, 404),
    ),
    Operation(
        "get", "/v1/sessions/{session_id}/events/stream", "streamSessionEvents",
        "Follow the event log (Server-Sent Events)", "events", None,
        params=(
            path_id("session_id", "sesn"),
            Param("replay", "query", {"type": "boolean"}, "replay the whole log before tailing"),
            AFTER_SEQ,
            Param(
                "Last-Event-ID", "header", {"type": "string", "pattern": "^[0-9]{1,18}$"},
                "resume after this seq (wins over `after_seq` and `replay`)",
            ),
            string_list(
                "event_deltas", {"type": "string", "enum": ["agent.message", "agent.thinking"]},
                "live previews (`event_start`, `event_delta`) of these event types while the model streams",
            ),
        ),
        errors=(400, 404),
        content={"text/event-stream": SSE_FRAME},
        description=(
            "Each frame is `event: <type>`, `id: <seq>`, `data: <the session event as JSON>` "
            "(see the `SessionEvent` schema and `/asyncapi.json`). Starts live unless "
            "`Last-Event-ID`, `after_seq` or `replay` asks for history; then tails with no gap "
            "and no duplicate. A deleted session's stream ends after `session.deleted`. "
            "With `event_deltas[]`, previews of those event types arrive as `event_start` / "
            "`event_delta` frames (no `id:`, never stored) before the complete event."
        ),
    ),
    # session resources
    Operation(
        "post", "/v1/sessions/{session_id}/resources", "addSessionResource",
        "Mount a file, GitHub repository or memory store into the session", "sessions", out.SessionResource,
        request=body.SessionResourceAdd, params=(path_id("session_id", "sesn"),), errors=(*WRITE, 404),
        description=(
            "The SDK sends a `file` (`mount_path` defaults to `/mnt/session/uploads/<file_id>`); a "
            "`github_repository` (default `/workspace/<repository name>`) or `memory_store` is "
            "accepted as at create. A memory store must be the caller's (404) and not archived (400); its "
            "`name` and `description` are snapshotted and it mounts at `/mnt/memory/<slug of the name>`. A repository's `authorization_token` is write-only. A mount path "
            "another resource holds, a memory store attached twice, more than 500 files, 8 memory "
            "stores or 1000 resources, or an archived or terminated session: 400."
        ),
    ),
    Operation(
        "get", "/v1/sessions/{session_id}/resources", "listSessionResources",
        "The session's resources, in the order attached", "sessions", out.SessionResourcePage,
        params=(
            path_id("session_id", "sesn"),
            Param("limit", "query", integer(1, 2**31), "page size; omitted: all of them (at most 1000)"),
            PAGE,
        ),
        errors=(400, 404),
    ),
    Operation(
        "get", "/v1/sessions/{session_id}/resources/{resource_id}", "getSessionResource",
        "Retrieve a session resource", "sessions", out.SessionResource,
        params=(path_id("session_id", "sesn"), path_id("resource_id", "sesrsc")), errors=(404,),
    ),
    Operation(
        "post", "/v1/sessions/{session_id}/resources/{resource_id}", "updateSessionResource",
        "Rotate a GitHub repository's authorization token", "sessions", out.SessionResource,
        request=body.SessionResourceUpdate, params=(path_id("session_id", "sesn"), path_id("resource_id", "sesrsc")),
        errors=(*WRITE, 404),
        description=(
            "Only `github_repository` resources have a token (any other kind: 400). The token is "
            "write-only: no response, event or read model carries it; `updated_at` moves."
        ),
    ),
    Operation(
        "delete", "/v1/sessions/{session_id}/resources/{resource_id}", "deleteSessionResource",
        "Unmount a resource from the session", "sessions", out.SessionResourceDeleted,
        params=(path_id("session_id", "sesn"), path_id("resource_id", "sesrsc")), errors=(400, 409, 404),
    ),
    # model cards
    Operation(
        "post", "/v1/model_cards", "createModelCard", "Create a model card (probes the provider first)",
        "model_cards", out.ModelCard, request=body.ModelCardCreate, errors=WRITE,
        description=(
            "The key is checked with a one-token request (at most 6 s) unless `probe` is false; a key "
            "or URL the provider refuses is a 400 carrying the provider's reason, and nothing is "
            "stored. A `model_id` another card of the tenant holds is a 409."
        ),
    ),
    Operation(
        "get", "/v1/model_cards", "listModelCards", "List model cards, newest first", "model_cards",
        out.ModelCardPage,
        params=(
            *LIST_QUERY,
            Param("provider", "query", {"type": "string", "enum": list(PROVIDER_KINDS)}, "only cards of this provider"),
        ),
        errors=(400,),
    ),
    Operation(
        "get", "/v1/model_cards/{model_card_id}", "getModelCard", "Retrieve a model card", "model_cards",
        out.ModelCard, params=(path_id("model_card_id", "mcard"),), errors=(404,),
    ),
    Operation(
        "post", "/v1/model_cards/{model_card_id}", "updateModelCard",
        "Update a model card: rotate the key, change the base URL, headers, wire model or handle",
        "model_cards", out.ModelCard, request=body.ModelCardUpdate, params=(path_id("model_card_id", "mcard"),),
        errors=(*WRITE, 404),
        description=(
            "Partial. A change to the key, base URL, headers, model or provider is probed again "
            "(unless `probe` is false); a refusal is a 400 and changes nothing."
        ),
    ),
    Operation(
        "delete", "/v1/model_cards/{model_card_id}", "deleteModelCard",
        "Delete a model card (its key becomes unreadable everywhere)", "model_cards", out.ModelCardDeleted,
        params=(path_id("model_card_id", "mcard"),), errors=(409, 404),
    ),
    # models: the OpenAI-compatible surface's catalogue
    Operation(
        "get", "/v1/models", "listModels", "List the agents and model cards a request can name, newest first",
        "models", out.ModelList,
        params=(
            Param("limit", "query", integer(1, 2**31), "page size (default: all, up to 1000); above 1000 is clamped"),
            Param("after_id", "query", {"type": "string"}, "the page after this id (a page's `last_id`)"),
            Param("before_id", "query", {"type": "string"}, "the page before this id (a page's `first_id`)"),
        ),
        errors=(400,),
        description=(
            "One body for the `openai` SDK's `models.list` and the `anthropic` SDK's (which pages "
            "with `has_more`, `first_id` and `last_id`). Lists every live agent of the caller's "
            "tenant and every model card."
        ),
    ),
    Operation(
        "get", "/v1/models/{model_id}", "getModel", "Retrieve a model: an agent or a model card", "models",
        out.Model,
        params=(
            Param(
                "model_id", "path", {"type": "string", "minLength": 1},
                "an agent's id, `agent:<name>` (a live agent of that exact name) or a model card's `model_id`",
                required=True,
            ),
        ),
        errors=(400, 404),
        description="`agent:<name>` naming several live agents is a 400: use the agent's id.",
    ),
    Operation(
        "post", "/v1/chat/completions", "createChatCompletion",
        "Create a chat completion (OpenAI-compatible), recorded as a session's turn", "chat",
        out.ChatCompletion, request=chat.ChatCompletionCreate,
        params=(
            Param("app_id", "query", {"type": "string"}, "an agent (its id or `agent:<name>`) to answer, whatever `model` says"),
            Param("Agentry-Session-Id", "header", {"type": "string"}, "continue this session instead of starting one"),
            Param("Agentry-Environment-Id", "header", {"type": "string"}, "the environment a new session runs in"),
        ),
        errors=(*WRITE, 403, 404, 429, 502, 503),
        content={
            "text/event-stream": CHAT_STREAM_FRAME,
        },
        description=(
            "`model` names an agent (`agent_…` or `agent:<name>`; its system prompt, model and tools "
            "apply) or a model card's `model_id` (a plain proxied completion). Every completion is a "
            "session turn: the response's `Agentry-Session-Id` header names the session, whose log holds "
            "the conversation. Send that header back to continue the session: only the messages after "
            "the last `assistant` message are recorded then. Errors use OpenAI's envelope "
            "(`error.message`, `type`, `param`, `code`); a turn that fails answers with its "
            "`session.error` type (429 rate limited, 503 overloaded, 502 the provider failed)."
        ),
    ),

    # vaults and their credentials
    *VAULT_OPERATIONS,
    *RATE_LIMIT_OPERATIONS,
    *PEOPLE_OPERATIONS,
    *TASK_OPERATIONS,
    *SKILL_OPERATIONS,
    *MEMORY_OPERATIONS,
    *NOTIFICATION_OPERATIONS,
    *KNOWLEDGE_OPERATIONS,
    # the organization: workspaces and API keys
    *ORGANIZATION_OPERATIONS,
    *ACTIVITY_OPERATIONS,
    *SEARCH_OPERATIONS,
    *USAGE_OPERATIONS,
    *WEBHOOK_OPERATIONS,
    *FILE_OPERATIONS,
    # the documents themselves
    Operation(
        "get", "/openapi.json", "openapi", "This document (OpenAPI 3.1)", "documentation", None, public=True,
        content={"application/json": {"type": "object"}},
    ),
    Operation(
        "get", "/asyncapi.json", "asyncapi", "The event catalogue (AsyncAPI 3.0)", "documentation", None,
        public=True, content={"application/json": {"type": "object"}},
    ),
    Operation(
        "get", "/docs", "docs", "Interactive API reference", "documentation", None, public=True,
        content={"text/html": {"type": "string"}},
    ),
    Operation(
        "get", "/docs/events", "eventDocs", "The event catalogue as a page", "documentation", None,
        public=True, content={"text/html": {"type": "string"}},
    ),
    Operation(
        "get", "/docs/assets/{name}", "docsAsset", "A static file of the API reference", "documentation", None,
        public=True, params=(Param("name", "path", {"type": "string"}, "file name", required=True),),
        errors=(404,),
        content={
            "application/javascript": {"type": "string"},
            "text/css": {"type": "string"},
            "image/png": {"type": "string", "contentMediaType": "image/png"},
        },
    ),
    # the web console: a static page and its modules (the API calls they make carry the key)
    Operation(
        "get", "/console", "console", "The web console", "console", None, public=True,
        content={"text/html": {"type": "string"}},
    ),
    Operation(
        "get", "/console/assets/{path}", "consoleAsset", "A file of the web console", "console", None,
        public=True, params=(Param("path", "path", {"type": "string"}, "file path, e.g. `core.js`", required=True),),
        errors=(404,),
        content={
            "text/javascript": {"type": "string"},
            "text/css": {"type": "string"},
            "application/json": {"type": "array", "items": {"type": "string"}},
        },
    ),
)

