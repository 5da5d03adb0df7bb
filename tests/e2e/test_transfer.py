"""`agentry export` / `agentry import` between two real servers (SQLite and PostgreSQL): the
workspace's agents, environments, sessions, their event logs seq for seq and the read models
come out the same on the fresh server; another workspace's streams and the API keys stay
behind; no secret travels in clear; a file that disagrees with the target is refused whole;
a re-import changes nothing and a later export brings only what is new."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.fake_provider import FakeProvider
from tests.support.postgres import fresh_database
from tests.support.sdk_sessions import eventually
from tests.support.server import RunningServer, provider_settings, run_cli, running_server

CREDENTIAL_TOKEN = "bearer-token-that-must-stay-secret-0002"
WORKSPACE_HEADER = "anthropic-workspace-id"


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 202), response.text
    return response.json()


def _all(http: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    page = None
    while True:
        body = _ok(http.get(path, params={"limit": 100, **params, **({"page": page} if page else {})}))
        found += body["data"]
        page = body.get("next_page")
        if not page:
            return found


def _wait_idle(http: httpx.Client, session: str, count: int) -> None:
    def idle_enough() -> bool:
        events = _ok(http.get(f"/v1/sessions/{session}/events", params={"limit": 1000}))["data"]
        return sum(event["type"] == "session.status_idle" for event in events) >= count

    assert eventually(idle_enough, timeout=20), f"session {session} did not go idle"


def _workload(http: httpx.Client, fake: FakeProvider) -> dict[str, Any]:
    agent = _ok(http.post("/v1/agents", json={"name": "Researcher", "model": "claude-sonnet-4-6"}))["id"]
    _ok(http.post(f"/v1/agents/{agent}", json={"version": 1, "name": "Researcher 2", "system": "be brief"}))
    second = _ok(http.post("/v1/agents", json={"name": "Writer", "model": "claude-sonnet-4-6"}))["id"]
    environment = _ok(http.post("/v1/environments", json={"name": "env"}))["id"]
    sessions = []
    for number, who in enumerate((agent, second, agent)):
        session = _ok(http.post("/v1/sessions", json={"agent": who, "environment_id": environment}))["id"]
        for turn in range(number + 1):
            message = {"type": "user.message", "content": [{"type": "text", "text": f"question {turn} of {number}"}]}
            _ok(http.post(f"/v1/sessions/{session}/events", json={"events": [message]}))
            _wait_idle(http, session, turn + 1)
        sessions.append(session)
    vault = _ok(http.post("/v1/vaults", json={"display_name": "Keys"}))["id"]
    credential = {"auth": {"type": "static_bearer", "mcp_server_url": "https://mcp.example.test/mcp", "token": CREDENTIAL_TOKEN}}
    _ok(http.post(f"/v1/vaults/{vault}/credentials", json=credential))
    card = _ok(
        http.post(
            "/v1/model_cards",
            json={
                "model_id": "fast-chat",
                "provider": "oai-compatible",
                "model": "fake-model",
                "api_key": PROVIDER_KEY,
                "base_url": fake.openai_base_url,
            },
        )
    )["id"]
    _ok(http.post("/v1/organizations/api_keys", json={"name": "ci", "role": "member"}))
    return {"agents": [agent, second], "environment": environment, "sessions": sessions, "vault": vault, "card": card}


# What the two servers must agree on: the lists (read models) and, per item, what the
# aggregates say.
LISTS = ["/v1/agents", "/v1/environments", "/v1/sessions", "/v1/vaults", "/v1/model_cards"]


def _picture(http: httpx.Client, made: dict[str, Any]) -> dict[str, Any]:
    picture: dict[str, Any] = {path: _all(http, path) for path in LISTS}
    for agent in made["agents"]:
        picture[agent] = _ok(http.get(f"/v1/agents/{agent}"))
        picture[agent + "/versions"] = _all(http, f"/v1/agents/{agent}/versions")
    for session in made["sessions"]:
        picture[session] = _ok(http.get(f"/v1/sessions/{session}"))
        picture[session + "/events"] = _ok(http.get(f"/v1/sessions/{session}/events", params={"limit": 1000}))["data"]
    picture["activity"] = [
        entry for entry in _all(http, "/v1/activity") if entry["entity_type"] not in ("api_key", "model_handle")
    ]
    return picture


@contextmanager
def _fresh_server(source: RunningServer, request: pytest.FixtureRequest, where: Path, fake: FakeProvider) -> Iterator[RunningServer]:
    if source.settings.database_url:
        with fresh_database(request.getfixturevalue("postgres_server_url")) as url:
            with running_server(where, url, **provider_settings(fake)) as target:
                yield target
    else:
        with running_server(where, "", **provider_settings(fake)) as target:
            yield target


def _store_kind(server: RunningServer) -> str:
    return "postgresql" if server.settings.database_url else "sqlite"


def _lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as source:
        return source.read().splitlines(keepends=True)


def _write_gz(path: Path, lines: list[bytes]) -> None:
    with gzip.open(path, "wb") as out:
        out.writelines(lines)


def test_an_export_imported_into_a_fresh_server_gives_the_same_workspace(
    server: RunningServer, http: httpx.Client, fake_provider: FakeProvider, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    made = _workload(http, fake_provider)
    # Another workspace's agent must stay behind.
    other = _ok(http.post("/v1/organizations/workspaces", json={"name": "Other"}))["id"]
    elsewhere = _ok(http.post("/v1/agents", json={"name": "Elsewhere", "model": "m"}, headers={WORKSPACE_HEADER: other}))["id"]
    assert server.platform.projections.wait_for(server.platform.store.max_notification_id(), 10)
    before = _picture(http, made)
    assert len(before["/v1/agents"]) == 2 and len(before["/v1/sessions"]) == 3 and len(before["/v1/model_cards"]) == 1
    assert [len(before[session + "/events"]) > 4 for session in made["sessions"]] == [True] * 3

    exported = run_cli(server.settings, "export", "--workspace", "default", "--output", str(tmp_path / "default.jsonl.gz"), "--json")
    assert exported.returncode == 0, exported.stderr
    summary = json.loads(exported.stdout)
    assert summary["workspace"] == "default" and summary["events"] > 0
    assert summary["types"]["Agent"] == 2 and summary["types"]["Session"] == 3 and summary["types"]["Environment"] == 1
    assert "ApiKey" not in summary["types"] and summary["skipped_streams"] >= 2  # the bootstrap key and "ci"

    lines = _lines(tmp_path / "default.jsonl.gz")
    head = json.loads(lines[0])
    assert head["format"] == "agentry-events" and head["format_version"] == 1 and head["events"] == len(lines) - 1
    assert head["source"]["store"] == _store_kind(server) and head["source"]["agentry"]
    text = b"".join(lines).decode()
    assert elsewhere not in text and other not in text
    assert CREDENTIAL_TOKEN not in text and PROVIDER_KEY not in text  # sealed: ciphertext only
    positions = [json.loads(line)["position"] for line in lines[1:]]
    assert positions == sorted(positions), "in the source's global order"

    # The other workspace alone, for contrast.
    only_other = run_cli(server.settings, "export", "--workspace", other, "-o", str(tmp_path / "other.jsonl"), "--json")
    assert only_other.returncode == 0, only_other.stderr
    assert json.loads(only_other.stdout)["types"] == {"Agent": 1, "Workspace": 1}

    with _fresh_server(server, request, tmp_path / "target", fake_provider) as target:
        imported = run_cli(target.settings, "import", str(tmp_path / "default.jsonl.gz"), "--json")
        assert imported.returncode == 0, imported.stderr
        outcome = json.loads(imported.stdout)
        assert outcome["written"] == summary["events"] and outcome["already_present"] == 0
        assert outcome["projections_position"] == target.platform.store.max_notification_id()

        with httpx.Client(base_url=target.base_url, headers={"x-api-key": target.api_key}, timeout=20) as copy:
            after = _picture(copy, made)
            for key, value in before.items():
                assert after[key] == value, key
            for session in made["sessions"]:
                seqs = [event["seq"] for event in after[session + "/events"]]
                assert seqs == list(range(1, len(seqs) + 1))
            assert copy.get(f"/v1/agents/{elsewhere}").status_code == 404

            # Again: nothing new, nothing written.
            again = run_cli(target.settings, "import", str(tmp_path / "default.jsonl.gz"), "--json")
            assert again.returncode == 0, again.stderr
            assert json.loads(again.stdout)["written"] == 0
            assert json.loads(again.stdout)["already_present"] == summary["events"]

            # The source goes on; a later export disagreeing with the target on one event is
            # refused whole (its new agent is not written either).
            newer = _ok(http.post("/v1/agents", json={"name": "Newer", "model": "m"}))["id"]
            later = run_cli(server.settings, "export", "-o", str(tmp_path / "later.jsonl.gz"), "--quiet")
            assert later.returncode == 0 and later.stdout == "", later.stderr
            later_lines = _lines(tmp_path / "later.jsonl.gz")
            tampered = [line.replace(b"Researcher 2", b"Researcher 3") for line in later_lines]
            assert tampered != later_lines
            _write_gz(tmp_path / "tampered.jsonl.gz", tampered)
            head_before = target.platform.store.max_notification_id()
            refused = run_cli(target.settings, "import", str(tmp_path / "tampered.jsonl.gz"))
            assert refused.returncode == 2
            assert refused.stderr.count("\n") == 1 and "differs" in refused.stderr, refused.stderr
            assert target.platform.store.max_notification_id() == head_before
            assert copy.get(f"/v1/agents/{newer}").status_code == 404

            # Cut short: refused too.
            _write_gz(tmp_path / "cut.jsonl.gz", later_lines[:-1])
            cut = run_cli(target.settings, "import", str(tmp_path / "cut.jsonl.gz"))
            assert cut.returncode == 2 and "cut short" in cut.stderr, cut.stderr

            # The untampered one brings only what is new.
            brought = run_cli(target.settings, "import", str(tmp_path / "later.jsonl.gz"), "--json")
            assert brought.returncode == 0, brought.stderr
            assert json.loads(brought.stdout)["already_present"] == summary["events"]
            assert json.loads(brought.stdout)["written"] == len(later_lines) - 1 - summary["events"]
            assert _ok(copy.get(f"/v1/agents/{newer}"))["name"] == "Newer"


def test_json_outputs_of_the_operator_commands_parse(server: RunningServer, tmp_path: Path) -> None:
    status = run_cli(server.settings, "projections", "status", "--json")
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["head"] >= 1 and document["projections"]["agents"]["behind"] >= 0
    assert "vectors" in document["projections"]

    rebuilt = run_cli(server.settings, "projections", "rebuild", "agents", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["rebuilt"]["agents"]["position"] >= 1

    created = run_cli(server.settings, "api-keys", "create", "--name", "script", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["id"].startswith("apikey_") and key["key"].startswith("agentry-") and key["workspace_id"] == "default"
    assert httpx.get(f"{server.base_url}/v1/agents", headers={"x-api-key": key["key"]}).status_code == 200

    person = run_cli(server.settings, "users", "create", "--email", "ops@example.test", "--json", AGENTRY_USER_PASSWORD="long enough pw 1")
    assert person.returncode == 0, person.stderr
    assert json.loads(person.stdout)["email"] == "ops@example.test"

    environment = _ok(httpx.post(f"{server.base_url}/v1/environments", json={"name": "e"}, headers={"x-api-key": key["key"]}))
    worker_key = run_cli(server.settings, "environments", "keys", "create", environment["id"], "--json")
    assert worker_key.returncode == 0, worker_key.stderr
    assert json.loads(worker_key.stdout)["environment_id"] == environment["id"] and worker_key.stderr == ""

    if not server.settings.database_url:  # embedded: the command makes the new root itself
        rotated = run_cli(server.settings, "secrets", "rotate-root", "--json")
        assert rotated.returncode == 0, rotated.stderr
        assert json.loads(rotated.stdout)["root_file_replaced"] is True

    missing = run_cli(server.settings, "import", str(tmp_path / "nothing.jsonl"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    (tmp_path / "not-an-export.jsonl").write_text('{"hello": 1}\n')
    wrong = run_cli(server.settings, "import", str(tmp_path / "not-an-export.jsonl"), "--json")
    assert wrong.returncode == 2 and "not an Agentry export" in wrong.stderr and wrong.stdout == ""


PASSPHRASE = "correct horse battery staple 42"


def _completion(base_url: str, api_key: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/chat/completions",
        headers={"x-api-key": api_key},
        json={"model": "fast-chat", "messages": [{"role": "user", "content": "Hello"}]},
        timeout=20,
    )


def test_with_secrets_the_data_keys_travel_wrapped_under_the_passphrase(
    server: RunningServer, http: httpx.Client, fake_provider: FakeProvider, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    _ok(
        http.post(
            "/v1/model_cards",
            json={"model_id": "fast-chat", "provider": "oai-compatible", "model": "fake-model", "api_key": PROVIDER_KEY,
                  "base_url": fake_provider.openai_base_url},
        )
    )  # fmt: skip
    assert _completion(server.base_url, server.api_key).status_code == 200

    short = run_cli(server.settings, "export", "--with-secrets", "-o", str(tmp_path / "x.jsonl"), AGENTRY_EXPORT_PASSPHRASE="short")
    assert short.returncode == 2 and "AGENTRY_EXPORT_PASSPHRASE" in short.stderr
    assert not (tmp_path / "x.jsonl").exists()
    exported = run_cli(
        server.settings, "export", "--with-secrets", "-o", str(tmp_path / "x.jsonl"), "--json", AGENTRY_EXPORT_PASSPHRASE=PASSPHRASE
    )
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["data_keys"] == 1
    text = (tmp_path / "x.jsonl").read_text()
    assert PROVIDER_KEY not in text and PASSPHRASE not in text

    with _fresh_server(server, request, tmp_path / "target", fake_provider) as target:
        wrong = run_cli(target.settings, "import", str(tmp_path / "x.jsonl"), AGENTRY_EXPORT_PASSPHRASE="not the passphrase at all")
        assert wrong.returncode == 2 and "does not open" in wrong.stderr, wrong.stderr
        assert httpx.get(f"{target.base_url}/v1/model_cards", headers={"x-api-key": target.api_key}).json()["data"] == []

        # Without the passphrase the events come, the key does not: the card's secret is shut.
        plain = run_cli(target.settings, "import", str(tmp_path / "x.jsonl"), "--json")
        assert plain.returncode == 0 and "stay behind" in plain.stderr, plain.stderr
        assert json.loads(plain.stdout)["data_keys"] is None
        shut = _completion(target.base_url, target.api_key)
        assert shut.status_code == 502 and "has no data key" in shut.json()["error"]["message"], shut.text

        imported = run_cli(target.settings, "import", str(tmp_path / "x.jsonl"), "--json", AGENTRY_EXPORT_PASSPHRASE=PASSPHRASE)
        assert imported.returncode == 0, imported.stderr
        assert json.loads(imported.stdout)["data_keys"] == 1 and json.loads(imported.stdout)["written"] == 0
        fake_provider.requests.clear()
        answered = _completion(target.base_url, target.api_key)
        assert answered.status_code == 200, answered.text
        assert fake_provider.requests and fake_provider.requests[-1].protocol == "openai"


def test_a_file_the_target_cannot_read_is_refused_whole(
    server: RunningServer, http: httpx.Client, fake_provider: FakeProvider, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    agent = _ok(http.post("/v1/agents", json={"name": "Kept", "model": "m"}))["id"]
    exported = run_cli(server.settings, "export", "-o", str(tmp_path / "good.jsonl.gz"), "--quiet")
    assert exported.returncode == 0, exported.stderr
    good = _lines(tmp_path / "good.jsonl.gz")
    head = json.loads(good[0])
    assert head["source"]["store"] == _store_kind(server), head["source"]

    # A byte flipped early in the compressed stream.
    damaged = bytearray((tmp_path / "good.jsonl.gz").read_bytes())
    damaged[40] ^= 0xFF
    (tmp_path / "damaged.jsonl.gz").write_bytes(bytes(damaged))
    # An event of no class the target knows (it would stop the target's read models).
    unknown = {"stream_id": "7d3f5f80-0f39-4b59-9d6b-3c9d1f2a8e11", "version": 1, "topic": "domain.agents:Agent.NoSuchEvent",
               "position": 1, "state": json.dumps({"tenant_id": "default", "timestamp": {"_type_": "datetime_iso",
                                                   "_data_": "2026-01-01T00:00:00+00:00"}})}  # fmt: skip
    (tmp_path / "unknown.jsonl").write_bytes(
        json.dumps({**head, "events": 1, "streams": 1}).encode() + b"\n" + json.dumps(unknown).encode() + b"\n"
    )
    # A format from a newer Agentry.
    _write_gz(tmp_path / "newer.jsonl.gz", [json.dumps({**head, "format_version": 2}).encode() + b"\n", *good[1:]])

    with _fresh_server(server, request, tmp_path / "target", fake_provider) as target:
        head_before = target.platform.store.max_notification_id()
        for name, says in (
            ("damaged.jsonl.gz", "import refused"),
            ("unknown.jsonl", "Agent.NoSuchEvent) does not decode here"),
            ("newer.jsonl.gz", "is newer than this Agentry reads"),
        ):
            refused = run_cli(target.settings, "import", str(tmp_path / name))
            assert refused.returncode == 2, (name, refused.stderr)
            assert refused.stderr.count("\n") == 1 and says in refused.stderr, (name, refused.stderr)
            assert target.platform.store.max_notification_id() == head_before, name
        imported = run_cli(target.settings, "import", str(tmp_path / "good.jsonl.gz"), "--json")
        assert imported.returncode == 0, imported.stderr
        copy = httpx.get(f"{target.base_url}/v1/agents/{agent}", headers={"x-api-key": target.api_key})
        assert copy.status_code == 200 and copy.json()["name"] == "Kept"
