"""The activity feed on a real server (SQLite and PostgreSQL): one entry per stored event,
named after its aggregate; Mission Control's filters, cursor pages newest first; another
workspace's key never sees an entry; the organization's own entries (people) only for its
admins; no secret in any row; and a rebuild — in process and through the CLI — gives exactly
the rows the live projection wrote."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from projections.activity import activity, activity_streams
from tests.support.server import RunningServer, run_cli

PASSWORD = "correct horse battery 1"
CREDENTIAL_TOKEN = "bearer-token-that-must-stay-secret-0001"


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 202), response.text
    return response.json()


def _entries(http: httpx.Client, path: str = "/v1/activity", **params: Any) -> list[dict[str, Any]]:
    """Every page, followed by ``next_page``."""
    found: list[dict[str, Any]] = []
    page = None
    while True:
        body = _ok(http.get(path, params={**params, **({"page": page} if page else {})}))
        found += body["data"]
        page = body["next_page"]
        if page is None:
            return found


def _caught_up(server: RunningServer) -> None:
    assert server.platform.projections.wait_for(server.platform.store.max_notification_id(), 10)


def _settled(server: RunningServer) -> int:
    """Caught up, and nothing more recorded for a moment (a turn's last writes can follow its
    idle event): the log's head then."""
    deadline = time.monotonic() + 20
    head = server.platform.store.max_notification_id()
    while True:
        _caught_up(server)
        time.sleep(0.3)
        now = server.platform.store.max_notification_id()
        if now == head:
            return head
        assert time.monotonic() < deadline, "the log never stopped growing"
        head = now


def _rows(server: RunningServer) -> tuple[list[Any], list[Any]]:
    with server.platform.projections.engine.connect() as conn:
        rows = conn.execute(sa.select(activity).order_by(activity.c.stream_id, activity.c.version)).all()
        streams = conn.execute(sa.select(activity_streams).order_by(activity_streams.c.stream_id)).all()
    return [tuple(row) for row in rows], [tuple(row) for row in streams]


