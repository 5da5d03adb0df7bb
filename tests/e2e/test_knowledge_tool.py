"""Knowledge bases attached to an agent, searched by its built-in ``knowledge_search`` tool, on
a real server (SQLite and PostgreSQL) driven by the official SDK, with the fake model provider
calling the tool: the call and its cited result land in the session's log, the next model
request carries the result, the system prompt names the base and the tool, and a base the
agent does not have is an error result, not a failed turn. Also the agent field itself:
versioned, validated, cleared, and still parsed strictly by the SDK."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
from anthropic._models import validate_type
from anthropic.types.beta import BetaManagedAgentsAgent

from tests.e2e.test_skills import files as skill_files
from tests.e2e.test_skills import skill_md
from tests.support.fake_provider import FakeProvider, Reply, Text, ToolUse
from tests.support.postgres import fresh_database
from tests.support.sdk_sessions import idles, say, sdk_client, wait_for
from tests.support.server import running_server
from tests.support.worker_process import running_workers, worker_env

PASSAGE = "Refunds for annual plans are paid back within 14 days to the original card."


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def _base_with_document(http: httpx.Client, name: str, description: str | None = None) -> tuple[str, str]:
    base = _ok(http.post("/v1/knowledge_bases", json={"name": name, "description": description}))
    text = f"# Billing\n\nInvoices are sent on the first of the month.\n\n## Refunds\n\n{PASSAGE}\n"
    document = _ok(
        http.post(f"/v1/knowledge_bases/{base['id']}/documents", json={"text": text, "title": "Billing handbook"})
    )
    deadline = time.monotonic() + 30
    while document["status"] not in ("ready", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        document = _ok(http.get(f"/v1/knowledge_bases/{base['id']}/documents/{document['id']}"))
    assert document["status"] == "ready"
    return base["id"], document["id"]


def _system(body: dict[str, Any]) -> str:
    system = body.get("system") or ""
    return system if isinstance(system, str) else "\n".join(block.get("text", "") for block in system)


def _of_type(events: list[Any], kind: str) -> list[Any]:
    return [event for event in events if event.type == kind]


def test_the_agent_searches_its_knowledge_base_and_the_model_reads_the_cited_passage(
    client: anthropic.Anthropic, http: httpx.Client, fake_provider: FakeProvider
) -> None:
    base_id, document_id = _base_with_document(http, "Billing", "Plans, invoices and refunds")
    other_id, _ = _base_with_document(http, "Not attached")
    agent = client.beta.agents.create(
        name="support",
        model="claude-sonnet-4-6",
        system="Answer billing questions.",
        extra_body={"knowledge_bases": [{"type": "knowledge_base", "knowledge_base_id": base_id}]},
    )
    env = client.beta.environments.create(name="env")
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    # The session pins the field with the agent; the SDK parses it strictly as an extra.
    pinned = client.beta.sessions.with_raw_response.retrieve(session.id)
    assert pinned.parse().agent.model_extra["knowledge_bases"][0]["knowledge_base_id"] == base_id  # type: ignore[index]
    fake_provider.script(
        Reply([ToolUse("knowledge_search", {"query": "how long do refunds take", "limit": 3})]),
        Reply([ToolUse("knowledge_search", {"query": "refunds", "knowledge_base_id": other_id})]),
        Reply([Text("Refunds take 14 days [Billing handbook].")]),
    )
    say(client, session.id, "How long do refunds take?")
    events = wait_for(client, session.id, idles(1))
    assert events[-1].stop_reason.type == "end_turn"
    assert _of_type(events, "session.error") == []

    first = fake_provider.requests[0].body
    offered = {tool["name"]: tool for tool in first["tools"]}
    assert set(offered) == {"knowledge_search"}
    assert offered["knowledge_search"]["input_schema"]["required"] == ["query"]
    system = _system(first)
    assert system.startswith("Answer billing questions.\n\n# Knowledge\n")
    assert "knowledge_search" in system and f"- {base_id} Billing: Plans, invoices and refunds" in system
    assert other_id not in system

    uses = _of_type(events, "agent.tool_use")
    assert [(use.name, use.evaluated_permission) for use in uses] == [("knowledge_search", "allow")] * 2
    results = {result.tool_use_id: result for result in _of_type(events, "agent.tool_result")}
    found = results[uses[0].id]
    assert found.is_error is False
    hit = found.content[0]
    assert hit.type == "search_result"
    assert hit.source.startswith(f"{base_id}/{document_id}#chunk-")
    assert hit.title.startswith("Billing handbook (chunk ")
    assert PASSAGE in hit.content[0].text
    refused = results[uses[1].id]
    assert refused.is_error is True and other_id in refused.content[0].text

    # The second request carries the passage with its source; the third, the refusal.
    second = fake_provider.requests[1].body["messages"][-1]["content"][0]
    assert second["type"] == "tool_result" and second["is_error"] is False
    assert PASSAGE in second["content"][0]["text"] and f"{base_id}/{document_id}#chunk-" in second["content"][0]["text"]
    third = fake_provider.requests[2].body["messages"][-1]["content"][0]
    assert third["is_error"] is True and other_id in third["content"][0]["text"]
    # No worker was asked for anything: the tool ran inside the turn.
    assert len(fake_provider.requests) == 3


def test_the_knowledge_bases_field_is_versioned_checked_and_cleared(
    client: anthropic.Anthropic, http: httpx.Client
) -> None:
    base_id = _ok(http.post("/v1/knowledge_bases", json={"name": "Handbook"}))["id"]
    plain = _ok(http.post("/v1/agents", json={"name": "plain", "model": "claude-sonnet-4-6"}))
    assert "knowledge_bases" not in plain  # an agent made without it looks as the SDK expects

    entry = {"type": "knowledge_base", "knowledge_base_id": base_id, "description": "the team's handbook"}
    updated = _ok(http.post(f"/v1/agents/{plain['id']}", json={"knowledge_bases": [entry]}))
    assert (updated["version"], updated["knowledge_bases"]) == (2, [entry])
    retrieved = client.beta.agents.retrieve(plain["id"])  # strict SDK parsing keeps the extension
    assert retrieved.model_extra == {"knowledge_bases": [entry]}
    validate_type(type_=BetaManagedAgentsAgent, value=updated)
    assert client.beta.agents.retrieve(plain["id"], version=1).model_extra == {}

    missing = http.post(f"/v1/agents/{plain['id']}", json={"knowledge_bases": [{**entry, "knowledge_base_id": "kb_nope"}]})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    twice = http.post(f"/v1/agents/{plain['id']}", json={"knowledge_bases": [entry, entry]})
    assert twice.status_code == 400
    for bad in ([{"type": "file", "knowledge_base_id": base_id}], [entry] * 21, [{**entry, "extra": 1}]):
        assert http.post("/v1/agents", json={"name": "a", "model": "m", "knowledge_bases": bad}).status_code == 400

    cleared = _ok(http.post(f"/v1/agents/{plain['id']}", json={"knowledge_bases": None}))
    assert (cleared["version"], cleared["knowledge_bases"]) == (3, [])


def test_a_deleted_base_is_dropped_from_the_prompt_and_the_tool(
    client: anthropic.Anthropic, http: httpx.Client, fake_provider: FakeProvider
) -> None:
    base_id, _ = _base_with_document(http, "Short-lived")
    agent = client.beta.agents.create(
        name="a", model="claude-sonnet-4-6",
        extra_body={"knowledge_bases": [{"type": "knowledge_base", "knowledge_base_id": base_id}]},
    )  # fmt: skip
    _ok(http.delete(f"/v1/knowledge_bases/{base_id}"))
    env = client.beta.environments.create(name="env")
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    fake_provider.script(Reply([ToolUse("knowledge_search", {"query": "anything"})]), Reply([Text("Nothing there.")]))
    say(client, session.id, "search")
    events = wait_for(client, session.id, idles(1))
    assert "# Knowledge" not in _system(fake_provider.requests[0].body)
    [result] = _of_type(events, "agent.tool_result")
    assert result.is_error is True
    assert events[-1].stop_reason.type == "end_turn"


def test_the_system_prompt_lists_the_agents_skills_with_the_pinned_versions_description(
    client: anthropic.Anthropic, fake_provider: FakeProvider
) -> None:
    skill = client.beta.skills.create(files=skill_files("invoice-tools", skill_md("invoice-tools", "Reads invoices.")))
    client.beta.skills.versions.create(skill.id, files=skill_files("invoice-tools", skill_md("invoice-tools", "Newer.")))
    agent = client.beta.agents.create(
        name="skilled",
        model="claude-sonnet-4-6",
        skills=[
            {"type": "custom", "skill_id": skill.id, "version": skill.latest_version_id},
            {"type": "anthropic", "skill_id": "xlsx"},
        ],
    )
    env = client.beta.environments.create(name="env")
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    fake_provider.script(Reply([Text("ok")]))
    say(client, session.id, "hello")
    wait_for(client, session.id, idles(1))
    system = _system(fake_provider.requests[0].body)
    assert system.startswith("# Skills\n")
    assert system.splitlines()[2:] == ["- invoice-tools: Reads invoices.", "- xlsx"]


def test_an_agentry_worker_process_searches_by_keywords(
    postgres_server_url: str, tmp_path: Path, fake_provider_server: FakeProvider, fake_provider: FakeProvider
) -> None:
    """``AGENTRY_TURNS=workers``: the turn, and so the search, runs in an ``agentry worker``
    process, which reads the keyword index (the vector index stays with the API process)."""
    with fresh_database(postgres_server_url) as url, running_server(tmp_path / "data", url, turns="workers") as server:
        with running_workers(worker_env(url, fake_provider_server), 1):
            with httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=20) as http:
                base_id, document_id = _base_with_document(http, "Billing")
            client = sdk_client(server)
            agent = client.beta.agents.create(
                name="support", model="claude-sonnet-4-6",
                extra_body={"knowledge_bases": [{"type": "knowledge_base", "knowledge_base_id": base_id}]},
            )  # fmt: skip
            env = client.beta.environments.create(name="env")
            session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
            fake_provider.script(Reply([ToolUse("knowledge_search", {"query": "refunds annual plans"})]), Reply([Text("14 days.")]))
            say(client, session.id, "refunds?")
            events = wait_for(client, session.id, idles(1))
    [result] = _of_type(events, "agent.tool_result")
    assert result.is_error is False and result.content[0].source.startswith(f"{base_id}/{document_id}#")
    assert PASSAGE in result.content[0].content[0].text
    assert f"{base_id} Billing" in _system(fake_provider.requests[0].body)
