"""Schemathesis drives every operation of /openapi.json against a live server (SQLite and
PostgreSQL): no 5xx, and every response conforms to the document — status code, content
type, headers and body schema.

Path ids are half generated (unknown ids: the 404 paths) and half real (a seeded agent,
environment, session and model card), and request bodies that name an agent or environment get the
seeded ones half of the time, so the fuzzing reaches the write paths, not only the 404s.
Destructive operations (archive, delete) run last so they do not hide the others. The
session stream gets a deleted session (whose stream ends once replayed) or an unknown
one, and the notification stream ``max_seconds=0`` (replay, then end), so every request finishes. Model-card bodies always say ``probe: false``: a probe would
call a provider on the internet. Failures are collected over all operations and reported
together."""

from __future__ import annotations

import os
import random
import time
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from application.rate_limit_config import WORKSPACE_ENTRY
from interfaces.bootstrap import sandbox_worker_key
from tests.support.fake_provider import FakeProvider, Reply, ToolUse
from tests.support.server import RunningServer

# Bounded so both backends take well under a minute each on 2 cores; raise for a deeper hunt:
# AGENTRY_FUZZ_EXAMPLES=300 ./scripts/test tests/e2e/test_schemathesis.py
EXAMPLES_PER_OPERATION = int(os.environ.get("AGENTRY_FUZZ_EXAMPLES", "20"))
# Only the operations whose path starts with this (AGENTRY_FUZZ_ONLY=/v1/files): a quick run.
ONLY = os.environ.get("AGENTRY_FUZZ_ONLY", "")
NEGATIVE_EXAMPLES_PER_OPERATION = max(1, EXAMPLES_PER_OPERATION // 3)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
STREAM = "/v1/sessions/{session_id}/events/stream"
NOTIFICATION_STREAM = "/v1/notifications/stream"
VERDICTS = ("approve", "reject")
WORK_LIST = "/v1/environments/{environment_id}/work"


def seed(http: httpx.Client) -> dict[str, str]:
    def created(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = http.post(path, json=body)
        assert response.status_code in (200, 202), response.text
        return response.json()

    agent = created("/v1/agents", {"name": "fuzzed", "model": "claude-opus-4-7"})
    # Self-hosted: its work items are claimed through its own queue (a cloud one is the sandboxes').
    environment = created("/v1/environments", {"name": "fuzzed", "config": {"type": "self_hosted"}})
    environment_key = created(f"/v1/environments/{environment['id']}/keys", {})
    work_id = _seed_work(http, created, environment["id"], environment_key["key"])
    session = created("/v1/sessions", {"agent": agent["id"], "environment_id": environment["id"]})
    created(
        f"/v1/sessions/{session['id']}/events",
        {"events": [{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]},
    )
    model_card = created("/v1/model_cards", {"model_id": "fuzzed", "provider": "ant", "api_key": "fuzzed-key", "probe": False})
    # Resources live in a session of their own, which no fuzzed delete of a session reaches.
    mounts = created("/v1/sessions", {"agent": agent["id"], "environment_id": environment["id"]})
    repository = created(
        f"/v1/sessions/{mounts['id']}/resources", {"type": "github_repository", "url": "https://github.com/a/b"}
    )
    vault = created("/v1/vaults", {"display_name": "fuzzed"})
    # Credentials live in a vault of their own, which no fuzzed delete of a vault reaches; its
    # server is a closed local port: a fuzzed validate probes nothing outside this machine.
    closed = {"type": "static_bearer", "mcp_server_url": "http://127.0.0.1:9/mcp", "token": "fuzzed-token"}
    keeper = created("/v1/vaults", {"display_name": "fuzzed credentials"})
    credential = created(f"/v1/vaults/{keeper['id']}/credentials", {"auth": closed})
    # People (invites accepted): one the user operations work on, one the workspace-member
    # operations work on (a fuzzed removal of the first leaves the second); a pending invite.
    person = _person(created, PERSON)
    member = _person(created, "member@example.com")
    pending = created("/v1/organizations/invites", {"email": "pending@example.com", "role": "user"})
    gone = created("/v1/sessions", {"agent": agent["id"], "environment_id": environment["id"]})
    assert http.delete(f"/v1/sessions/{gone['id']}").status_code == 200
    workspace = created("/v1/organizations/workspaces", {"name": "fuzzed"})
    api_key = created("/v1/organizations/api_keys", {"name": "fuzzed", "workspace_id": workspace["id"]})
    department = created("/v1/departments", {"name": "fuzzed"})
    board = created("/v1/boards", {"name": "fuzzed", "department_id": department["id"]})
    task = created("/v1/tasks", {"title": "fuzzed", "board_id": board["id"], "assigned_agent_id": agent["id"]})
    # Webhook endpoints at a closed local port: one the endpoint operations work on, one whose
    # delivery log the delivery operations read (a fuzzed update or delete of the first leaves it).
    hooks = {"enabled_events": ["agent.created"], "url": WEBHOOK_URL}
    webhook = created("/v1/organizations/webhooks", hooks)
    logged = created("/v1/organizations/webhooks", hooks)
    delivery_id = _seed_delivery(http, created, logged["id"])
    created("/v1/tasks", {"title": "fuzzed and done", "status": "done"})  # a notification to read
    notification = http.get("/v1/notifications").json()["data"][0]
    # Verdicts need a task in review, one for each (a verdict takes it out of review).
    in_review = {verdict: created("/v1/tasks", {"title": verdict, "status": "review"}) for verdict in VERDICTS}
    skill, versioned = _seed_skill(http, "fuzzed-skill"), _seed_skill(http, "fuzzed-versions", versions=4)
    knowledge_base = created("/v1/knowledge_bases", {"name": "fuzzed"})
    # The document's own base: a fuzzed delete of the other base (it runs first) leaves it.
    shelf = created("/v1/knowledge_bases", {"name": "fuzzed documents"})
    document = created(f"/v1/knowledge_bases/{shelf['id']}/documents", {"text": "fuzzed knowledge"})
    memory_ids = _seed_memory(created)
    uploaded = http.post("/v1/files", files={"file": ("fuzzed.txt", b"fuzzed", "text/plain")})
    assert uploaded.status_code == 200, uploaded.text
    return {
        **memory_ids,
        "skill_id": skill,
        "versioned_skill_id": versioned,
        "knowledge_base_id": knowledge_base["id"],
        "document_base_id": shelf["id"],
        "document_id": document["id"],
        "file_id": uploaded.json()["id"],
        **{f"{verdict}_task_id": task["id"] for verdict, task in in_review.items()},
        "notification_id": notification["id"],
        "department_id": department["id"],
        "board_id": board["id"],
        "task_id": task["id"],
        "workspace_id": workspace["id"],
        "api_key_id": api_key["id"],
        "agent_id": agent["id"],
        "environment_id": environment["id"],
        "session_id": session["id"],
        "model_card_id": model_card["id"],
        "model_id": model_card["model_id"],
        "deleted_session_id": gone["id"],
        "key_id": environment_key["id"],
        "work_id": work_id,
        "environment_key": environment_key["key"],
        "resource_session_id": mounts["id"],
        "resource_id": repository["id"],
        "vault_id": vault["id"],
        "credential_vault_id": keeper["id"],
        "credential_id": credential["id"],
        "user_id": person["id"],
        "member_user_id": member["id"],
        "invite_id": pending["id"],
        "webhook_endpoint_id": webhook["id"],
        "delivery_endpoint_id": logged["id"],
        "delivery_id": delivery_id,
    }


def _seed_skill(http: httpx.Client, name: str, versions: int = 1) -> str:
    """A skill (with ``versions`` versions: a skill keeps its last one, so fuzzed deletes of
    ``latest`` need several)."""
    skill_md = f"---\nname: {name}\ndescription: fuzzed\n---\n".encode()
    form = [("files[]", (f"{name}/SKILL.md", skill_md))]
    skill = http.post("/v1/skills", files=form)
    assert skill.status_code == 200, skill.text
    for _ in range(versions - 1):
        assert http.post(f"/v1/skills/{skill.json()['id']}/versions", files=form).status_code == 200
    return str(skill.json()["id"])
def _seed_memory(created: Any) -> dict[str, str]:
    """A memory store for the store operations, and one no fuzzed delete of a store reaches
    holding a memory whose first version is no longer current (one that can be redacted)."""
    store = created("/v1/memory_stores", {"name": "fuzzed"})
    keeper = created("/v1/memory_stores", {"name": "fuzzed memories"})
    memory = created(f"/v1/memory_stores/{keeper['id']}/memories", {"path": "/fuzzed.md", "content": "first"})
    created(f"/v1/memory_stores/{keeper['id']}/memories/{memory['id']}", {"content": "second"})
    return {
        "memory_store_id": store["id"],
        "memories_store_id": keeper["id"],
        "memory_id": memory["id"],
        "memory_version_id": memory["memory_version_id"],
    }


WEBHOOK_URL = "http://127.0.0.1:9/hooks"
WEBHOOKS = "/v1/organizations/webhooks"


def _seed_delivery(http: httpx.Client, created: Any, endpoint_id: str) -> str:
    """A delivery in the endpoint's log: the one of an agent made after it."""
    created("/v1/agents", {"name": "announced", "model": "claude-opus-4-7"})
    for _ in range(200):
        deliveries = http.get(f"{WEBHOOKS}/{endpoint_id}/deliveries").json()["data"]
        if deliveries:
            return str(deliveries[0]["id"])
        time.sleep(0.05)
    raise AssertionError("the seeded agent was never queued for the webhook endpoint")


PERSON = "fuzzed@example.com"
PERSON_PASSWORD = "fuzzed-password"
# Operations a person calls with a login token (an API key is no person: 403).
PERSON_PATHS = ("/v1/auth/me", "/v1/auth/password", "/v1/auth/totp", "/v1/auth/totp/confirm", "/v1/auth/totp/disable")
MEMBERS = "/v1/organizations/workspaces/{workspace_id}/members"
# A workspace the seeded member is not in yet, for the fuzzed adds.
FUZZ_WORKSPACE = "wrk_fuzzed"
# Operations no generated request can succeed at, each driven to success in tests/e2e/test_people.py:
# an invite's token and a current TOTP code are secrets the fuzzer cannot know; registration is
# closed by default.
NO_FUZZED_SUCCESS = frozenset(
    {"POST /v1/auth/invites/accept", "POST /v1/auth/register", "POST /v1/auth/totp/confirm", "POST /v1/auth/totp/disable"}
) | {
    # A skill upload's paths are its parts' filenames and SKILL.md needs front matter: the fuzzer
    # makes neither. Driven to success in tests/e2e/test_skills.py.
    "POST /v1/skills", "POST /v1/skills/import", "POST /v1/skills/{skill_id}/versions",
}


def _person(created: Any, email: str) -> dict[str, Any]:
    invite = created("/v1/organizations/invites", {"email": email, "role": "user"})
    return dict(created("/v1/auth/invites/accept", {"token": invite["token"], "password": PERSON_PASSWORD}))


def _seed_work(http: httpx.Client, created: Any, environment_id: str, key: str) -> str:
    """A work item, claimed and acknowledged: a session whose agent called ``bash`` (the
    fake provider was told to), polled by a worker holding the environment key."""
    agent = created("/v1/agents", {"name": "tools", "model": "claude-opus-4-7", "tools": [{"type": "agent_toolset_20260401"}]})
    session = created("/v1/sessions", {"agent": agent["id"], "environment_id": environment_id})
    created(f"/v1/sessions/{session['id']}/events", {"events": [{"type": "user.message", "content": [{"type": "text", "text": "run"}]}]})
    worker = {"authorization": f"Bearer {key}"}
    for _ in range(100):
        work = http.get(f"/v1/environments/{environment_id}/work/poll", params={"block_ms": 200}, headers=worker).json()
        if work is not None:
            assert http.post(f"/v1/environments/{environment_id}/work/{work['id']}/ack", headers=worker).status_code == 200
            return str(work["id"])
    raise AssertionError("no work item was queued for the seeded tool call")


def _destructive_last(operation: Any) -> tuple[int, str]:
    """Archives after everything else, deletes after archives (a deleted session is a 404)."""
    rank = 2 if operation.method.upper() == "DELETE" else 1 if operation.path.endswith("/archive") else 0
    return (rank, operation.label)


def _real_path_parameters(operation: Any, ids: dict[str, str]) -> dict[str, str]:
    if operation.path == STREAM:
        return {"session_id": ids["deleted_session_id"]}
    if operation.path == "/docs/assets/{name}":
        return {"name": "swagger-ui.css"}
    if operation.path == "/console/assets/{path}":
        return {"path": "core.js"}
    verdict = operation.path.rsplit("/", 1)[-1]
    if operation.path.startswith("/v1/tasks/") and verdict in VERDICTS:
        return {"task_id": ids[f"{verdict}_task_id"]}
    if operation.path.startswith("/v1/sessions/{session_id}/resources"):
        real = {"session_id": ids["resource_session_id"], "resource_id": ids["resource_id"]}
        return {name: value for name, value in real.items() if "{" + name + "}" in operation.path}
    if operation.path.startswith("/v1/vaults/{vault_id}/credentials"):
        real = {"vault_id": ids["credential_vault_id"], "credential_id": ids["credential_id"]}
        return {name: value for name, value in real.items() if "{" + name + "}" in operation.path}
    if operation.path.startswith("/v1/organizations/workspaces/{workspace_id}/rate_limits"):
        real = {"workspace_id": "default", "rate_limit_id": WORKSPACE_ENTRY}
        return {name: value for name, value in real.items() if "{" + name + "}" in operation.path}
    if operation.path.startswith(f"{WEBHOOKS}/{{webhook_endpoint_id}}/deliveries"):
        real = {"webhook_endpoint_id": ids["delivery_endpoint_id"], "delivery_id": ids["delivery_id"]}
        return {name: value for name, value in real.items() if "{" + name + "}" in operation.path}
    if operation.path.startswith("/v1/skills/{skill_id}/versions"):
        real = {"skill_id": ids["versioned_skill_id"], "version": "latest"}
        return {name: value for name, value in real.items() if "{" + name + "}" in operation.path}
    if operation.path.startswith("/v1/memory_stores/{memory_store_id}/memor"):
        real = {"memory_store_id": ids["memories_store_id"], "memory_id": ids["memory_id"], "memory_version_id": ids["memory_version_id"]}
        return {name: value for name, value in real.items() if "{" + name + "}" in operation.path}
    if operation.path.startswith(MEMBERS):
        workspace = FUZZ_WORKSPACE if operation.path == MEMBERS and operation.method.upper() == "POST" else "default"
        real = {"workspace_id": workspace, "user_id": ids["member_user_id"]}
        return {name: value for name, value in real.items() if "{" + name + "}" in operation.path}
    if "{document_id}" in operation.path:
        return {"knowledge_base_id": ids["document_base_id"], "document_id": ids["document_id"]}
    names = (
        "agent_id", "environment_id", "session_id", "model_card_id", "model_id", "key_id", "work_id", "vault_id",
        "user_id", "invite_id", "workspace_id", "api_key_id", "task_id", "board_id", "department_id", "webhook_endpoint_id", "notification_id",
        "skill_id",
        "knowledge_base_id",
        "memory_store_id",
        "file_id",
    )  # fmt: skip
    return {name: ids[name] for name in names if "{" + name + "}" in operation.path}


def _with_real_references(ids: dict[str, str], draw_real: bool) -> Any:
    def patch(case: Any) -> Any:
        if case.path == NOTIFICATION_STREAM:
            # It follows until told to stop: fuzzed ones send what is there and end.
            case.query = {**(case.query or {}), "max_seconds": 0}
        if case.path.startswith("/v1/model_cards") and isinstance(case.body, dict):
            # A probe would call a real provider on the internet (or a fuzzed URL): never here.
            case.body["probe"] = False
        if draw_real and case.path == "/v1/chat/completions" and isinstance(case.body, dict):
            # A real agent answering a conversation that ends with the user, in a new session.
            case.body["model"] = ids["agent_id"]
            if isinstance(case.body.get("messages"), list):
                case.body["messages"].append({"role": "user", "content": "hi"})
            for name in ("Agentry-Session-Id", "Agentry-Environment-Id"):
                (case.headers or {}).pop(name, None)
            (case.query or {}).pop("app_id", None)
        if "/rate_limits/" in case.path and isinstance(case.body, dict) and isinstance(case.body.get("limits"), list):
            # The fuzzer's own workspace: a small limit would refuse the rest of the run.
            for limit in case.body["limits"]:
                if isinstance(limit, dict) and "value" in limit:
                    limit["value"] = None  # ("0", 0.0 and 0 all read as a closed workspace)
                if draw_real and isinstance(limit, dict):
                    limit["type"] = "requests_per_minute"  # the one limiter Agentry meters
        if draw_real and isinstance(case.body, dict) and case.path == "/v1/auth/login":
            case.body.update(email=PERSON, password=PERSON_PASSWORD)
            case.body.pop("username", None)
            case.body.pop("totp_code", None)
        if draw_real and isinstance(case.body, dict) and case.path == "/v1/auth/password":
            case.body.update(current_password=PERSON_PASSWORD, new_password=PERSON_PASSWORD)
        if draw_real and isinstance(case.body, dict) and case.path.startswith(WEBHOOKS) and "url" in case.body:
            # Deliveries go nowhere but a closed local port (a generated URL could name any host).
            case.body["url"] = WEBHOOK_URL
        if draw_real and isinstance(case.body, dict) and case.path == MEMBERS:
            case.body["user_id"] = ids["member_user_id"]
        if draw_real and isinstance(case.body, dict):
            if "agent" in case.body:
                case.body["agent"] = ids["agent_id"]
            if "environment_id" in case.body:
                case.body["environment_id"] = ids["environment_id"]
            # A task's references: the seeded board, agent and department (no parent: a
            # fuzzed task made a sub-task of itself is a 400 every time).
            for name, real in (("board_id", "board_id"), ("assigned_agent_id", "agent_id"), ("department_id", "department_id")):
                if name in case.body:
                    case.body[name] = ids[real]
            if "parent_task_id" in case.body:
                case.body["parent_task_id"] = None
        return case

    return patch


def _strategy(operation: Any, ids: dict[str, str], mode: GenerationMode) -> Any:
    real = _real_path_parameters(operation, ids)
    branches = []
    for draw_real in (False, True):
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=real if draw_real else None)
        if operation.path == STREAM and not draw_real:
            # An unknown session's stream is a 404; a generated id never names a live one.
            strategy = operation.as_strategy(
                generation_mode=mode, path_parameters={"session_id": "sesn_" + "x" * 24}
            )
        branches.append(strategy.map(_with_real_references(ids, draw_real)))
    return st.one_of(branches)


def _fuzz(
    operation: Any, server: RunningServer, ids: dict[str, str], mode: GenerationMode, examples: int, statuses: set[int]
) -> list[str]:
    failures: list[str] = []
    fixed = {"x-api-key": server.api_key}
    if operation.path == WORK_LIST:
        fixed = {"authorization": f"Bearer {ids['environment_key']}"}  # it refuses API keys
    if operation.path == "/v1/work/poll":
        fixed = {"authorization": f"Bearer {ids['sandbox_worker_key']}"}  # Agentry's own workers only

    @given(case=_strategy(operation, ids, mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        if operation.path in PERSON_PATHS:
            # A fresh login each time: a fuzzed password change ends the tokens before it.
            login = httpx.post(f"{server.base_url}/v1/auth/login", json={"email": PERSON, "password": PERSON_PASSWORD})
            headers = {"authorization": f"Bearer {login.json()['access_token']}"}
        else:
            headers = fixed
        response = case.call(base_url=server.base_url, headers=headers, timeout=30)
        statuses.add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as failure:
            request = response.request
            failures.append(
                f"{mode.value} {request.method} {request.url} body={str(request.body)[:300]!s}\n"
                f"  -> {response.status_code} {response.text[:300]}\n  {str(failure)[:600]}"
            )

    try:
        run()
    except Unsatisfiable:
        # Nothing to make invalid (no parameters, no body): no negative cases exist.
        assert mode is GenerationMode.NEGATIVE, operation.label
    return failures


# The fuzzer sends thousands of requests a minute with one key: past the default limits. Its
# run lasts minutes: the seeded work item's lease and its tool call must outlive it (else the
# watch ends the call and ack/stop can only be 409s).
@pytest.mark.server_settings(
    rate_limit_caller_rpm=0,
    rate_limit_workspace_rpm=0,
    rate_limit_login_rpm=0,
    work_lease_seconds=3600.0,
    worker_timeout_seconds=3600.0,
)
def test_every_operation_conforms_to_the_document(server: RunningServer, fake_provider: FakeProvider) -> None:
    random.seed(0)
    fake_provider.script(Reply([ToolUse("bash", {"command": "true"})]))
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=20) as http:
        server.platform.services.workspaces.create_named(FUZZ_WORKSPACE, "fuzzed")
        ids = seed(http)
        ids["sandbox_worker_key"] = sandbox_worker_key(server.settings) or ""
        document = http.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_destructive_last)  # type: ignore[union-attr]
    assert len(operations) == sum(len(ops) for ops in document["paths"].values())
    # AGENTRY_FUZZ_ONLY=/v1/knowledge_bases: only the operations whose path starts so.
    operations = [operation for operation in operations if operation.path.startswith(os.environ.get("AGENTRY_FUZZ_ONLY", ""))]
    operations = [operation for operation in operations if operation.path.startswith(ONLY)]
    failures: list[str] = []
    never_succeeded = []
    for operation in operations:
        statuses: set[int] = set()
        failures += _fuzz(operation, server, ids, GenerationMode.POSITIVE, EXAMPLES_PER_OPERATION, statuses)
        # Not vacuous: every operation was also driven to a success, not only to 4xx.
        if not any(200 <= status < 300 for status in statuses) and operation.label not in NO_FUZZED_SUCCESS:
            never_succeeded.append(f"{operation.label}: {sorted(statuses)}")
        failures += _fuzz(operation, server, ids, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES_PER_OPERATION, set())
    assert not failures, f"{len(failures)} non-conforming responses:\n\n" + "\n\n".join(failures[:40])
    assert not never_succeeded, "operations the fuzzing never got a 2xx from:\n" + "\n".join(never_succeeded)