def _wait_for_entry(http: httpx.Client, **params: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        data = _ok(http.get("/v1/activity", params=params))["data"]
        if data:
            return data[0]
        assert time.monotonic() < deadline, f"no activity entry {params}"
        time.sleep(0.05)


def _by_action(entries: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [entry for entry in entries if entry["action"] == action]


def _workload(http: httpx.Client) -> dict[str, str]:
    """An agent (updated, archived), an environment, a session with one turn, a vault with a
    credential, an API key: the ids made."""
    agent = _ok(http.post("/v1/agents", json={"name": "Researcher", "model": "claude-sonnet-4-6"}))["id"]
    _ok(http.post(f"/v1/agents/{agent}", json={"version": 1, "name": "Researcher 2"}))
    environment = _ok(http.post("/v1/environments", json={"name": "env"}))["id"]
    session = _ok(http.post("/v1/sessions", json={"agent": agent, "environment_id": environment}))["id"]
    message = {"type": "user.message", "content": [{"type": "text", "text": "a private question"}]}
    _ok(http.post(f"/v1/sessions/{session}/events", json={"events": [message]}))
    _wait_for_entry(http, entity_id=session, action="session.status_idle")
    vault = _ok(http.post("/v1/vaults", json={"display_name": "Keys"}))["id"]
    credential = {"auth": {"type": "static_bearer", "mcp_server_url": "https://mcp.example.test/mcp", "token": CREDENTIAL_TOKEN}}
    _ok(http.post(f"/v1/vaults/{vault}/credentials", json=credential))
    key = _ok(http.post("/v1/organizations/api_keys", json={"name": "ci", "role": "member"}))
    _ok(http.post(f"/v1/agents/{agent}/archive"))
    return {"agent": agent, "environment": environment, "session": session, "vault": vault, "key_id": key["id"], "key": key["key"]}


def test_every_stored_event_is_one_entry_named_for_its_aggregate_and_a_rebuild_gives_the_same_rows(
    server: RunningServer, http: httpx.Client
) -> None:
    made = _workload(http)
    _caught_up(server)

    # One row per stored event, whatever its aggregate or workspace.
    stored = server.platform.store.notifications(0, 100_000)
    rows, streams = _rows(server)
    assert sorted((str(n.originator_id), n.originator_version) for n in stored) == [(row[0], row[1]) for row in rows]

    entries = _entries(http, limit=7)
    assert len(entries) == len(rows), "every entry of the workspace (all of them here) is listed"
    stamps = [entry["created_at"] for entry in entries]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    assert len({entry["id"] for entry in entries}) == len(entries)
    agent, session = made["agent"], made["session"]
    about_agent = [entry["action"] for entry in entries if entry["entity_id"] == agent]
    assert about_agent == ["agent.archived", "agent.updated", "agent.created"]
    created = _by_action(entries, "agent.created")[0]
    assert created["entity_type"] == "agent" and created["agent_id"] == agent and created["workspace_id"] == "default"
    assert created["summary"] == 'agent created "Researcher"' and created["type"] == "activity"
    assert created["id"].startswith("actv_") and created["actor"] is None

    # A session's log keeps its public types; the agent is the actor of its own events.
    of_session = [entry for entry in entries if entry["entity_id"] == session]
    actions = [entry["action"] for entry in reversed(of_session)]
    assert actions[0] == "session.created" and {"user.message", "agent.message", "session.status_idle"} <= set(actions)
    assert all(entry["entity_type"] == "session" and entry["agent_id"] == agent for entry in of_session)
    message = _by_action(of_session, "user.message")[0]
    assert message["actor"] is None and "private question" not in json.dumps(of_session)
    assert _by_action(of_session, "agent.message")[0]["actor"] == {"type": "agent", "id": agent}
    assert _by_action(of_session, "session.status_idle")[0]["actor"] == {"type": "system", "id": None}
    assert _by_action(of_session, "session.status_idle")[0]["summary"] == "session status idle: end_turn"

    kinds = {entry["entity_type"] for entry in entries}
    assert {"agent", "environment", "session", "vault", "api_key"} <= kinds
    assert _by_action(entries, "vault.credential_added")[0]["entity_id"] == made["vault"]
    assert any(entry["entity_id"] == made["key_id"] for entry in _by_action(entries, "api_key.created"))

    # No secret in any row: not the credential's token, the key, nor the key's hash.
    dumped = json.dumps([list(map(str, row)) for row in rows])
    assert CREDENTIAL_TOKEN not in dumped and made["key"] not in dumped
    from application.api_keys import keyed_hash

    if server.settings.api_key_secret:
        assert keyed_hash(server.settings.api_key_secret)(made["key"]) not in dumped

    # Rebuilt from the log (as `agentry projections rebuild activity` does), the same rows.
    assert server.platform.projections.rebuild("activity") >= stored[-1].id
    assert _rows(server) == (rows, streams)
    assert _entries(http, limit=7) == entries


def test_the_cli_rebuild_gives_exactly_the_live_rows(server: RunningServer, http: httpx.Client) -> None:
    _workload(http)
    head = _settled(server)
    live = _rows(server)
    result = run_cli(server.settings, "projections", "rebuild", "activity", timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"rebuilt activity up to event {head} in " in result.stdout
    assert _rows(server) == live


def test_filters_and_cursor_pages(server: RunningServer, http: httpx.Client) -> None:
    first = _ok(http.post("/v1/agents", json={"name": "one", "model": "m"}))["id"]
    for version, name in ((1, "one b"), (2, "one c")):
        _ok(http.post(f"/v1/agents/{first}", json={"version": version, "name": name}))
    second = _ok(http.post("/v1/agents", json={"name": "two", "model": "m"}))["id"]
    environment = _ok(http.post("/v1/environments", json={"name": "e"}))["id"]
    for number in range(20):  # more than the dashboard's page
        _ok(http.post("/v1/vaults", json={"display_name": f"v{number}"}))
    _caught_up(server)
    everything = _entries(http, limit=1000)
    assert len(everything) >= 26

    def actions(**params: Any) -> list[tuple[str, str | None]]:
        return [(entry["action"], entry["entity_id"]) for entry in _entries(http, **params)]

    assert actions(entity_type="agent") == [
        ("agent.created", second), ("agent.updated", first), ("agent.updated", first), ("agent.created", first)
    ]  # fmt: skip
    assert actions(action="agent.updated") == [("agent.updated", first)] * 2
    assert actions(agent_id=second) == [("agent.created", second)]
    assert actions(entity_id=environment) == [("environment.created", environment)]
    assert actions(entity_type="agent", action="environment.created") == []
    assert actions(entity_type="task") == []

    # Dates (a day means all of it, UTC) and moments; created_at bounds too.
    day = date.fromisoformat(everything[-1]["created_at"][:10])
    last_day = date.fromisoformat(everything[0]["created_at"][:10])
    assert len(_entries(http, date_from=day.isoformat(), date_to=last_day.isoformat())) == len(everything)
    assert _entries(http, date_from=(last_day + timedelta(days=1)).isoformat()) == []
    assert _entries(http, date_to=(day - timedelta(days=1)).isoformat()) == []
    oldest_agent = everything.index(_by_action(everything, "agent.created")[-1])
    moment = everything[oldest_agent]["created_at"]
    assert _entries(http, date_to=moment)[0]["created_at"] == moment
    assert _entries(http, date_from=moment)[-1]["created_at"] == moment
    assert [e["created_at"] for e in _entries(http, **{"created_at[gt]": moment})] == [
        e["created_at"] for e in everything[:oldest_agent]
    ]

    # Pages of two, forward to the end and one back, and the other order.
    paged = _entries(http, limit=2)
    assert paged == everything
    page_one = _ok(http.get("/v1/activity", params={"limit": 2}))
    assert page_one["prev_page"] is None and page_one["data"] == everything[:2]
    page_two = _ok(http.get("/v1/activity", params={"limit": 2, "page": page_one["next_page"]}))
    assert page_two["data"] == everything[2:4]
    assert _ok(http.get("/v1/activity", params={"limit": 2, "page": page_two["prev_page"]}))["data"] == everything[:2]
    assert _entries(http, limit=3, order="asc") == list(reversed(everything))

    # The dashboard's most recent entries, whose next page continues in the feed.
    dashboard = _ok(http.get("/v1/dashboard/activity"))
    assert dashboard["data"] == everything[:20] and dashboard["prev_page"] is None
    assert _ok(http.get("/v1/activity", params={"page": dashboard["next_page"], "limit": 20}))["data"] == everything[20:40]
    assert _entries(http, "/v1/dashboard/activity") == everything

    refused = [
        {"page": "not-a-token"},
        {"page": _ok(http.get("/v1/agents", params={"limit": 1, "include_archived": "true"}))["next_page"] or "x"},
        {"date_from": "yesterday"},
        {"date_to": "2026-02-30"},
        {"entity_type": "x" * 129},
        {"limit": 0},
        {"order": "sideways"},
    ]
    for params in refused:
        response = http.get("/v1/activity", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["type"] == "invalid_request_error"


def _key_client(server: RunningServer, key: str, workspace: str | None = None) -> httpx.Client:
    headers = {"x-api-key": key, **({"anthropic-workspace-id": workspace} if workspace else {})}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=20)


def test_a_workspace_sees_only_its_own_entries_and_people_only_the_organization_admins(
    server: RunningServer, http: httpx.Client
) -> None:
    workspaces = [_ok(http.post("/v1/organizations/workspaces", json={"name": name}))["id"] for name in ("A", "B")]
    keys = [
        _ok(http.post("/v1/organizations/api_keys", json={"name": "admin", "workspace_id": w, "role": "admin"}))["key"]
        for w in workspaces
    ]
    # A person joins (organization-level events: the invite, the user) and logs in.
    invite = _ok(http.post("/v1/organizations/invites", json={"email": "ann@example.test", "role": "user"}))
    user = _ok(http.post("/v1/auth/invites/accept", json={"token": invite["token"], "password": PASSWORD, "name": "Ann"}))["id"]
    logged_in = http.post("/v1/auth/login", json={"email": "ann@example.test", "password": PASSWORD}, headers={"x-api-key": ""})
    assert logged_in.status_code == 200, logged_in.text
    with _key_client(server, keys[0]) as a, _key_client(server, keys[1]) as b:
        agent = _ok(a.post("/v1/agents", json={"name": "secretive", "model": "m"}))["id"]
        _ok(a.post(f"/v1/agents/{agent}", json={"version": 1, "name": "still secretive"}))
        _ok(b.post("/v1/environments", json={"name": "b's"}))
        _caught_up(server)
        in_a, in_b = _entries(a), _entries(b)
        assert {e["workspace_id"] for e in in_a} == {workspaces[0]}
        assert {e["workspace_id"] for e in in_b} == {workspaces[1]}
        assert [e["action"] for e in in_a if e["entity_id"] == agent] == ["agent.updated", "agent.created"]
        assert "workspace.created" in {e["action"] for e in in_a}, "the workspace's own creation is in its feed"
        # Whatever the filter, B never sees A's entries, nor the organization's.
        for params in ({"agent_id": agent}, {"entity_id": agent}, {"entity_type": "agent"}, {"user_id": user}):
            assert _entries(b, **params) == [], params
        assert not {e["id"] for e in in_a} & {e["id"] for e in _entries(b, limit=1000)}
        assert _ok(b.get("/v1/dashboard/activity"))["data"] == in_b[:20]
        assert not any(e["entity_type"] in ("user", "invite") for e in in_a + in_b)

    # The organization admin, in workspace A, sees A's entries and the organization's own.
    with _key_client(server, server.api_key, workspaces[0]) as admin_in_a:
        seen = _entries(admin_in_a)
    assert {e["workspace_id"] for e in seen} == {workspaces[0], None}
    people = [e for e in seen if e["workspace_id"] is None]
    assert {e["entity_type"] for e in people} == {"user", "invite"}
    about_ann = _entries(http, user_id=user)
    assert about_ann[0]["action"] == "user.logged_in" and about_ann[0]["entity_id"] == user
    assert about_ann[0]["actor"] == {"type": "user", "id": user}
    assert sorted(e["action"] for e in about_ann[1:]) == ["invite.accepted", "user.created"]
    accepted = _by_action(about_ann, "invite.accepted")[0]
    assert accepted["actor"] == {"type": "user", "id": user} and accepted["entity_id"] == invite["id"]
    # No secret of the person's: password, invite token.
    assert PASSWORD not in json.dumps(seen) and invite["token"] not in json.dumps(seen)
