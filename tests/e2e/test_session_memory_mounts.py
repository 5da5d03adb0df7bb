"""Memory stores, skills and files in a worker-served session (issue 12 item 7), SQLite and
PostgreSQL: the official SDK's ``EnvironmentWorker`` (unchanged, its own process) mounts an
attached store at ``/mnt/memory/<slug>``, the agent reads and writes it with the ordinary
file tools, and the change synced back is a memory version whose actor is the session; the
worker also downloads the agent's skills with the item's token. The second test holds that
token to what its session has."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import anthropic
import httpx
import pytest

from tests.e2e.test_skills import files as skill_files
from tests.support.environment_worker import environment_worker
from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.fake_provider import FakeProvider, Reply, Text, ToolUse
from tests.support.postgres import database_of
from tests.support.sdk_sessions import eventually, say, sdk_client, tool_result_text, wait_for
from tests.support.server import RunningServer, running_server

TOOLSET = {"type": "agent_toolset_20260401"}
SEEDED = "The user likes green tea.\n"
WRITTEN = "Green, no sugar.\n"


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path, fake_provider: FakeProvider) -> Iterator[RunningServer]:
    settings: dict[str, Any] = {
        "anthropic_api_key": PROVIDER_KEY,
        "anthropic_base_url": fake_provider.anthropic_base_url,
        "work_lease_seconds": 4.0,
        "worker_timeout_seconds": 20.0,
    }
    with running_server(tmp_path / "data", database_of(request), **settings) as running:
        yield running


def _environment_with_key(server: RunningServer, client: anthropic.Anthropic) -> tuple[str, str]:
    environment = client.beta.environments.create(name="on-prem", config={"type": "self_hosted"})
    key = httpx.post(
        f"{server.base_url}/v1/environments/{environment.id}/keys",
        headers={"x-api-key": server.api_key}, json={"name": "worker"},
    ).json()["key"]
    return environment.id, key


def test_an_agent_reads_a_memory_writes_one_and_finds_it_in_the_versions(
    served: RunningServer, fake_provider: FakeProvider, tmp_path: Path
) -> None:
    client = sdk_client(served)
    # The worker mounts at the real host path: a name unique to this run keeps it fresh.
    unique = uuid4().hex[:8]
    store = client.beta.memory_stores.create(name=f"Prefs {unique}", description="What the user likes")
    seeded = client.beta.memory_stores.memories.create(store.id, path="/prefs.md", content=SEEDED)
    skill = client.beta.skills.create(files=skill_files())
    environment_id, key = _environment_with_key(served, client)
    agent = client.beta.agents.create(
        name="rememberer", model="claude-sonnet-4-6", tools=[TOOLSET],
        skills=[{"type": "custom", "skill_id": skill.id, "version": "latest"}],
    )
    session = client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment_id,
        resources=[{"type": "memory_store", "memory_store_id": store.id, "instructions": "Keep notes short."}],
    )
    mount = session.resources[0].mount_path
    assert mount == f"/mnt/memory/prefs-{unique}"
    workdir = tmp_path / "workspace"
    skill_md = workdir / "skills" / "pdf-tools" / "SKILL.md"
    fake_provider.script(
        Reply([ToolUse("read", {"file_path": f"{mount}/prefs.md"})]),
        Reply([ToolUse("write", {"file_path": f"{mount}/notes/tea.md", "content": WRITTEN})]),
        Reply([ToolUse("read", {"file_path": str(skill_md)})]),
        Reply([Text("Noted.")]),
    )
    with environment_worker(served.base_url, environment_id, key, workdir, memory_sync_interval=5) as worker:
        say(client, session.id, "what do I like? note it down")
        events = wait_for(client, session.id, lambda log: log[-1].type == "session.status_idle", timeout=60)
        assert events[-1].stop_reason.type == "end_turn", worker.output
        # The change reaches the store when the worker tears the item down (after idle).
        versions = eventually(lambda: list(client.beta.memory_stores.memory_versions.list(store.id, session_id=session.id)))
        assert eventually(lambda: not Path(mount).exists()), worker.output
    uses = [e for e in events if e.type == "agent.tool_use"]
    assert [use.name for use in uses] == ["read", "write", "read"]
    results = {e.tool_use_id: e for e in events if e.type == "user.tool_result"}
    assert not any(result.is_error for result in results.values()), worker.output
    # The worker had downloaded the store, and the agent's skill, before the tools ran.
    assert "likes green tea" in tool_result_text(results[uses[0].id])
    assert "Fill and merge PDF forms." in tool_result_text(results[uses[2].id])
    # The system prompt names the mount, the store's description and the attachment's instructions.
    system = json.dumps(fake_provider.requests[0].body["system"])
    assert f"{mount}/" in system and "What the user likes" in system and "Keep notes short." in system

    (version,) = versions
    assert version.operation == "created" and version.path == "/notes/tea.md"
    assert version.created_by.type == "session_actor" and version.created_by.session_id == session.id
    memories = {memory.path: memory for memory in client.beta.memory_stores.memories.list(store.id) if memory.type == "memory"}
    assert set(memories) == {"/prefs.md", "/notes/tea.md"}
    assert client.beta.memory_stores.memories.retrieve(memories["/notes/tea.md"].id, memory_store_id=store.id).content == WRITTEN
    # Reading changed nothing: the seeded memory has only its API-key creation.
    (created,) = client.beta.memory_stores.memory_versions.list(store.id, memory_id=seeded.id)
    assert created.operation == "created" and created.created_by.type == "api_actor"
    item = httpx.get(f"{served.base_url}/v1/environments/{environment_id}/work", headers={"authorization": f"Bearer {key}"}).json()
    assert [entry["state"] for entry in item["data"]] in (["stopped"], ["stopping"])


def _claimed_token(server: RunningServer, client: anthropic.Anthropic, fake_provider: FakeProvider, environment_id: str, key: str, session_id: str) -> str:
    """The item's sessions token, as the SDK's worker reads it from the polled secret."""
    fake_provider.script(Reply([ToolUse("bash", {"command": "true"})]), Reply([Text("ok")]))
    say(client, session_id, "go")
    worker = anthropic.Anthropic(base_url=server.base_url, api_key=None, auth_token=key, max_retries=0)
    work = eventually(lambda: worker.beta.environments.work.poll(environment_id, block_ms=500), timeout=15)
    assert work is not None and work.data.id == session_id
    worker.beta.environments.work.ack(work.id, environment_id=environment_id)
    secret = json.loads(base64.urlsafe_b64decode(work.secret + "=" * (-len(work.secret) % 4)))
    return str(secret["sessions_token"])


def test_an_items_token_reaches_only_what_its_session_has(served: RunningServer, fake_provider: FakeProvider) -> None:
    client = sdk_client(served)
    mine, shelf, elsewhere = (client.beta.memory_stores.create(name=f"{name} {uuid4().hex[:6]}").id for name in ("mine", "shelf", "other"))
    seeded = client.beta.memory_stores.memories.create(mine, path="/a.md", content="a\n")
    named = client.beta.skills.create(files=skill_files("named"))
    unnamed = client.beta.skills.create(files=skill_files("unnamed"))
    attached_file = client.beta.files.upload(file=("a.txt", b"attached", "text/plain")).id
    loose_file = client.beta.files.upload(file=("b.txt", b"loose", "text/plain")).id
    environment_id, key = _environment_with_key(served, client)
    agent = client.beta.agents.create(
        name="scoped", model="claude-sonnet-4-6", tools=[TOOLSET], skills=[{"type": "custom", "skill_id": named.id}]
    )
    session = client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment_id,
        resources=[
            {"type": "memory_store", "memory_store_id": mine},
            {"type": "memory_store", "memory_store_id": shelf, "access": "read_only"},
            {"type": "file", "file_id": attached_file},
        ],
    )
    token = _claimed_token(served, client, fake_provider, environment_id, key, session.id)
    base = served.base_url
    as_item = {"authorization": f"Bearer {token}"}
    as_environment = {"authorization": f"Bearer {key}"}

    # The SDK's worker, with the item's token: its calls as the memory sync makes them.
    worker = anthropic.Anthropic(base_url=base, api_key=None, auth_token=token, max_retries=0)
    listed = worker.beta.memory_stores.memories.list(mine, view="full", limit=20)
    assert [memory.content for memory in listed if memory.type == "memory"] == ["a\n"]
    assert worker.beta.memory_stores.memories.retrieve(seeded.id, memory_store_id=mine).content == "a\n"
    created = worker.beta.memory_stores.memories.create(mine, path="/b.md", content="b\n")
    worker.beta.memory_stores.memories.update(
        created.id, memory_store_id=mine, content="b2\n",
        precondition={"type": "content_sha256", "content_sha256": created.content_sha256},
    )
    worker.beta.memory_stores.memories.delete(seeded.id, memory_store_id=mine)
    by_session = list(client.beta.memory_stores.memory_versions.list(mine, session_id=session.id))
    assert sorted(version.operation for version in by_session) == ["created", "deleted", "modified"]
    assert {(version.created_by.type, version.created_by.session_id) for version in by_session} == {("session_actor", session.id)}  # type: ignore[union-attr]
    # A read-only attachment reads but refuses writes; a store not attached is not there.
    assert list(worker.beta.memory_stores.memories.list(shelf)) == []
    with pytest.raises(anthropic.PermissionDeniedError):
        worker.beta.memory_stores.memories.create(shelf, path="/x.md", content="x")
    with pytest.raises(anthropic.NotFoundError):
        worker.beta.memory_stores.memories.list(elsewhere)
    with pytest.raises(anthropic.NotFoundError):
        worker.beta.memory_stores.memories.create(elsewhere, path="/x.md", content="x")
    assert list(client.beta.memory_stores.memories.list(shelf)) == []
    # Only the memories: the stores themselves and their versions stay the API key's.
    assert httpx.get(f"{base}/v1/memory_stores/{mine}", headers=as_item).status_code == 403
    assert httpx.get(f"{base}/v1/memory_stores/{mine}/memory_versions", headers=as_item).status_code == 403
    # An environment key is refused on the memories.
    assert httpx.get(f"{base}/v1/memory_stores/{mine}/memories", headers=as_environment).status_code == 403

    # Skills: the versions of one the session's agent names, and their content.
    latest = worker.beta.skills.versions.retrieve("latest", skill_id=named.id)
    assert latest.name == "named"
    assert httpx.get(f"{base}/v1/skills/{named.id}/versions/{latest.id}/content", headers=as_item).status_code == 200
    for path in (f"/v1/skills/{unnamed.id}/versions/latest", f"/v1/skills/{unnamed.id}/versions/latest/content"):
        assert httpx.get(base + path, headers=as_item).status_code == 404
    assert httpx.get(f"{base}/v1/skills/{named.id}", headers=as_item).status_code == 403
    # Files: one attached to the session, metadata and bytes.
    assert httpx.get(f"{base}/v1/files/{attached_file}", headers=as_item).status_code == 200
    assert httpx.get(f"{base}/v1/files/{attached_file}/content", headers=as_item).content == b"attached"
    for path in (f"/v1/files/{loose_file}", f"/v1/files/{loose_file}/content"):
        assert httpx.get(base + path, headers=as_item).status_code == 404

    # An API key writes as itself.
    client.beta.memory_stores.memories.create(mine, path="/c.md", content="c\n")
    newest = next(iter(client.beta.memory_stores.memory_versions.list(mine)))
    assert newest.path == "/c.md" and newest.created_by.type == "api_actor"


def test_a_read_only_mount_refuses_the_agents_write_and_records_nothing(
    served: RunningServer, fake_provider: FakeProvider, tmp_path: Path
) -> None:
    client = sdk_client(served)
    unique = uuid4().hex[:8]
    store = client.beta.memory_stores.create(name=f"Handbook {unique}")
    client.beta.memory_stores.memories.create(store.id, path="/rules.md", content="Be kind.\n")
    environment_id, key = _environment_with_key(served, client)
    agent = client.beta.agents.create(name="reader", model="claude-sonnet-4-6", tools=[TOOLSET])
    session = client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment_id,
        resources=[{"type": "memory_store", "memory_store_id": store.id, "access": "read_only"}],
    )
    mount = session.resources[0].mount_path
    fake_provider.script(
        Reply([ToolUse("write", {"file_path": f"{mount}/rules.md", "content": "Be unkind.\n"})]),
        Reply([Text("I could not.")]),
    )
    with environment_worker(served.base_url, environment_id, key, tmp_path / "workspace", memory_sync_interval=5) as worker:
        say(client, session.id, "change the rules")
        events = wait_for(client, session.id, lambda log: log[-1].type == "session.status_idle", timeout=60)
        assert events[-1].stop_reason.type == "end_turn", worker.output
        assert eventually(lambda: not Path(mount).exists()), worker.output
    (result,) = [e for e in events if e.type == "user.tool_result"]
    assert result.is_error
    assert list(client.beta.memory_stores.memory_versions.list(store.id, session_id=session.id)) == []
    (rules,) = [memory for memory in client.beta.memory_stores.memories.list(store.id, view="full") if memory.type == "memory"]
    assert rules.content == "Be kind.\n"
