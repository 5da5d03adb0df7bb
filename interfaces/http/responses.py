"""Response bodies as pydantic models, so the OpenAPI document describes what the API sends
from the same kind of source that describes what it accepts (``schemas.py``).

They are descriptions, not serializers: the resources still send the dicts that
``application.views`` builds. Each model names the fields every response carries (required,
nullable where the value may be null) and allows extra fields, because resources forward
what clients defined (agent tools, session resources, event payloads) and later versions may
add fields without breaking a client that validates against this document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from domain.sessions import EVENT_CLASS_BY_TYPE, SessionWasDeleted

SESSION_EVENT_TYPES: list[Any] = sorted({*EVENT_CLASS_BY_TYPE, SessionWasDeleted.public_type})
SESSION_STATUSES = ("rescheduling", "running", "idle", "terminated")


class Described(BaseModel):
    """Known fields are promised; unknown ones may appear (forward compatible)."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(Described):
    type: Literal[
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "conflict_error",
        "precondition_failed_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
        "memory_precondition_failed_error",
        "memory_path_conflict_error",
    ]
    message: str


class ErrorBody(Described):
    """Every non-2xx response; ``request_id`` is also sent as the ``request-id`` header."""

    type: Literal["error"]
    error: ErrorDetail
    request_id: str


class ModelSettings(Described):
    id: str
    effort: dict[str, Any] | None = None
    speed: Literal["standard", "fast"] | None = None
    inference_geo: str | None = None


class AgentDefinition(Described):
    """What an agent is made of; every field is present (defaults materialized)."""

    name: str
    model: ModelSettings
    description: str | None
    system: str | None
    tools: list[dict[str, Any]]
    mcp_servers: list[dict[str, Any]]
    skills: list[dict[str, Any]]
    multiagent: dict[str, Any] | None
    execution_identity: dict[str, Any]
    knowledge_bases: list[dict[str, Any]] | None = Field(
        default=None, description="Agentry: present once set; searched with the built-in `knowledge_search` tool"
    )


class Agent(AgentDefinition):
    type: Literal["agent"]
    id: str
    version: int = Field(ge=1)
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    department_id: str | None = Field(default=None, description="Agentry: present once set (`dept_…`)")
    primary_board_id: str | None = Field(default=None, description="Agentry: present once set (`board_…`)")


class PinnedAgent(AgentDefinition):
    """The agent as a session pinned it: one version, without timestamps or metadata."""

    type: Literal["agent"]
    id: str
    version: int = Field(ge=1)


class NetworkingSettings(Described):
    type: Literal["unrestricted", "limited"]


class PackageLists(Described):
    apt: list[str]
    cargo: list[str]
    gem: list[str]
    go: list[str]
    npm: list[str]
    pip: list[str]


class CloudEnvironmentConfig(Described):
    type: Literal["cloud"]
    networking: NetworkingSettings
    packages: PackageLists


class SelfHostedEnvironmentConfig(Described):
    type: Literal["self_hosted"]


class Environment(Described):
    type: Literal["environment"]
    id: str
    name: str
    description: str | None
    config: CloudEnvironmentConfig | SelfHostedEnvironmentConfig = Field(discriminator="type")
    metadata: dict[str, str]
    scope: Literal["organization", "account"] | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class Session(Described):
    type: Literal["session"]
    id: str
    status: Literal["rescheduling", "running", "idle", "terminated"]
    agent: PinnedAgent
    environment_id: str
    title: str | None
    metadata: dict[str, str]
    resources: list[dict[str, Any]]
    vault_ids: list[str]
    budget: dict[str, Any] | None
    outcome_evaluations: list[dict[str, Any]]
    stats: dict[str, Any]
    usage: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class FileResource(Described):
    type: Literal["file"]
    id: str
    file_id: str
    mount_path: str
    created_at: datetime
    updated_at: datetime


