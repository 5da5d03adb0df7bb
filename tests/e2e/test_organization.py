"""The organization surface on a real server (SQLite and PostgreSQL): workspaces and API keys
through the anthropic SDK, the ``anthropic-workspace-id`` header, roles, and the tenancy
matrix — for every resource the app serves and every verb on it, another workspace's key
gets a 404, and its lists never show the other workspace's objects."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import pytest

from tests.support.server import RunningServer

MCP_URL = "https://mcp.example.test/mcp"


def _post(http: httpx.Client, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = http.post(path, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _client(server: RunningServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"x-api-key": key}, timeout=20)


@dataclass
class Workspace:
    id: str
    admin_key: str
    http: httpx.Client
    ids: dict[str, str] = field(default_factory=dict)


def _workspace(server: RunningServer, admin: httpx.Client, name: str) -> Workspace:
    workspace = _post(admin, "/v1/organizations/workspaces", {"name": name})
    key = _post(admin, "/v1/organizations/api_keys", {"name": f"{name} admin", "workspace_id": workspace["id"], "role": "admin"})
    return Workspace(workspace["id"], key["key"], _client(server, key["key"]), {"workspace": workspace["id"], "api_key": key["id"]})


def _populate(workspace: Workspace) -> None:
    """One object of every kind the app serves, made with the workspace's own key."""
    http, ids = workspace.http, workspace.ids
    ids["agent"] = _post(http, "/v1/agents", {"name": "a", "model": "m"})["id"]
    ids["environment"] = _post(http, "/v1/environments", {"name": "e"})["id"]
    ids["session"] = _post(http, "/v1/sessions", {"agent": ids["agent"], "environment_id": ids["environment"]})["id"]
    ids["resource"] = _post(http, f"/v1/sessions/{ids['session']}/resources", {"type": "github_repository", "url": "https://github.com/acme/tools.git"})["id"]
    ids["vault"] = _post(http, "/v1/vaults", {"display_name": "v"})["id"]
    credential = {"auth": {"type": "static_bearer", "mcp_server_url": MCP_URL, "token": "bearer-token-0001"}}
    ids["credential"] = _post(http, f"/v1/vaults/{ids['vault']}/credentials", credential)["id"]
    card = {"model_id": f"card-{workspace.id[-6:]}", "provider": "ant", "api_key": "provider-key-0001", "probe": False}
    made = _post(http, "/v1/model_cards", card)
    ids["model_card"], ids["model"] = made["id"], made["model_id"]
    ids["environment_key"] = _post(http, f"/v1/environments/{ids['environment']}/keys", {"name": "k"})["id"]
    ids["department"] = _post(http, "/v1/departments", {"name": "d"})["id"]
    ids["board"] = _post(http, "/v1/boards", {"name": "b", "department_id": ids["department"]})["id"]
    ids["task"] = _post(http, "/v1/tasks", {"title": "t", "board_id": ids["board"], "assigned_agent_id": ids["agent"]})["id"]
    _post(http, "/v1/tasks", {"title": "finished", "status": "done"})  # a task done notifies the workspace
    ids["notification"] = http.get("/v1/notifications").json()["data"][0]["id"]


@dataclass(frozen=True)
class Row:
    """A resource: its item path (``{kind}`` placeholders filled from the owner's ids), the
    verbs on it, the list it appears in (None: listed only under a parent checked above)."""

    name: str
    item: str
    verbs: tuple[tuple[str, str, dict[str, Any] | None], ...]
    listed: str | None = None
    id_key: str = ""


GET = ("get", "", None)
ARCHIVE = ("post", "/archive", {})
DELETE = ("delete", "", None)


