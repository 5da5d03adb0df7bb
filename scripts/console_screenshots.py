"""Screenshots of the web console: starts a server (SQLite, in a temporary directory) with the
test suite's fake model provider, seeds a workspace through the public API, signs in in
Debian's chromium and writes a 1280×800 PNG of every screen the console registers
(``screens.json``: every screen module, whoever wrote it) to ``docs/console/<id>.png``.

Run from the repository root, with the test extras installed::

    .venv/bin/python scripts/console_screenshots.py [--out docs/console] [--only agents,tasks]

It drives ``/usr/bin/chromium`` (``scripts/bootstrap test`` installs it); nothing is downloaded."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from playwright.sync_api import Page  # noqa: E402

from tests.support.browser import chromium  # noqa: E402
from tests.support.fake_provider import API_KEY as PROVIDER_KEY  # noqa: E402
from tests.support.fake_provider import FakeProvider, Reply, Text, ToolUse  # noqa: E402
from tests.support.sdk_sessions import eventually  # noqa: E402
from tests.support.server import provider_settings, running_server  # noqa: E402

MODEL = "claude-sonnet-4-6"
ASK_FIRST = [{"type": "agent_toolset_20260401", "default_config": {"permission_policy": {"type": "always_ask"}}}]


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}")
    return response.json()


def _wait(what: str, check: Any, timeout: float = 20.0) -> Any:
    found = eventually(check, timeout)
    if not found:
        raise RuntimeError(f"gave up waiting for {what}")
    return found


def _idle_count(http: httpx.Client, session_id: str) -> int:
    events = _ok(http.get(f"/v1/sessions/{session_id}/events", params={"limit": 1000}))["data"]
    return sum(1 for event in events if event["type"] == "session.status_idle")


def _task_status(http: httpx.Client, task_id: str, status: str) -> bool:
    return bool(_ok(http.get(f"/v1/tasks/{task_id}"))["status"] == status)


def _say(http: httpx.Client, session_id: str, text: str) -> None:
    _ok(http.post(f"/v1/sessions/{session_id}/events", json={"events": [{"type": "user.message", "content": [{"type": "text", "text": text}]}]}))


def seed(http: httpx.Client, fake: FakeProvider) -> dict[str, str]:
    """A small, believable workspace: agents (one edited twice), an environment, a session with a
    conversation and an allowed tool call, tasks in several states, a comment, and a few of the
    things the other screens list. Optional parts that fail are reported and skipped."""
    writer = _ok(http.post("/v1/agents", json={"name": "Writer", "model": MODEL, "system": "Write clearly.", "tools": ASK_FIRST}))
    _ok(http.post(f"/v1/agents/{writer['id']}", json={"system": "Write clearly and briefly.", "version": 1}))
    _ok(http.post(f"/v1/agents/{writer['id']}", json={"description": "Drafts posts and summaries.", "version": 2}))
    researcher = _ok(http.post("/v1/agents", json={"name": "Researcher", "model": MODEL, "description": "Finds sources."}))
    _ok(http.post("/v1/agents", json={"name": "Reviewer", "model": MODEL, "description": "Checks drafts."}))
    environment = _ok(http.post("/v1/environments", json={"name": "default"}))

    session = _ok(http.post("/v1/sessions", json={"agent": writer["id"], "environment_id": environment["id"], "title": "Release notes"}))
    # Token counts of a real conversation, so the costs shown are not all $0.00.
    fake.script(
        Reply([Text("Here is a first outline: what changed, why it matters, and how to upgrade.", tokens=6)], usage={"input_tokens": 42_000, "output_tokens": 1_800}),
        Reply([Text("I will look at the change log first."), ToolUse("bash", {"command": "git log --oneline -5"})], usage={"input_tokens": 45_000, "output_tokens": 300}),
        Reply([Text("The log is not reachable from here, so the notes keep to the outline above.")], usage={"input_tokens": 46_000, "output_tokens": 900}),
    )
    _say(http, session["id"], "Draft the release notes for version 2.4.")
    _wait("the first reply", lambda: _idle_count(http, session["id"]) >= 1)
    _say(http, session["id"], "Check the change log before you write.")
    asked = _wait(
        "the tool call",
        lambda: [
            e for e in _ok(http.get(f"/v1/sessions/{session['id']}/events", params={"limit": 1000}))["data"]
            if e["type"] == "agent.tool_use"
        ],
    )
    _wait("the request for a confirmation", lambda: _idle_count(http, session["id"]) >= 2)
    confirmation = {"type": "user.tool_confirmation", "tool_use_id": asked[0]["id"], "result": "allow"}
    _ok(http.post(f"/v1/sessions/{session['id']}/events", json={"events": [confirmation]}))
    _wait("the end of the turn", lambda: _idle_count(http, session["id"]) >= 3, timeout=30)
    other = _ok(http.post("/v1/sessions", json={"agent": researcher["id"], "environment_id": environment["id"], "title": "Sources for the launch post"}))
    fake.script(Reply([Text("Three sources found: the changelog, the design doc and the launch issue.")]))
    _say(http, other["id"], "Find sources for the launch post.")
    _wait("the researcher's reply", lambda: _idle_count(http, other["id"]) >= 1)

    fake.script(Reply([Text("Draft: the launch post, 400 words.")]))
    review = _ok(http.post("/v1/tasks", json={"title": "Write the launch post", "description": "400 words, friendly.", "assigned_agent_id": writer["id"], "requires_approval": True, "priority": "high"}))
    _ok(http.post(f"/v1/tasks/{review['id']}/execute", json={"environment_id": environment["id"]}))
    _wait("the task in review", lambda: _task_status(http, review["id"], "review"))
    _ok(http.post(f"/v1/tasks/{review['id']}/comments", json={"content": "Looks close: keep the tone. @Reviewer please check the numbers."}))
    fake.script(Reply([Text("The numbers match the changelog.")]))
    _ok(http.post("/v1/tasks", json={"title": "Collect customer quotes", "assigned_agent_id": researcher["id"], "priority": "medium"}))
    _ok(http.post("/v1/tasks", json={"title": "Translate the notes", "priority": "low"}))
    fake.script(Reply([Text("Summary: the three sources agree.")]))
    done = _ok(http.post("/v1/tasks", json={"title": "Summarise the sources", "assigned_agent_id": researcher["id"], "requires_approval": True}))
    _ok(http.post(f"/v1/tasks/{done['id']}/execute", json={"environment_id": environment["id"]}))
    _wait("the second task in review", lambda: _task_status(http, done["id"], "review"))
    _ok(http.post(f"/v1/tasks/{done['id']}/approve", json={"comment": "Good."}))

    # For the other screens (best effort: a failure here costs a screenshot its data, no more).
    optional = [
        ("POST", "/v1/model_cards", {"model_id": "house-model", "provider": "oai-compatible", "model": "gpt-4o-mini", "api_key": PROVIDER_KEY, "base_url": fake.openai_base_url, "probe": False}),
        ("POST", "/v1/vaults", {"display_name": "Team credentials"}),
        ("POST", "/v1/memory_stores", {"name": "Style guide", "description": "How we write."}),
        ("POST", "/v1/knowledge_bases", {"name": "Product docs", "description": "The public documentation."}),
        ("POST", "/v1/organizations/api_keys", {"name": "ci"}),
    ]
    for method, path, body in optional:
        response = http.request(method, path, json=body)
        if response.status_code >= 300:
            print(f"seed: {method} {path} → {response.status_code} (skipped)", file=sys.stderr)
    return {"session": session["id"], "agent": writer["id"], "task": review["id"]}


def registered_screens(page: Page) -> list[dict[str, Any]]:
    return page.evaluate(
        "import('/console/assets/core.js').then(core => core.registeredScreens().map(s => ({id: s.id, nav: s.nav})))"
    )


# Further pictures of a screen's inner page: (file name, hash path, screen id, what to show).
EXTRAS = (
    ("agents-versions", "agents/{agent}", "agents", "[data-role=versions]"),
    ("tasks-review", "tasks/{task}", "tasks", "[data-role=review]"),
)


def shoot(page: Page, hash_path: str, screen_id: str, target: Path, focus: str | None = None) -> None:
    page.goto(f"/console#/{hash_path}")
    page.wait_for_selector(f"[data-screen='{screen_id}']")
    # Screens draw after their API calls; a live session keeps a stream open, so wait for the
    # screen to have content and the page to settle rather than for an idle network.
    page.wait_for_function(f"document.querySelector(\"[data-screen='{screen_id}']\").childElementCount > 0")
    page.wait_for_timeout(800)
    page.evaluate("document.querySelectorAll('[data-role=notice]').forEach(n => n.remove())")
    if focus:
        page.locator(focus).scroll_into_view_if_needed()
    page.screenshot(path=str(target))
    print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "console"))
    parser.add_argument("--only", default="", help="comma-separated screen ids (default: all)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    only = {name for name in args.only.split(",") if name}

    with tempfile.TemporaryDirectory() as scratch, FakeProvider() as fake:
        settings = {**provider_settings(fake), "worker_timeout_seconds": 1.0}
        with running_server(Path(scratch) / "data", **settings) as server:
            http = httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=30)
            seeded = seed(http, fake)
            detail = {"session": seeded["session"]}
            with chromium() as browser:
                context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=server.base_url)
                page = context.new_page()
                page.goto("/console")
                page.fill("input[name=api_key]", server.api_key)
                page.click("[data-action=use-key]")
                page.wait_for_selector("[data-action=sign-out]")
                page.wait_for_selector("a[data-nav]")
                page.wait_for_timeout(300)
                for screen in registered_screens(page):
                    screen_id = screen["id"]
                    if only and screen_id not in only:
                        continue
                    if not screen["nav"] and screen_id not in detail:
                        print(f"skipped {screen_id}: not in the nav and no seeded page to show", file=sys.stderr)
                        continue
                    path = f"{screen_id}/{detail[screen_id]}" if screen_id in detail else screen_id
                    shoot(page, path, screen_id, out / f"{screen_id}.png")
                for name, path, screen_id, focus in EXTRAS:
                    if not only or screen_id in only:
                        shoot(page, path.format(**seeded), screen_id, out / f"{name}.png", focus)


if __name__ == "__main__":
    main()