class GitHubRepositoryResource(Described):
    """Never carries the ``authorization_token``: it is write-only."""

    type: Literal["github_repository"]
    id: str
    url: str
    mount_path: str
    checkout: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime


class MemoryStoreResource(Described):
    type: Literal["memory_store"]
    id: str
    memory_store_id: str
    access: Literal["read_write", "read_only"]
    instructions: str | None = None
    name: str | None = Field(default=None, description="the store's name, snapshotted at attach time")
    description: str | None = Field(default=None, description="the store's description, snapshotted at attach time")
    mount_path: str | None = Field(
        default=None, description="`/mnt/memory/<slug of the name>` (`-2`, `-3`, … when two stores share a slug)"
    )
    created_at: datetime
    updated_at: datetime


class SessionResource(RootModel[FileResource | GitHubRepositoryResource | MemoryStoreResource]):
    """A resource mounted into a session (``type`` tells which)."""

    root: FileResource | GitHubRepositoryResource | MemoryStoreResource = Field(discriminator="type")


class SessionEvent(Described):
    """One entry of a session's public log. The rest of the object is the event's payload:
    what the client sent for ``user.*`` / ``system.message``, what the runtime recorded
    otherwise (``content``, ``stop_reason``, ``error``, …)."""

    id: str
    type: str = Field(json_schema_extra={"enum": SESSION_EVENT_TYPES})
    processed_at: datetime | None
    seq: int = Field(ge=1, description="the event's position in the session's log: 1, 2, 3, …")


class ProbeOutcome(Described):
    """The last capability probe: ``{"ok": true}`` (with ``status`` and ``message`` when the
    provider accepted the key but was busy or picky: 429, 5xx, 400), or
    ``{"ok": null, "reason": "skipped"}`` when the request said ``probe: false``. A refused
    probe stores nothing, so ``ok`` is never false here."""

    ok: bool | None
    reason: str | None = None
    status: int | None = None
    message: str | None = None


class ModelCard(Described):
    type: Literal["model_card"]
    id: str
    model_id: str = Field(description="the handle an agent's `model` names; unique per tenant")
    provider: Literal["ant", "ant-compatible", "oai", "oai-compatible"]
    model: str = Field(description="the model name sent to the provider")
    base_url: str | None
    custom_headers: dict[str, str] = Field(description="header names; every value shows as `[redacted]`")
    api_key_preview: str = Field(description="the key's last 4 characters (the key itself is write-only)")
    probe: ProbeOutcome
    created_at: datetime
    updated_at: datetime


class Model(Described):
    """An agent or a model card as a model: the ``openai`` SDK reads ``object``, ``created``
    (unix seconds) and ``owned_by``; the ``anthropic`` SDK reads ``type``, ``created_at``,
    ``display_name`` and ``lifecycle``."""

    type: Literal["model"]
    object: Literal["model"]
    id: str = Field(description="an agent's id, or a model card's `model_id`")
    display_name: str = Field(description="the agent's name, or the card's `model_id`")
    created_at: datetime
    created: int = Field(description="`created_at` in seconds since the epoch")
    owned_by: str = Field(description="`agentry` for an agent, the card's provider for a model card")
    lifecycle: Literal["active"]


class ModelList(Described):
    object: Literal["list"]
    data: list[Model]
    has_more: bool
    first_id: str | None = Field(description="pass as `before_id` to get the page before this one")
    last_id: str | None = Field(description="pass as `after_id` to get the next page")


class EnvironmentKey(Described):
    type: Literal["environment_key"]
    id: str
    environment_id: str
    name: str | None
    key_preview: str = Field(description="the key's last 4 characters")
    created_at: datetime
    revoked_at: datetime | None = Field(description="set on revoked keys (listed with `include_archived`)")


class IssuedEnvironmentKey(EnvironmentKey):
    key: str = Field(description="the key itself: shown in this response only, never again")


WORK_STATES = Literal["queued", "starting", "active", "stopping", "stopped"]