def update(body: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    return ("post", "", body)


MATRIX = (
    Row("agent", "/v1/agents/{agent}", (GET, update({"version": 1, "name": "x"}), ARCHIVE, ("get", "/versions", None)), "/v1/agents"),
    Row("environment", "/v1/environments/{environment}", (GET, update({"name": "x"}), ARCHIVE, DELETE), "/v1/environments"),
    Row(
        "environment key", "/v1/environments/{environment}/keys/{environment_key}", (DELETE,),
    ),
    Row(
        "environment keys and work", "/v1/environments/{environment}",
        (("get", "/keys", None), ("post", "/keys", {"name": "k"}), ("get", "/work/stats", None)),
    ),
    Row("session", "/v1/sessions/{session}", (GET, update({"title": "x"}), ARCHIVE, DELETE), "/v1/sessions"),
    Row(
        "session events", "/v1/sessions/{session}/events",
        (GET, ("post", "", {"events": [{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]}), ("get", "/stream", None)),
    ),
    Row("session resource", "/v1/sessions/{session}/resources/{resource}", (GET, DELETE)),
    Row("session resources", "/v1/sessions/{session}/resources", (GET, ("post", "", {"type": "github_repository", "url": "https://github.com/acme/tools.git"}))),
    Row("vault", "/v1/vaults/{vault}", (GET, update({"display_name": "x"}), ARCHIVE, DELETE), "/v1/vaults"),
    Row(
        "credential", "/v1/vaults/{vault}/credentials/{credential}",
        (GET, update({"display_name": "x"}), ARCHIVE, DELETE, ("post", "/mcp_oauth_validate", {})),
    ),
    Row("credentials", "/v1/vaults/{vault}/credentials", (GET,)),
    Row("model card", "/v1/model_cards/{model_card}", (GET, update({"model": "y", "probe": False}), DELETE), "/v1/model_cards"),
    Row("model", "/v1/models/{model}", (GET,), "/v1/models", id_key="model"),
    Row("workspace", "/v1/organizations/workspaces/{workspace}", (GET, update({"name": "x"}), ARCHIVE), "/v1/organizations/workspaces"),
    Row(
        "workspace members", "/v1/organizations/workspaces/{workspace}/members",
        (GET, ("post", "", {"user_id": "user_01WxYzAbCdEfGhJkMnPqRsTu", "workspace_role": "workspace_user"})),
    ),
    Row(
        "workspace rate limits", "/v1/organizations/workspaces/{workspace}/rate_limits",
        (GET, ("post", "/rl_agentry_workspace_requests", {"limits": [{"type": "requests_per_minute", "value": 5}]})),
    ),
    Row("task", "/v1/tasks/{task}", (GET, update({"title": "x"}), ("patch", "", {"title": "y"}), ARCHIVE, DELETE), "/v1/tasks"),
    Row(
        "task actions", "/v1/tasks/{task}",
        (("get", "/comments", None), ("post", "/comments", {"content": "x"}), ("post", "/execute", {}),
         ("post", "/approve", {}), ("post", "/reject", {"comment": "x"})),
    ),  # fmt: skip
    Row("board", "/v1/boards/{board}", (GET, update({"name": "x"}), ARCHIVE), "/v1/boards"),
    Row("department", "/v1/departments/{department}", (GET, update({"name": "x"}), ARCHIVE), "/v1/departments"),
    Row("notification", "/v1/notifications/{notification}", (GET, ("post", "/read", {}), ("patch", "/read", None)), "/v1/notifications"),
    Row("api key", "/v1/organizations/api_keys/{api_key}", (GET, update({"name": "x"}), update({"status": "inactive"})), "/v1/organizations/api_keys"),
)


@pytest.fixture
def two_workspaces(server: RunningServer) -> Iterator[tuple[Workspace, Workspace]]:
    with _client(server, server.api_key) as admin:
        a, b = _workspace(server, admin, "A"), _workspace(server, admin, "B")
    _populate(a)
    _populate(b)
    yield a, b
    a.http.close()
    b.http.close()


@pytest.mark.parametrize("row", MATRIX, ids=[row.name for row in MATRIX])
def test_another_workspaces_key_gets_a_404_for_every_verb(two_workspaces: tuple[Workspace, Workspace], row: Row) -> None:
    a, b = two_workspaces
    path = row.item.format(**a.ids)
    for method, suffix, body in row.verbs:
        foreign = b.http.request(method.upper(), path + suffix, json=body)
        assert foreign.status_code == 404, f"{method} {row.item}{suffix}: {foreign.status_code} {foreign.text[:200]}"
        assert foreign.json()["error"]["type"] == "not_found_error"
    # The owner does see it (so the 404 above is about the workspace, not the request).
    if GET in row.verbs:
        assert a.http.get(path).status_code == 200, row.name


@pytest.mark.parametrize("row", [row for row in MATRIX if row.listed], ids=[row.name for row in MATRIX if row.listed])
def test_lists_never_show_another_workspaces_objects(two_workspaces: tuple[Workspace, Workspace], row: Row) -> None:
    a, b = two_workspaces
    id_key = row.id_key or row.item.rsplit("{", 1)[1].rstrip("}")
    assert row.listed is not None
    listed = b.http.get(row.listed, params={"include_archived": "true", "limit": 1000})
    assert listed.status_code == 200, listed.text
    ids = {item["id"] for item in listed.json()["data"]}
    assert a.ids[id_key] not in ids, row.name
    own = {item["id"] for item in a.http.get(row.listed, params={"include_archived": "true", "limit": 1000}).json()["data"]}
    assert a.ids[id_key] in own, f"{row.name}: the owner's list misses it"


def test_a_key_cannot_select_another_workspace_by_header(two_workspaces: tuple[Workspace, Workspace], server: RunningServer) -> None:
    a, b = two_workspaces
    selected = b.http.get("/v1/agents", headers={"anthropic-workspace-id": a.id})
    assert selected.status_code == 404 and selected.json()["error"]["type"] == "not_found_error"
    assert b.http.get("/v1/agents", headers={"anthropic-workspace-id": b.id}).status_code == 200
    with _client(server, server.api_key) as admin:
        # The organization admin selects either; an unknown workspace is the same 404.
        in_a = admin.get("/v1/agents", headers={"anthropic-workspace-id": a.id}).json()["data"]
        assert [agent["id"] for agent in in_a] == [a.ids["agent"]]
        assert admin.get("/v1/agents").json()["data"] == [], "without the header: the default workspace"
        assert admin.get("/v1/agents", headers={"anthropic-workspace-id": "wrkspc_nosuchone1"}).status_code == 404


def test_workspaces_and_api_keys_through_the_sdk(server: RunningServer, client: anthropic.Anthropic) -> None:
    organization = client.beta.organization
    workspace = organization.workspaces.create(name="Research", tags={"team": "r"})
    assert workspace.id.startswith("wrkspc_") and workspace.name == "Research" and workspace.archived_at is None
    assert organization.workspaces.retrieve(workspace.id) == workspace
    renamed = organization.workspaces.update(workspace.id, name="Research 2", tags={"team": None, "tier": "1"})
    assert renamed.name == "Research 2" and renamed.tags == {"tier": "1"}
    listed = organization.workspaces.list(include_default=True)
    assert [w.id for w in listed.data] == ["default", workspace.id]

    with _client(server, server.api_key) as admin:
        created = _post(admin, "/v1/organizations/api_keys", {"name": "ci", "workspace_id": workspace.id})
    assert created["key"].startswith("agentry-") and created["role"] == "member"
    key = organization.api_keys.retrieve(created["id"])
    assert key.scope.type == "workspace" and key.scope.workspace_id == workspace.id  # type: ignore[union-attr]
    assert key.status == "active" and key.partial_key_hint == "agentry-..." + created["key"][-4:]
    assert not hasattr(key, "key") or getattr(key, "key", None) is None
    in_workspace = organization.api_keys.list(workspace_id=workspace.id)
    assert [k.id for k in in_workspace.data] == [created["id"]]
    member = anthropic.Anthropic(base_url=server.base_url, api_key=created["key"], max_retries=0, timeout=20)
    assert member.beta.agents.list().data == []
    assert organization.api_keys.update(created["id"], status="inactive").status == "inactive"
    with pytest.raises(anthropic.AuthenticationError):
        member.beta.agents.list()
    assert organization.api_keys.update(created["id"], status="active", name="ci-2").name == "ci-2"
    assert member.beta.agents.list().data == []

    archived = organization.workspaces.archive(workspace.id)
    assert archived.archived_at is not None
    with pytest.raises(anthropic.AuthenticationError):
        member.beta.agents.list()  # an archived workspace's keys stop working
    assert workspace.id not in [w.id for w in organization.workspaces.list().data]
    assert workspace.id in [w.id for w in organization.workspaces.list(include_archived=True).data]


def test_a_member_may_read_but_not_change_and_a_workspace_admin_not_the_organization(server: RunningServer) -> None:
    with _client(server, server.api_key) as admin:
        workspace = _post(admin, "/v1/organizations/workspaces", {"name": "W"})["id"]
        member_key = _post(admin, "/v1/organizations/api_keys", {"name": "m", "workspace_id": workspace})
        admin_key = _post(admin, "/v1/organizations/api_keys", {"name": "a", "workspace_id": workspace, "role": "admin"})
    refused: list[Callable[[httpx.Client], httpx.Response]] = [
        lambda http: http.post(f"/v1/organizations/workspaces/{workspace}", json={"name": "no"}),
        lambda http: http.post("/v1/organizations/api_keys", json={"name": "no"}),
        lambda http: http.post(f"/v1/organizations/api_keys/{admin_key['id']}", json={"status": "archived"}),
    ]
    with _client(server, member_key["key"]) as member:
        assert member.get(f"/v1/organizations/workspaces/{workspace}").status_code == 200
        assert member.get(f"/v1/organizations/api_keys/{admin_key['id']}").status_code == 200
        for attempt in refused:
            response = attempt(member)
            assert response.status_code == 403 and response.json()["error"]["type"] == "permission_error"
    with _client(server, admin_key["key"]) as workspace_admin:
        assert workspace_admin.post(f"/v1/organizations/workspaces/{workspace}", json={"name": "ok"}).status_code == 200
        made = workspace_admin.post("/v1/organizations/api_keys", json={"name": "more", "role": "admin"})
        assert made.status_code == 200 and made.json()["scope"]["workspace_id"] == workspace
        promoted = workspace_admin.post(f"/v1/organizations/api_keys/{member_key['id']}", json={"role": "admin"})
        assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
        for organization_change in (
            lambda http: http.post("/v1/organizations/workspaces", json={"name": "no"}),
            lambda http: http.post(f"/v1/organizations/workspaces/{workspace}/archive"),
        ):
            assert organization_change(workspace_admin).status_code == 403
        # Another workspace's keys are not even visible.
        assert workspace_admin.post("/v1/organizations/api_keys", json={"name": "x", "workspace_id": "default"}).status_code == 404


def test_a_created_keys_plaintext_appears_only_in_the_create_response(
    server: RunningServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    from application.api_keys import keyed_hash
    from tests.e2e.test_model_cards import _stored_bytes

    caplog.set_level("DEBUG")
    bodies: list[str] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        bodies.append(response.text)

    hooks = {"response": [keep]}
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=20, event_hooks=hooks) as admin:
        created = _post(admin, "/v1/organizations/api_keys", {"name": "secret-test", "role": "admin"})
        plaintext = created["key"]
        later = bodies[1:]
        admin.get(f"/v1/organizations/api_keys/{created['id']}")
        admin.get("/v1/organizations/api_keys", params={"limit": 1000})
        admin.post(f"/v1/organizations/api_keys/{created['id']}", json={"name": "renamed", "role": "member"})
        with httpx.Client(base_url=server.base_url, headers={"x-api-key": plaintext}, timeout=20, event_hooks=hooks) as own:
            assert own.get("/v1/agents").status_code == 200
            own.get("/v1/organizations/api_keys")
            assert own.post("/v1/agents", json={"name": "n", "model": "m"}).status_code == 200
        admin.post(f"/v1/organizations/api_keys/{created['id']}", json={"status": "archived"})
        admin.get("/openapi.json")
        later = bodies[1:]
    assert plaintext in bodies[0], "shown once, at create"
    stored = _stored_bytes(server)
    logs = caplog.text + "".join(capfd.readouterr())
    assert created["id"].encode() in stored, "the search looks where the key's record is"
    assert not any(plaintext in body for body in later), "the key in a later response"
    assert (plaintext.encode() in stored) is False, "the key stored in clear"
    assert (plaintext in logs) is False, "the key in the logs"
    # The hash is the event store's alone: no read model row holds it.
    digest = keyed_hash(server.settings.api_key_secret)(plaintext) if server.settings.api_key_secret else None
    rows = server.platform.services.read_models.api_keys(None, 1000)["data"]
    assert created["id"] in {row["id"] for row in rows}
    if digest is not None:
        assert not any(digest in str(row) for row in rows)


def test_the_default_workspace_leading_a_page_pushes_a_row_to_the_next(http: httpx.Client) -> None:
    created = http.post("/v1/organizations/workspaces", json={"name": "only"}).json()
    first = http.get("/v1/organizations/workspaces", params={"include_default": "true", "limit": 1}).json()
    assert [w["id"] for w in first["data"]] == ["default"] and first["has_more"] is True
    rest = http.get("/v1/organizations/workspaces", params={"limit": 1}).json()
    assert [w["id"] for w in rest["data"]] == [created["id"]]


def test_a_task_cannot_name_another_workspaces_board_agent_or_parent(two_workspaces: tuple[Workspace, Workspace]) -> None:
    a, b = two_workspaces
    for name, kind in (("board_id", "board"), ("assigned_agent_id", "agent"), ("parent_task_id", "task")):
        made = b.http.post("/v1/tasks", json={"title": "t", name: a.ids[kind]})
        assert made.status_code == 404, (name, made.text)
        moved = b.http.post(f"/v1/tasks/{b.ids['task']}", json={name: a.ids[kind]})
        assert moved.status_code == 404, (name, moved.text)
    assert b.http.post("/v1/boards", json={"name": "b", "department_id": a.ids["department"]}).status_code == 404


def test_an_organization_admin_key_cannot_retire_itself_another_admin_can(server: RunningServer, http: httpx.Client) -> None:
    own = next(key for key in http.get("/v1/organizations/api_keys").json()["data"] if key["name"] == "bootstrap")
    for status in ("inactive", "archived"):
        refused = http.post(f"/v1/organizations/api_keys/{own['id']}", json={"status": status})
        assert refused.status_code == 409 and refused.headers["x-should-retry"] == "false", refused.text
    assert http.get("/v1/agents").status_code == 200, "still active"
    assert http.post(f"/v1/organizations/api_keys/{own['id']}", json={"name": "renamed"}).status_code == 200
    # A person who is an organization admin may retire it: they stay an admin.
    server.platform.services.people.create_user("root@example.com", "correct horse battery 1", role="admin")
    person = httpx.Client(base_url=server.base_url, timeout=20)
    token = person.post("/v1/auth/login", json={"email": "root@example.com", "password": "correct horse battery 1"})
    bearer = {"authorization": f"Bearer {token.json()['access_token']}"}
    retired = person.post(f"/v1/organizations/api_keys/{own['id']}", json={"status": "inactive"}, headers=bearer)
    assert retired.status_code == 200 and retired.json()["status"] == "inactive"
    assert http.get("/v1/agents").status_code == 401
    assert person.get("/v1/organizations/users", headers=bearer).status_code == 200
    person.close()
