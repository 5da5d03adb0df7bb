"""The web console in a real browser (Debian's chromium driven by Playwright; no browser
download) against a real server with the fake model provider: a person signs in, creates an
agent, starts a session, watches the reply stream in, allows a tool call, runs a task through
review, and finds each step in the activity feed; a stream cut mid-reply resumes with nothing
lost or doubled; an edit that lost a race says so and reloads.

The browser reaches the server through a small TCP proxy, so a test can cut the live
connections the way a network does (the server sees the client go, the page sees the read
fail)."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import chromium, console_tab, page_problems, use_api_key
from tests.support.fake_provider import FakeProvider, Reply, Text, Thinking, ToolUse, stalled
from tests.support.server import RunningServer, provider_settings, running_server

MODEL = "claude-sonnet-4-6"
EMAIL = "ann@example.test"
PASSWORD = "ann-console-password-1"
ASKING_TOOLS = [{"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "always_ask"}}}]
TIMEOUT_MS = 20_000
WEATHER_TOOL = {
    "type": "custom",
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to the server; ``cut()`` drops every open connection."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="console-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self._upstream))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source, target)

    def _drop(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with self._lock:
                self._open.discard(sock)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def cut(self) -> int:
        with self._lock:
            live = list(self._open)
        self._drop(*live)
        return len(live) // 2

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, fake_provider_server: FakeProvider) -> Iterator[RunningServer]:
    settings: dict[str, Any] = {
        **provider_settings(fake_provider_server),
        # No environment worker polls here: an allowed built-in call gives up on it soon.
        "worker_timeout_seconds": 2.0,
    }
    with running_server(tmp_path_factory.mktemp("console") / "data", **settings) as running:
        yield running


@pytest.fixture(scope="module")
def api(live: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url, headers={"x-api-key": live.api_key}, timeout=20) as client:
        yield client


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 202), response.text
    return response.json()


@pytest.fixture(scope="module")
def person(api: httpx.Client) -> dict[str, Any]:
    """Ann: a workspace admin of ``default`` (she reviews tasks), also in a second workspace (so
    signing in asks which)."""
    invite = _ok(api.post("/v1/organizations/invites", json={"email": EMAIL, "role": "developer"}))
    ann = _ok(api.post("/v1/auth/invites/accept", json={"token": invite["token"], "password": PASSWORD, "name": "Ann"}))
    _ok(api.post(f"/v1/organizations/workspaces/default/members/{ann['id']}", json={"workspace_role": "workspace_admin"}))
    other = _ok(api.post("/v1/organizations/workspaces", json={"name": "elsewhere"}))
    _ok(api.post(f"/v1/organizations/workspaces/{other['id']}/members", json={"user_id": ann["id"], "workspace_role": "workspace_user"}))
    return {**ann, "other_workspace": other["id"]}


@pytest.fixture(scope="module")
def proxy(live: RunningServer) -> Iterator[CuttableProxy]:
    upstream = int(live.base_url.rsplit(":", 1)[1])
    cuttable = CuttableProxy(upstream)
    yield cuttable
    cuttable.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, proxy: CuttableProxy) -> Iterator[Page]:
    with console_tab(browser, base_url=f"http://127.0.0.1:{proxy.port}") as opened:
        opened.set_default_timeout(TIMEOUT_MS)
        yield opened


def sign_in(page: Page, workspace: str = "default") -> None:
    page.goto("/console")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", "not the password")
    page.click("[data-action=sign-in]")
    expect(page.locator("[data-role=error]")).to_contain_text("invalid email or password")
    page.fill("input[name=password]", PASSWORD)
    page.click("[data-action=sign-in]")
    # She is in two workspaces: the console asks which.
    page.select_option("select[name=workspace]", workspace)
    page.click("[data-action=sign-in]")
    expect(page.locator("[data-role=workspace]")).to_have_text(f"workspace: {workspace}")


def sign_in_with_key(page: Page, key: str) -> None:
    page.goto("/console")
    page.fill("input[name=api_key]", "agentry-not-a-real-key-0000000000000000")
    page.click("[data-action=use-key]")
    expect(page.locator("[data-role=error]")).to_contain_text("Not signed in")
    use_api_key(page, key)


def stored_events(api: httpx.Client, session_id: str) -> list[dict[str, Any]]:
    return _ok(api.get(f"/v1/sessions/{session_id}/events", params={"limit": 1000}))["data"]


def rendered_ids(page: Page) -> list[str]:
    return page.locator("[data-role=conversation] [data-event-id]").evaluate_all(
        "nodes => nodes.map(node => node.dataset.eventId)"
    )


def expect_log_matches(page: Page, api: httpx.Client, session_id: str) -> list[dict[str, Any]]:
    """Every stored event is on the page once, agent text exactly as stored."""
    events = stored_events(api, session_id)
    ids = [event["id"] for event in events]
    expect(page.locator("[data-role=conversation] [data-event-id]")).to_have_count(len(ids))
    shown = rendered_ids(page)
    assert sorted(shown) == sorted(ids) and len(set(shown)) == len(shown)
    messages = page.locator("[data-event-type='agent.message'] .text")
    stored = ["".join(block["text"] for block in e["content"]) for e in events if e["type"] == "agent.message"]
    assert messages.all_inner_texts() == stored
    expect(page.locator("[data-preview-id]")).to_have_count(0)
    return events


def test_a_person_signs_in_runs_an_agent_a_session_and_a_task_and_finds_it_all_in_the_feed(
    page: Page, api: httpx.Client, person: dict[str, Any], fake_provider: FakeProvider
) -> None:
    sign_in(page)
    for screen in ("agents", "sessions", "tasks", "activity"):
        expect(page.locator(f"a[data-nav={screen}]")).to_be_visible()

    # -- an agent whose built-in tools ask first ----------------------------------------------
    page.click("a[data-nav=agents]")
    page.click("[data-action=new-agent]")
    page.fill("input[name=name]", "Scout")
    page.fill("input[name=model]", MODEL)
    page.select_option("select[name=tool_preset]", "ask")
    page.click("[data-action=save]")
    expect(page.locator("[data-role=agent-name]")).to_have_text("Scout")
    agent_id = page.url.rsplit("/", 1)[1]
    assert _ok(api.get(f"/v1/agents/{agent_id}"))["tools"][0]["default_config"]["permission_policy"]["type"] == "always_ask"

    # -- a session, in an environment made on the way -----------------------------------------
    page.click("[data-screen=agents] [data-action=start-session]")
    page.fill("input[name=environment_name]", "console-env")
    page.click("[data-action=create-environment]")
    expect(page.locator("select[name=environment_id] option")).to_have_count(1)
    page.click("[data-screen=sessions] [data-action=start-session]")
    expect(page.locator("[data-screen=session] [data-role=stream-state]")).to_contain_text("live")
    session_id = page.url.rsplit("/", 1)[1]
    assert session_id.startswith("sesn_")

    # -- a reply seen as it streams: held after its first pieces -------------------------------
    reply = "Hello Ann, the console streams this reply in pieces."
    fake_provider.script(Reply([Text(reply, tokens=6)], hold_after=2))
    page.fill("textarea[name=message]", "Hello!")
    page.click("[data-action=send]")
    expect(page.locator("[data-event-type='user.message']")).to_contain_text("Hello!")
    fake_provider.wait_for_stall()
    preview = page.locator("[data-preview-id]")
    expect(preview).to_contain_text("Hello Ann")
    partial = preview.locator(".text").inner_text()
    assert partial and reply.startswith(partial) and partial != reply
    expect(page.locator("[data-event-type='agent.message']")).to_have_count(0)
    fake_provider.release_stalls()
    expect(page.locator("[data-event-type='agent.message'] .text")).to_have_text(reply)
    expect(page.locator("[data-event-type='span.model_request_end']")).to_contain_text("tokens")

    # -- a tool call that asks first: allowed -----------------------------------------------
    fake_provider.script(Reply([ToolUse("bash", {"command": "ls"})]), Reply([Text("Listed.")]))
    page.fill("textarea[name=message]", "list the files")
    page.click("[data-action=send]")
    asking = page.locator("[data-event-type='agent.tool_use']")
    expect(asking).to_contain_text("bash")
    expect(page.locator("[data-screen=session] [data-role=session-status]")).to_contain_text("requires action")
    asking.locator("[data-action=allow]").click()
    expect(asking).to_contain_text("You allowed this call.")
    # The call waited for the environment's worker (none polls here) and came back as an error.
    expect(asking.locator("[data-event-type='agent.tool_result']")).to_contain_text("no worker")
    expect(page.locator("[data-event-type='agent.message'] .text").last).to_have_text("Listed.")
    expect(asking.locator("[data-action=allow]")).to_have_count(0)
    events = expect_log_matches(page, api, session_id)
    confirmation = next(e for e in events if e["type"] == "user.tool_confirmation")
    assert confirmation["result"] == "allow"

    # -- a task: executed, rejected with a comment, revised, approved -------------------------
    fake_provider.script(Reply([Text("Draft: three findings.")]), Reply([Text("Revised: three findings, with sources.")]))
    page.click("a[data-nav=tasks]")
    page.click("[data-action=new-task]")
    page.fill("input[name=title]", "Summarise the findings")
    page.fill("textarea[name=description]", "Three bullet points.")
    page.select_option("select[name=assigned_agent_id]", agent_id)
    page.click("[data-action=create-task]")
    card = page.locator("[data-status=todo] .task-card", has_text="Summarise the findings")
    expect(card).to_be_visible()
    task_id = card.get_attribute("data-task-id")
    card.click()
    page.click("[data-action=execute]")
    status = page.locator("[data-role=task-status]")
    expect(status).to_have_text("review")
    expect(page.locator("[data-role=task-result]")).to_have_text("Draft: three findings.")
    page.fill("textarea[name=review_comment]", "Add the sources.")
    page.click("[data-action=reject]")
    expect(page.locator("[data-role=task-result]")).to_have_text("Revised: three findings, with sources.")
    expect(status).to_have_text("review")
    page.click("[data-action=approve]")
    expect(status).to_have_text("approved")
    # A comment with an @mention picked from the suggestions.
    page.locator("textarea[name=comment]").press_sequentially("Thanks @an")
    expect(page.locator("[data-role=mention-list] [data-handle]")).to_have_count(1)
    page.locator("textarea[name=comment]").press("Enter")
    expect(page.locator("textarea[name=comment]")).to_have_value("Thanks @Ann ")
    page.click("[data-action=comment]")
    expect(page.locator("[data-comment-id]")).to_contain_text("mentions Ann")
    task = _ok(api.get(f"/v1/tasks/{task_id}"))
    assert task["status"] == "approved" and task["result"] == "Revised: three findings, with sources."

    # -- every step in the activity feed ----------------------------------------------------
    page.click("a[data-nav=activity]")
    expect(page.locator("[data-role=feed] [data-activity-id]").first).to_be_visible()

    def actions_for(entity_id: str) -> list[str]:
        page.fill("input[name=entity_id]", entity_id)
        page.select_option("select[name=order]", "asc")
        page.click("[data-action=filter]")
        items = page.locator(f"[data-role=feed] [data-entity-id='{entity_id}']")
        expect(items.first).to_be_visible()
        expect(page.locator("[data-role=feed] [data-activity-id]")).to_have_count(items.count())
        return items.evaluate_all("nodes => nodes.map(node => node.dataset.actionName)")

    assert actions_for(agent_id)[0] == "agent.created"
    in_session = actions_for(session_id)
    assert in_session[0] == "session.created" and "session.status_idle" in in_session
    assert actions_for(task_id) == [
        "task.created", "task.executed", "task.status_changed", "task.result_recorded", "task.status_changed",
        "task.rejected", "task.status_changed", "task.result_recorded", "task.status_changed",
        "task.approved", "task.status_changed", "task.commented",
    ]  # fmt: skip
    # The feed says who: Ann herself approved.
    approved = page.locator("[data-role=feed] [data-action-name='task.approved']")
    expect(approved).to_contain_text(person["id"])

    page.click("[data-action=sign-out]")
    expect(page.locator("[data-action=sign-in]")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_stream_cut_mid_reply_resumes_with_nothing_lost_or_doubled(
    page: Page, api: httpx.Client, live: RunningServer, proxy: CuttableProxy, fake_provider: FakeProvider
) -> None:
    agent = _ok(api.post("/v1/agents", json={"name": "Cutter", "model": MODEL}))
    environment = _ok(api.post("/v1/environments", json={"name": "cut-env"}))
    session = _ok(api.post("/v1/sessions", json={"agent": agent["id"], "environment_id": environment["id"]}))
    sign_in_with_key(page, live.api_key)
    page.goto(f"/console#/session/{session['id']}")
    state = page.locator("[data-role=stream-state]")
    expect(state).to_have_attribute("data-opened", "1")

    first = "One, two, three, four, five, six, seven, eight."
    fake_provider.script(Reply([Text(first, tokens=8)], hold_after=3), Reply([Text("After the cut.")]))
    page.fill("textarea[name=message]", "count for me")
    page.click("[data-action=send]")
    fake_provider.wait_for_stall()
    expect(page.locator("[data-preview-id]")).to_contain_text("One")
    # The network drops the live stream mid-reply; the reply finishes while the page is away.
    assert proxy.cut() >= 1
    fake_provider.release_stalls()
    expect(state).to_have_attribute("data-opened", "2")
    expect(page.locator("[data-event-type='agent.message'] .text")).to_have_text([first])
    expect(page.locator("[data-event-type='session.status_idle']")).to_have_count(1)
    expect_log_matches(page, api, session["id"])

    # Live again after the resume.
    page.fill("textarea[name=message]", "and again")
    page.click("[data-action=send]")
    expect(page.locator("[data-event-type='agent.message'] .text")).to_have_text([first, "After the cut."])
    expect(page.locator("[data-event-type='session.status_idle']")).to_have_count(2)
    expect_log_matches(page, api, session["id"])


def test_a_custom_tool_is_answered_a_call_denied_thinking_collapsed_and_a_reply_interrupted(
    page: Page, api: httpx.Client, live: RunningServer, fake_provider: FakeProvider
) -> None:
    agent = _ok(api.post("/v1/agents", json={"name": "Asker", "model": MODEL, "tools": [WEATHER_TOOL, *ASKING_TOOLS]}))
    environment = _ok(api.post("/v1/environments", json={"name": "ask-env"}))
    session = _ok(api.post("/v1/sessions", json={"agent": agent["id"], "environment_id": environment["id"]}))
    sign_in_with_key(page, live.api_key)
    page.goto(f"/console#/session/{session['id']}")
    expect(page.locator("[data-role=stream-state]")).to_have_attribute("data-opened", "1")

    def say(text: str) -> None:
        page.fill("textarea[name=message]", text)
        page.click("[data-action=send]")

    # A custom tool: the person answers it.
    fake_provider.script(
        Reply([Thinking("the user wants the weather"), ToolUse("get_weather", {"city": "Oslo"})]),
        Reply([Text("It is cold in Oslo.")]),
    )
    say("weather in Oslo?")
    thinking = page.locator("[data-event-type='agent.thinking']")
    expect(thinking).to_have_count(1)
    expect(thinking.locator("details")).not_to_have_attribute("open", "")
    custom = page.locator("[data-event-type='agent.custom_tool_use']")
    expect(custom).to_contain_text("get_weather")
    custom.locator("textarea[name=custom_tool_result]").fill("Oslo: -3°C")
    custom.locator("[data-action=answer]").click()
    expect(custom.locator("[data-event-type='user.custom_tool_result']")).to_contain_text("Oslo: -3°C")
    expect(page.locator("[data-event-type='agent.message'] .text")).to_have_text(["It is cold in Oslo."])

    # A built-in call that asks: denied, with a reason.
    fake_provider.script(Reply([ToolUse("bash", {"command": "rm -rf /tmp/x"})]), Reply([Text("Understood, I will not.")]))
    say("clean up")
    asking = page.locator("[data-event-type='agent.tool_use']")
    asking.locator("input[name=deny_message]").fill("not on this machine")
    asking.locator("[data-action=deny]").click()
    expect(asking).to_contain_text("You denied this call: not on this machine")
    expect(asking.locator("[data-event-type='agent.tool_result']")).to_contain_text("Denied: not on this machine")
    expect(page.locator("[data-event-type='agent.message'] .text").last).to_have_text("Understood, I will not.")

    # A long reply, interrupted while it streams: the preview ends, marked, and is no message.
    fake_provider.script(stalled(after=2))
    say("tell me a long story")
    fake_provider.wait_for_stall()
    expect(page.locator("[data-preview-id]")).to_have_count(1)
    page.click("[data-action=interrupt]")
    expect(page.locator("[data-event-type='user.interrupt']")).to_have_count(1)
    expect(page.locator("[data-aborted-preview]")).to_contain_text("stopped before it finished")
    expect(page.locator("[data-event-type='session.status_idle']")).to_have_count(5)  # two asked, three ended turns
    events = expect_log_matches(page, api, session["id"])
    assert [e["type"] for e in events].count("agent.message") == 2


def test_an_edit_that_lost_a_race_says_so_reloads_and_versions_show_their_differences(
    page: Page, api: httpx.Client, live: RunningServer
) -> None:
    agent = _ok(api.post("/v1/agents", json={"name": "Racer", "model": MODEL, "system": "Be brief."}))
    sign_in_with_key(page, live.api_key)
    page.goto(f"/console#/agents/{agent['id']}")
    expect(page.locator("[data-role=agent-name]")).to_have_text("Racer")
    page.fill("textarea[name=system]", "Be thorough.")
    # Someone else saves first.
    _ok(api.post(f"/v1/agents/{agent['id']}", json={"description": "Changed elsewhere.", "version": 1}))
    page.click("[data-action=save]")
    conflict = page.locator("[data-role=conflict]")
    expect(conflict).to_contain_text("changed by someone else")
    conflict.locator("[data-action=reload]").click()
    expect(page.locator("input[name=description]")).to_have_value("Changed elsewhere.")
    expect(page.locator("textarea[name=system]")).to_have_value("Be brief.")
    page.fill("textarea[name=system]", "Be thorough.")
    page.click("[data-action=save]")
    expect(page.locator("[data-role=notice]")).to_contain_text("version 3")
    assert _ok(api.get(f"/v1/agents/{agent['id']}"))["system"] == "Be thorough."
    diff = page.locator("[data-role=version-diff]")
    expect(diff.locator(".diff-line[data-diff=changed]")).to_have_count(2)  # the same line, both sides
    expect(diff.locator(".diff-line[data-diff=changed]").first).to_contain_text("Be brief.")
    expect(diff.locator(".diff-line[data-diff=changed]").last).to_contain_text("Be thorough.")
    # An error envelope in words: a name too long for the API.
    page.fill("input[name=name]", "x" * 300)
    page.click("[data-action=save]")
    expect(page.locator("[data-role=error]")).to_contain_text(re.compile(r"Not accepted: .*name"))


def test_the_shared_helpers_the_other_screens_build_on(page: Page, api: httpx.Client, live: RunningServer) -> None:
    for name in ("Paged one", "Paged two"):
        _ok(api.post("/v1/agents", json={"name": name, "model": MODEL}))
    sign_in_with_key(page, live.api_key)
    checked = page.evaluate(
        """async () => {
            const core = await import('/console/assets/core.js');
            const chart = core.barChart({title: 'Cost', series: [{label: 'a', value: 1}, {label: 'b', value: 3}], format: core.formatCost});
            let error = null;
            try { await core.api('GET', '/v1/agents/agent_doesnotexist0000000000'); } catch (err) { error = err; }
            const everything = await core.listAll('/v1/agents', {limit: 1});
            return {
                bars: chart.querySelectorAll('rect').length,
                labels: [...chart.querySelectorAll('text')].map(t => t.textContent),
                query: core.querystring({'statuses': ['idle', 'running'], limit: 2, empty: ''}),
                error: [error.name, error.status, error.envelope.error.type, error.message],
                listed: everything.length,
                session: core.session(),
                money: [core.formatCost(0.5), core.formatCost(0.001), core.formatTokens(12345)],
            };
        }"""
    )
    assert checked["bars"] == 2 and checked["labels"] == ["a", "$1.00", "b", "$3.00"]
    assert checked["query"] == "?statuses%5B%5D=idle&statuses%5B%5D=running&limit=2"
    assert checked["error"][:3] == ["ApiError", 404, "not_found_error"] and checked["error"][3].startswith("Not found: ")
    # Every agent, one page at a time.
    assert checked["listed"] == len(_ok(api.get("/v1/agents", params={"limit": 1000}))["data"]) >= 2
    assert checked["session"] == {"kind": "key", "workspace": None, "user": None}
    assert checked["money"] == ["$0.50", "$0.0010", "12.3k"]


def test_the_console_is_served_offline_and_only_its_own_files(live: RunningServer) -> None:
    with httpx.Client(base_url=live.base_url, timeout=10) as anonymous:
        page = anonymous.get("/console")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        # No other host: every script and stylesheet is the server's own.
        assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
        screens = anonymous.get("/console/assets/screens.json").json()
        assert {"agents.js", "session.js", "tasks.js", "activity.js"} <= set(screens) and screens == sorted(screens)
        for name in ("core.js", "app.js", *(f"screens/{screen}" for screen in screens)):
            served = anonymous.get(f"/console/assets/{name}")
            assert served.status_code == 200 and served.headers["content-type"].startswith("text/javascript"), name
        assert anonymous.get("/console/assets/style.css").headers["content-type"].startswith("text/css")
        for missing in ("nope.js", "__init__.py", "screens/../__init__.py", "%2e%2e/app.py", "index.html"):
            refused = anonymous.get(f"/console/assets/{missing}")
            assert refused.status_code in (401, 404), missing
            if refused.status_code == 404:
                assert refused.json()["error"]["type"] == "not_found_error"
        # The console's own pages run under a strict policy: only its own files, no framing.
        for name in ("/console", "/console/assets/app.js", "/console/assets/style.css", "/console/assets/screens.json"):
            headers = anonymous.get(name).headers
            policy = {part.strip().split(" ", 1)[0]: part.strip() for part in headers["content-security-policy"].split(";")}
            assert policy["default-src"] == "default-src 'self'" and policy["script-src"] == "script-src 'self'", name
            assert policy["style-src"] == "style-src 'self'" and policy["frame-ancestors"] == "frame-ancestors 'none'", name
            assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer", name


def test_a_malformed_address_is_a_page_not_found_and_the_console_keeps_working(page: Page, live: RunningServer) -> None:
    sign_in_with_key(page, live.api_key)
    page.goto("/console#/session/%E0")
    expect(page.locator("[data-screen=missing]")).to_contain_text("Not found")
    page.click("a[data-nav=agents]")
    expect(page.locator("[data-screen=agents]")).to_be_visible()
    page.goto("/console#/nowhere%ZZ/x")
    expect(page.locator("[data-screen=missing]")).to_be_visible()
    page.go_back()
    expect(page.locator("[data-screen=agents]")).to_be_visible()


def test_an_activity_entry_without_an_actor_type_is_shown(page: Page, live: RunningServer) -> None:
    entry = {
        "type": "activity", "id": "act_noactortype", "action": "agent.created", "entity_type": "agent",
        "entity_id": "agent_x", "actor": {"id": "someone_1"}, "created_at": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    page.route(
        "**/v1/activity?*",
        lambda route: route.fulfill(json={"data": [entry], "has_more": False, "next_page": None}),
    )
    sign_in_with_key(page, live.api_key)
    page.goto("/console#/activity")
    shown = page.locator("[data-activity-id=act_noactortype]")
    expect(shown).to_contain_text("someone_1")
    expect(page.locator("[data-role=error]")).to_have_count(0)


def test_the_policy_refuses_inline_code_and_a_refusal_fails_a_test(browser: Browser, live: RunningServer) -> None:
    context = browser.new_context(base_url=live.base_url)
    try:
        tab = context.new_page()
        problems = page_problems(tab)
        tab.goto("/console")
        expect(tab.locator("[data-action=use-key]")).to_be_visible()
        with tab.expect_console_message(lambda message: "Content Security Policy" in message.text):
            tab.evaluate("document.body.append(Object.assign(document.createElement('div'), {id: 'styled'})); document.getElementById('styled').setAttribute('style', 'color: rgb(255, 0, 0)')")
        assert tab.evaluate("getComputedStyle(document.getElementById('styled')).color") != "rgb(255, 0, 0)"
        assert problems and "Content Security Policy" in problems[0]
    finally:
        context.close()


def test_a_stream_that_opens_and_drops_at_once_backs_off(page: Page, live: RunningServer) -> None:
    """Each reconnect waits longer: the wait resets only after a stream proved itself."""
    page.route(
        "**/v1/console-probe-stream*",
        lambda route: route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=""),
    )
    sign_in_with_key(page, live.api_key)
    waits = page.evaluate(
        """async () => {
            const core = await import('/console/assets/core.js');
            const waits = [];
            const realSetTimeout = window.setTimeout;
            let opened = 0;
            // The waits sse() asks for between attempts (other timers of the page are shorter or longer).
            window.setTimeout = (fn, ms, ...rest) => {
                if (opened && ms >= 500 && ms <= 5000) waits.push(ms);
                return realSetTimeout(fn, ms, ...rest);
            };
            try {
                await new Promise((resolve) => {
                    const stream = core.sse('/v1/console-probe-stream', {
                        onOpen: () => { opened += 1; if (opened === 4) { stream.close(); resolve(); } },
                    });
                });
            } finally {
                window.setTimeout = realSetTimeout;
            }
            return waits;
        }"""
    )
    assert waits == [500, 1000, 2000]