class WorkData(Described):
    type: Literal["session"]
    id: str


class Work(Described):
    type: Literal["work"]
    id: str
    environment_id: str
    state: WORK_STATES
    data: WorkData
    metadata: dict[str, str]
    created_at: datetime
    acknowledged_at: datetime | None
    started_at: datetime | None
    latest_heartbeat_at: datetime | None
    stop_requested_at: datetime | None
    stopped_at: datetime | None
    secret: str | None = Field(description="set by a poll only: base64url JSON carrying the item's `sessions_token`")


class WorkPage(Described):
    data: list[Work]
    next_page: str | None


class WorkHeartbeat(Described):
    type: Literal["work_heartbeat"]
    last_heartbeat: str = Field(description="echo it as `expected_last_heartbeat` on the next beat")
    lease_extended: bool
    state: WORK_STATES
    ttl_seconds: int


class WorkQueueStats(Described):
    type: Literal["work_queue_stats"]
    depth: int = Field(description="queued items no poll has claimed")
    pending: int = Field(description="items claimed by a poll and not yet acknowledged")
    oldest_queued_at: datetime | None
    workers_polling: int | None = Field(description="workers that polled in the last 30 s (as this API process saw them)")


class Paged(Described):
    """The one envelope every list of resources answers with."""

    next_page: str | None = Field(description="pass as `page` to get the next page; null on the last")
    prev_page: str | None = Field(description="pass as `page` to go back a page; null on the first")


class AgentPage(Paged):
    data: list[Agent]


class EnvironmentPage(Paged):
    data: list[Environment]


class EnvironmentKeyPage(Paged):
    data: list[EnvironmentKey]


class SessionPage(Paged):
    data: list[Session]


class ModelCardPage(Paged):
    data: list[ModelCard]


class SessionResourcePage(Paged):
    data: list[FileResource | GitHubRepositoryResource | MemoryStoreResource]


class SessionEventPage(Described):
    data: list[SessionEvent]
    next_page: str | None


class SentEvents(Described):
    """The recorded events, with the ids and seqs the server gave them."""

    data: list[SessionEvent]


class EnvironmentDeleted(Described):
    id: str
    type: Literal["environment_deleted"]


class EnvironmentKeyDeleted(Described):
    id: str
    type: Literal["environment_key_deleted"]


class SessionDeleted(Described):
    id: str
    type: Literal["session_deleted"]


class SessionResourceDeleted(Described):
    id: str
    type: Literal["session_resource_deleted"]


class ModelCardDeleted(Described):
    id: str
    type: Literal["model_card_deleted"]


class Health(Described):
    status: Literal["ok"]


class ChatToolCall(Described):
    id: str = Field(description="the `agent.custom_tool_use` event's id; answer it with a `tool` message")
    type: Literal["function"]
    function: dict[str, Any] = Field(description="`name`, and `arguments` as a JSON string")


class ChatReplyMessage(Described):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[ChatToolCall] | None = None


class ChatChoice(Described):
    index: int
    message: ChatReplyMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"]
    logprobs: None


class ChatUsage(Described):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(Described):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str = Field(description="the `model` the request named")
    choices: list[ChatChoice]
    usage: ChatUsage

# -- vaults --------------------------------------------------------------------------------


class Vault(Described):
    type: Literal["vault"]
    id: str
    display_name: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class VaultCredential(Described):
    type: Literal["vault_credential"]
    id: str
    vault_id: str
    display_name: str | None
    metadata: dict[str, str]
    auth: dict[str, Any] = Field(
        description=(
            "`static_bearer` {type, mcp_server_url}; `mcp_oauth` {type, mcp_server_url, expires_at, "
            "refresh: {client_id, token_endpoint, token_endpoint_auth: {type}, resource, scope} | null}; "
            "`environment_variable` {type, secret_name, networking, injection_location}. Secrets are "
            "write-only and never appear."
        )
    )
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class VaultPage(Paged):
    data: list[Vault]


