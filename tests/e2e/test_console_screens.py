"""The console's operations screens in a real browser (Playwright driving Debian's chromium,
headless) against a real server (SQLite): a person signed in with an API key creates a model
card with the provider check off and sees only the key's preview; creates a vault and a
credential whose secret is never shown; creates an API key and sees it once; creates a memory
store and a memory and finds it by meaning; uploads a knowledge document and sees it indexed;
sees the dashboard's charts after some work; and watches the unread count in the nav follow new
notifications and reads (over the live stream, by polling when the stream cannot connect, and,
signed in as a person, their own mentions). Every write is also checked through the API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser import chromium, console_tab, use_api_key
from tests.support.event_validation import stored_event_problems
from tests.support.fake_provider import FakeProvider, Reply, Text
from tests.support.sdk_sessions import idles, say, sdk_client, wait_for
from tests.support.server import RunningServer, provider_settings, running_server

MODEL = "claude-sonnet-4-6"
# Waits for what the page does on its own (indexing, the live stream): generous, never a pause.
SLOW = 60_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake_provider_server: FakeProvider) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("console-screens") / "data"
    with running_server(data, "", **provider_settings(fake_provider_server)) as running:
        yield running
        checked, problems = stored_event_problems(running.platform.store)
        assert checked > 0 and not problems, "\n".join(problems[:50])


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@contextmanager
def _signed_in(browser: Any, server: RunningServer, *, dropped: list[str] | None = None) -> Iterator[Any]:
    """A fresh tab signed in with the server's API key; fails on any script error in the page.
    With ``dropped``, every request for the notification stream fails as a dropped network
    would, and is listed there."""
    with console_tab(browser, locale="en-US", timezone_id="UTC") as tab:
        if dropped is not None:

            def drop(route: Any) -> None:
                dropped.append(route.request.url)
                route.abort("connectionreset")

            tab.context.route("**/v1/notifications/stream*", drop)
        use_api_key(tab, server.api_key, f"{server.base_url}/console")
        expect(tab.locator('a[data-nav="dashboard"]')).to_be_visible()
        yield tab


@pytest.fixture
def page(browser: Any, server: RunningServer) -> Iterator[Any]:
    with _signed_in(browser, server) as tab:
        yield tab


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _open(page: Any, hash_path: str, screen: str) -> Any:
    page.evaluate("hash => { window.location.hash = hash; }", hash_path)
    root = page.locator(f'[data-screen="{screen}"]')
    expect(root).to_have_attribute("data-loaded", "true")
    return root


def _row(root: Any, text: str) -> Any:
    return root.locator("tr", has_text=text)


def test_a_model_card_made_with_the_check_off_shows_only_the_key_preview(page: Any, http: httpx.Client) -> None:
    secret = "sk-console-cleartext-key-7f3a91"
    root = _open(page, "#/model_cards", "model_cards")
    root.locator('[data-action="create"]').click()
    form = root.locator('[data-role="create-form"]')
    form.locator('[name="model_id"]').fill("house-model")
    form.locator('[name="provider"]').select_option("oai-compatible")
    form.locator('[name="base_url"]').fill("http://127.0.0.1:9/v1")
    key_input = form.locator('[name="api_key"]')
    assert key_input.get_attribute("type") == "password"
    key_input.fill(secret)
    form.get_by_label("skip the provider check").check()
    form.locator('[data-action="save"]').click()

    row = _row(root, "house-model")
    expect(row.locator('[data-role="key-preview"]')).to_have_text("…3a91")
    expect(form).to_have_count(0)
    assert secret not in page.content()
    (card,) = [c for c in _ok(http.get("/v1/model_cards"))["data"] if c["model_id"] == "house-model"]
    assert card["probe"]["ok"] is None and card["api_key_preview"] == secret[-4:]

    # The same handle again: the server's refusal, in words, and still no key on the page.
    root.locator('[data-action="create"]').click()
    form.locator('[name="model_id"]').fill("house-model")
    form.locator('[name="api_key"]').fill(secret)
    form.get_by_label("skip the provider check").check()
    form.locator('[data-action="save"]').click()
    banner = page.locator('[data-role="error"]')
    expect(banner).to_be_visible()
    assert "house-model" in banner.inner_text() and "{" not in banner.inner_text()
    assert secret not in page.content()
    root.locator('[data-action="cancel"]').click()

    # Rotating the key: the new one is sent, the preview follows, neither key is shown.
    rotated = "sk-console-rotated-key-0c55e2"
    row.locator('[data-action="edit"]').click()
    edit = root.locator('[data-role="edit-form"]')
    edit.locator('[name="api_key"]').fill(rotated)
    edit.get_by_label("skip the provider check").check()
    edit.locator('[data-action="save"]').click()
    expect(row.locator('[data-role="key-preview"]')).to_have_text("…55e2")
    html = page.content()
    assert secret not in html and rotated not in html
    assert _ok(http.get(f"/v1/model_cards/{card['id']}"))["api_key_preview"] == rotated[-4:]

    row.locator('[data-action="delete"]').click()
    row.locator('[data-action="confirm-delete"]').click()
    expect(_row(root, "house-model")).to_have_count(0)
    assert http.get(f"/v1/model_cards/{card['id']}").status_code == 404


def test_a_vault_credential_secret_is_entered_and_never_shown(page: Any, http: httpx.Client) -> None:
    token = "tok-console-cleartext-5d1e0b77"
    root = _open(page, "#/vaults", "vaults")
    root.locator('[data-action="create"]').click()
    root.locator('[data-role="create-form"] [name="display_name"]').fill("Deploy secrets")
    root.locator('[data-role="create-form"] [data-action="save"]').click()
    page.wait_for_url(re.compile(r"#/vaults/vlt"))
    expect(root.locator("h1")).to_contain_text("Deploy secrets")
    vault_id = page.evaluate("() => window.location.hash.split('/')[2]")

    root.locator('[data-action="add-credential"]').click()
    form = root.locator('[data-role="credential-form"]')
    form.locator('[name="display_name"]').fill("GitHub MCP")
    form.locator('[name="type"]').select_option("static_bearer")
    form.locator('[name="mcp_server_url"]').fill("https://mcp.example.com/sse")
    assert form.locator('[name="token"]').get_attribute("type") == "password"
    form.locator('[name="token"]').fill(token)
    form.locator('[data-action="save"]').click()
    row = _row(root, "GitHub MCP")
    expect(row).to_contain_text("https://mcp.example.com/sse")
    expect(row.locator('[data-role="secret-hidden"]')).to_have_text("write-only")
    assert token not in page.content()

    # An environment variable: its name is public, its value is not.
    value = "env-console-cleartext-9a8b7c"
    root.locator('[data-action="add-credential"]').click()
    form.locator('[name="type"]').select_option("environment_variable")
    form.locator('[name="display_name"]').fill("Deploy token")
    form.locator('[name="secret_name"]').fill("DEPLOY_TOKEN")
    form.locator('[name="secret_value"]').fill(value)
    form.locator('[name="networking"]').select_option("limited")
    form.locator('[name="allowed_hosts"]').fill("api.example.com")
    form.locator('[data-action="save"]').click()
    expect(_row(root, "Deploy token")).to_contain_text("$DEPLOY_TOKEN")
    assert value not in page.content()

    rotated = "tok-console-rotated-31c0aa"
    row.locator('[data-action="rotate"]').click()
    root.locator('[data-role="rotate-form"] [name="token"]').fill(rotated)
    root.locator('[data-role="rotate-form"] [data-action="save"]').click()
    expect(root.locator('[data-role="rotate-form"]')).to_have_count(0)
    expect(page.locator('[data-role="notice"]')).to_contain_text("Credential saved")
    html = page.content()
    assert token not in html and rotated not in html and value not in html

    credentials = _ok(http.get(f"/v1/vaults/{vault_id}/credentials"))["data"]
    assert sorted(c["display_name"] for c in credentials) == ["Deploy token", "GitHub MCP"]
    for credential in credentials:
        assert not {"token", "secret_value"} & set(credential["auth"])


def test_a_new_api_key_is_shown_once_and_works_until_revoked(
    page: Any, server: RunningServer, http: httpx.Client
) -> None:
    root = _open(page, "#/api_keys", "api_keys")
    root.locator('[data-action="create"]').click()
    form = root.locator('[data-role="create-form"]')
    form.locator('[name="name"]').fill("ci pipeline")
    form.locator('[data-action="save"]').click()
    once = root.locator('[data-role="once-secret"]')
    expect(once).to_be_visible()
    key = once.locator("code").inner_text().strip()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    once.locator('[data-action="copy"]').click()
    expect(once.locator('[data-action="copy"]')).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == key
    assert len(key) >= 20
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": key}, timeout=20) as as_new:
        assert as_new.get("/v1/agents").status_code == 200
    row = _row(root, "ci pipeline")
    expect(row).to_contain_text("active")

    # Once: dismissed, or the screen left and opened again, the key is nowhere on the page.
    _open(page, "#/dashboard", "dashboard")
    root = _open(page, "#/api_keys", "api_keys")
    expect(_row(root, "ci pipeline")).to_be_visible()
    expect(root.locator('[data-role="once-secret"]')).to_have_count(0)
    assert key not in page.content()

    row = _row(root, "ci pipeline")
    row.locator('[data-action="revoke"]').click()
    row.locator('[data-action="confirm-revoke"]').click()
    expect(_row(root, "ci pipeline")).to_have_count(0)  # the list shows active keys
    root.locator('[data-role="status-filter"]').select_option("inactive")
    expect(_row(root, "ci pipeline")).to_contain_text("inactive")
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": key}, timeout=20) as as_new:
        assert as_new.get("/v1/agents").status_code == 401
    (listed,) = [
        k
        for k in _ok(http.get("/v1/organizations/api_keys", params={"status": "inactive"}))["data"]
        if k["name"] == "ci pipeline"
    ]
    assert listed["status"] == "inactive"


def test_a_memory_is_found_by_meaning(page: Any, server: RunningServer) -> None:
    root = _open(page, "#/memory", "memory")
    root.locator('[data-action="create"]').click()
    root.locator('[data-role="create-form"] [name="name"]').fill("Team notes")
    root.locator('[data-role="create-form"] [data-action="save"]').click()
    page.wait_for_url(re.compile(r"#/memory/"))
    expect(root.locator("h1")).to_contain_text("Team notes")
    for path, content in (
        ("/pets/cats.md", "Cats purr and chase mice around the house."),
        ("/finance/q3.md", "Quarterly revenue grew by twelve percent."),
    ):
        root.locator('[data-action="add-memory"]').click()
        form = root.locator('[data-role="memory-form"]')
        form.locator('[name="path"]').fill(path)
        form.locator('[name="content"]').fill(content)
        form.locator('[data-action="save"]').click()
        expect(root.locator('[data-role="memories"]')).to_contain_text(path)

    # Indexing follows the log on its own: wait for it to reach the last write.
    vectors = server.platform.services.vectors
    assert vectors is not None and vectors.wait_for(server.platform.store.max_notification_id(), 120)
    search = root.locator('[data-role="search-form"]')
    search.locator('[name="query"]').fill("a feline pet that hunts rodents")
    search.locator('[data-action="search"]').click()
    first = root.locator('[data-role="search-results"] tbody tr').first
    expect(first).to_contain_text("/pets/cats.md")
    expect(root.locator('[data-role="search-results"] tbody tr')).to_have_count(2)

    root.locator('[data-role="memories"] a', has_text="/pets/cats.md").click()
    expect(root.locator('[data-role="memory"] pre')).to_have_text("Cats purr and chase mice around the house.")


def test_an_uploaded_document_shows_its_status_and_is_searchable(page: Any, http: httpx.Client) -> None:
    root = _open(page, "#/knowledge", "knowledge")
    root.locator('[data-action="create"]').click()
    root.locator('[data-role="create-form"] [name="name"]').fill("Runbooks")
    root.locator('[data-role="create-form"] [data-action="save"]').click()
    page.wait_for_url(re.compile(r"#/knowledge/kb_"))
    base_id = page.evaluate("() => window.location.hash.split('/')[2]")
    markdown = (
        "# Backups\n\nThe nightly database backup runs at 02:00 UTC and keeps dumps for 30 days.\n\n"
        "## Restore\n\nTo restore, stop the API and load the dump with pg_restore.\n"
    )
    upload = root.locator('[data-role="upload-form"]')
    upload.locator('input[type="file"]').set_input_files(
        {"name": "runbook.md", "mimeType": "text/markdown", "buffer": markdown.encode()}
    )
    upload.locator('[name="title"]').fill("Backup runbook")
    upload.locator('[data-action="upload"]').click()
    row = _row(root, "Backup runbook")
    expect(row).to_contain_text("runbook.md")
    # The page re-reads the documents until indexing ends: ready, not pending.
    expect(row.locator('[data-role="doc-status"]')).to_have_attribute("data-status", "ready", timeout=SLOW)
    (document,) = _ok(http.get(f"/v1/knowledge_bases/{base_id}/documents"))["data"]
    assert (
        document["status"] == "ready"
        and document["title"] == "Backup runbook"
        and document["media_type"] == "text/markdown"
    )

    search = root.locator('[data-role="search-form"]')
    search.locator('[name="query"]').fill("pg_restore")
    search.locator('[name="mode"]').select_option("keyword")
    search.locator('[data-action="search"]').click()
    expect(root.locator('[data-role="search-results"] tbody tr').first).to_contain_text("pg_restore")

    # A file the server refuses: its error envelope in words.
    upload.locator('input[type="file"]').set_input_files(
        {"name": "empty.md", "mimeType": "text/markdown", "buffer": b""}
    )
    upload.locator('[data-action="upload"]').click()
    expect(page.locator('[data-role="error"]')).to_contain_text("Not accepted")


def test_the_dashboard_charts_work_sessions_cost_and_tokens(
    request: pytest.FixtureRequest, server: RunningServer, http: httpx.Client, fake_provider: FakeProvider
) -> None:
    client = sdk_client(server)
    agent = client.beta.agents.create(name="Charted agent", model=MODEL)
    environment = client.beta.environments.create(name="charts")
    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    fake_provider.script(Reply([Text("charted")], usage={"input_tokens": 1200, "output_tokens": 300}))
    say(client, session.id, "hello")
    wait_for(client, session.id, idles(1))
    for title, status in (("Draft the plan", None), ("Ship it", "done")):
        task = _ok(http.post("/v1/tasks", json={"title": title}))
        if status:
            _ok(http.post(f"/v1/tasks/{task['id']}", json={"status": status}))
    server.platform.projections.catch_up()

    stats = _ok(http.get("/v1/dashboard/stats"))
    assert stats["sessions"]["total"] >= 1 and stats["tasks"]["by_status"].get("done", 0) >= 1
    page = request.getfixturevalue("page")  # signed in after the work: the landing screen shows it
    expect(page).to_have_url(re.compile(r"#/dashboard$"))
    root = _open(page, "#/dashboard", "dashboard")
    expect(root.locator('[data-role="sessions-total"] .tile-value')).to_have_text(str(stats["sessions"]["total"]))
    expect(root.locator('[data-role="sessions-running"] .tile-value')).to_have_text(str(stats["sessions"]["running"]))
    tasks_chart = root.locator('[data-chart="tasks-by-status"]')
    expect(tasks_chart.locator("svg rect")).not_to_have_count(0)
    expect(tasks_chart).to_contain_text("done")
    for chart in (
        "cost-per-day",
        "tokens-per-day",
        "cost-per-agent",
        "tokens-per-agent",
        "cost-per-model",
        "tokens-per-model",
    ):
        expect(root.locator(f'[data-chart="{chart}"] svg')).to_be_visible()
    expect(root.locator('[data-chart="tokens-per-agent"]')).to_contain_text("Charted agent")
    expect(root.locator('[data-chart="tokens-per-model"]')).to_contain_text(MODEL)
    expect(root.locator('[data-chart="tokens-per-model"]')).to_contain_text("1,500")
    # 1200 tokens in at $3 and 300 out at $15 a million: 8100 micro-dollars.
    expect(root.locator('[data-chart="cost-per-model"]')).to_contain_text("$0.0081")
    expect(root.locator('[data-chart="cost-per-agent"]')).to_contain_text("Charted agent")

    # Refresh reads the numbers again.
    total = stats["tasks"]["total"]
    expect(root.locator('[data-role="tasks-total"] .tile-value')).to_have_text(str(total))
    _ok(http.post("/v1/tasks", json={"title": "One more"}))
    server.platform.projections.catch_up()
    root.locator('[data-action="refresh"]').click()
    expect(root.locator('[data-role="tasks-total"] .tile-value')).to_have_text(str(total + 1))


def test_the_unread_count_in_the_nav_follows_new_notifications_and_reads(page: Any, http: httpx.Client) -> None:
    counter = page.locator('a[data-nav="notifications"] [data-role="unread-count"]')
    before = int(_ok(http.get("/v1/notifications/unread_count"))["unread_count"])
    expect(counter).to_have_attribute("data-count", str(before))

    # Work finished elsewhere: the stream brings it, the count in the nav goes up.
    task = _ok(http.post("/v1/tasks", json={"title": "Rotate the certificates"}))
    _ok(http.post(f"/v1/tasks/{task['id']}", json={"status": "done"}))
    expect(counter).to_have_attribute("data-count", str(before + 1), timeout=SLOW)
    expect(counter).to_be_visible()

    root = _open(page, "#/notifications", "notifications")
    row = _row(root, "Rotate the certificates")
    expect(row).to_be_visible()
    row.locator('[data-action="mark-read"]').click()
    expect(row.locator('[data-action="mark-read"]')).to_have_count(0)
    expect(counter).to_have_attribute("data-count", str(before))

    # Another arrives while the list is open: the list and the count both show it.
    second = _ok(http.post("/v1/tasks", json={"title": "Renew the domain"}))
    _ok(http.post(f"/v1/tasks/{second['id']}", json={"status": "done"}))
    expect(_row(root, "Renew the domain")).to_be_visible(timeout=SLOW)
    expect(counter).to_have_attribute("data-count", str(before + 1), timeout=SLOW)

    root.locator('[data-action="read-all"]').click()
    expect(counter).to_have_attribute("data-count", "0")
    expect(counter).to_be_hidden()
    assert _ok(http.get("/v1/notifications/unread_count"))["unread_count"] == 0


def test_without_the_stream_the_unread_count_is_polled(browser: Any, server: RunningServer, http: httpx.Client) -> None:
    dropped: list[str] = []
    with _signed_in(browser, server, dropped=dropped) as tab:
        counter = tab.locator('a[data-nav="notifications"] [data-role="unread-count"]')
        before = int(_ok(http.get("/v1/notifications/unread_count"))["unread_count"])
        expect(counter).to_have_attribute("data-count", str(before))
        task = _ok(http.post("/v1/tasks", json={"title": "Polled, not streamed"}))
        _ok(http.post(f"/v1/tasks/{task['id']}", json={"status": "done"}))
        expect(counter).to_have_attribute("data-count", str(before + 1), timeout=SLOW)
    assert dropped, "the page never asked for the stream"


def test_a_person_signed_in_sees_their_own_mentions_counted(
    browser: Any, server: RunningServer, http: httpx.Client
) -> None:
    email, password = "ann@example.test", "ann-console-password-1"
    invite = _ok(http.post("/v1/organizations/invites", json={"email": email, "role": "developer"}))
    _ok(http.post("/v1/auth/invites/accept", json={"token": invite["token"], "password": password, "name": "Ann"}))
    token = _ok(http.post("/v1/auth/login", json={"email": email, "password": password}))["access_token"]
    with console_tab(browser, locale="en-US", timezone_id="UTC") as tab:
        tab.goto(f"{server.base_url}/console")
        tab.locator("input[name=email]").fill(email)
        tab.locator("input[name=password]").fill(password)
        tab.locator('[data-action="sign-in"]').click()
        counter = tab.locator('a[data-nav="notifications"] [data-role="unread-count"]')
        with httpx.Client(base_url=server.base_url, headers={"authorization": f"Bearer {token}"}) as as_ann:
            before = int(_ok(as_ann.get("/v1/notifications/unread_count"))["unread_count"])
        expect(counter).to_have_attribute("data-count", str(before))

        (suggestion,) = _ok(http.get("/v1/mentions/search", params={"q": "Ann"}))["data"][:1]
        task = _ok(http.post("/v1/tasks", json={"title": "Check the rollout"}))
        _ok(http.post(f"/v1/tasks/{task['id']}/comments", json={"content": f"@{suggestion['handle']} please check"}))
        expect(counter).to_have_attribute("data-count", str(before + 1), timeout=SLOW)
        root = _open(tab, "#/notifications", "notifications")
        expect(_row(root, "Check the rollout")).to_contain_text("mentioned you")