class VaultCredentialPage(Paged):
    data: list[VaultCredential]


class VaultDeleted(Described):
    id: str
    type: Literal["vault_deleted"]


class VaultCredentialDeleted(Described):
    id: str
    type: Literal["vault_credential_deleted"]


class ProbeHttpResponse(Described):
    status_code: int
    content_type: str
    body: str = Field(description="at most 2048 characters, secrets and token fields scrubbed")
    body_truncated: bool


class McpProbe(Described):
    method: str
    http_response: ProbeHttpResponse | None


class RefreshAttempt(Described):
    status: Literal["succeeded", "failed", "connect_error", "no_refresh_token"]
    http_response: ProbeHttpResponse | None


class CredentialValidation(Described):
    type: Literal["vault_credential_validation"]
    credential_id: str
    vault_id: str
    status: Literal["valid", "invalid", "unknown"]
    has_refresh_token: bool
    validated_at: datetime
    mcp_probe: McpProbe | None = Field(description="the failing step, or null")
    refresh: RefreshAttempt | None = Field(description="the refresh tried after a 401, or null")


# -- rate limits ---------------------------------------------------------------------------


class RateLimitGroup(Described):
    type: Literal["model_group", "batch", "token_count", "files", "skills", "web_search"]
    id: str
    display_name: str | None = None


class RateLimitValue(Described):
    type: str
    value: int


class OrganizationRateLimit(Described):
    id: str
    type: Literal["rate_limit"]
    group: RateLimitGroup
    limits: list[RateLimitValue]
    models: list[str] | None


class OrganizationRateLimitPage(Described):
    data: list[OrganizationRateLimit]
    next_page: str | None


class WorkspaceRateLimitValue(Described):
    type: str
    value: int
    org_limit: int | None
    source: dict[str, Any] = Field(description="`{type: workspace}` (its own) or `{type: organization}` (inherited)")


class WorkspaceRateLimit(Described):
    type: Literal["workspace_rate_limit"]
    rate_limit_id: str
    workspace_id: str
    group: RateLimitGroup
    limits: list[WorkspaceRateLimitValue]
    models: list[str] | None


class WorkspaceRateLimitPage(Described):
    data: list[WorkspaceRateLimit]
    next_page: str | None
# -- the organization: workspaces and API keys -----------------------------------------------


class IdPaged(Described):
    """A page as the anthropic SDK's ``SyncPage`` reads it."""

    has_more: bool
    first_id: str | None = Field(description="pass as `before_id` to get the page before this one")
    last_id: str | None = Field(description="pass as `after_id` to get the page after this one")


class Workspace(Described):
    type: Literal["workspace"]
    id: str = Field(description="`wrkspc_…`, or `default` for the organization's first workspace")
    name: str
    display_color: str
    tags: dict[str, str]
    created_at: datetime
    archived_at: datetime | None
    compartment_id: str
    data_residency: dict[str, Any] = Field(description="always the defaults: Agentry keeps no residency settings")
    external_key_id: None
    user_profile_id: None


class WorkspacePage(IdPaged):
    data: list[Workspace]


class ApiKeyScope(Described):
    type: Literal["workspace"]
    workspace_id: str


class ApiKey(Described):
    type: Literal["api_key"]
    id: str
    name: str
    created_at: datetime
    created_by: dict[str, str] | None = Field(description="`{id, type: user}` when a person created it")
    expires_at: None
    partial_key_hint: str
    principal: None
    scope: ApiKeyScope
    status: Literal["active", "inactive", "archived"]
    role: Literal["admin", "member"] = Field(description="Agentry's: the key's role in its workspace")


class ApiKeyPage(IdPaged):
    data: list[ApiKey]


class CreatedApiKey(ApiKey):
    key: str = Field(description="the key itself: shown in this response only, never again")
