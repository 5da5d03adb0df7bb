"""Memory stores, file resources and skills in a cloud session's sandbox (issue 12 item 7,
`agentry sandbox-worker`), SQLite and PostgreSQL: the agent reads a seeded memory at
``/mnt/memory/<slug>/``, writes a new one that comes back as a ``session_actor`` version,
is refused a write into a read-only store (no version), reads an attached file at its mount
path but cannot change it, and reads its skill's SKILL.md under ``/workspace/skills/``.

The sandbox worker relies on what the SDK's ``EnvironmentWorker._handle_item`` does in
anthropic 2.14.0 (docs/design/runtime-mounts.md §1.1): its ``tools=`` callback runs after the
skills and memory downloads. A new SDK version is checked against that before this pin moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import anthropic
import pytest

from tests.e2e.test_skills import files as skill_files
from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.fake_provider import FakeProvider, Reply, Text, ToolUse
from tests.support.postgres import database_of
from tests.support.sandbox import sessions_root
from tests.support.sandbox_worker_process import SANDBOX_WORKER_KEY, sandbox_worker
from tests.support.sdk_sessions import eventually, idles, say, sdk_client, tool_result_text, wait_for
from tests.support.server import RunningServer, running_server

TOOLSET = {"type": "agent_toolset_20260401"}
SEEDED = "The user likes green tea.\n"
WRITTEN = "Green, no sugar.\n"
ATTACHED = b"name,colour\ntea,green\n"


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path, fake_provider: FakeProvider) -> Iterator[RunningServer]:
    settings: dict[str, Any] = {
        "anthropic_api_key": PROVIDER_KEY,
        "anthropic_base_url": fake_provider.anthropic_base_url,
        "sandbox_worker_key": SANDBOX_WORKER_KEY,
        "work_lease_seconds": 6.0,
        "worker_timeout_seconds": 30.0,
    }
    with running_server(tmp_path / "data", database_of(request), **settings) as running:
        yield running


@pytest.fixture
def sandboxes() -> Iterator[Path]:
    with sessions_root() as root:
        yield root


def test_the_sdk_is_the_one_the_sandbox_worker_was_checked_against() -> None:
    assert anthropic.__version__ == "2.14.0", "check EnvironmentWorker._handle_item's order of the tools= callback"


def test_a_cloud_session_uses_its_memory_files_and_skills_in_the_sandbox(
    served: RunningServer, fake_provider: FakeProvider, sandboxes: Path
) -> None:
    client = sdk_client(served)
    unique = uuid4().hex[:8]
    store = client.beta.memory_stores.create(name=f"Prefs {unique}", description="What the user likes")
    client.beta.memory_stores.memories.create(store.id, path="/prefs.md", content=SEEDED)
    handbook = client.beta.memory_stores.create(name=f"Handbook {unique}")
    client.beta.memory_stores.memories.create(handbook.id, path="/rules.md", content="Be kind.\n")
    attached = client.beta.files.upload(file=("colours.csv", ATTACHED, "text/csv"))
    skill = client.beta.skills.create(files=skill_files())
    environment = client.beta.environments.create(name="cloud", config={"type": "cloud"})
    agent = client.beta.agents.create(
        name="rememberer",
        model="claude-sonnet-4-6",
        tools=[TOOLSET],
        skills=[{"type": "custom", "skill_id": skill.id, "version": "latest"}],
    )
    session = client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment.id,
        resources=[
            {"type": "memory_store", "memory_store_id": store.id},
            {"type": "memory_store", "memory_store_id": handbook.id, "access": "read_only"},
            {"type": "file", "file_id": attached.id},
        ],
    )
    mounts = {resource.type + str(index): resource.mount_path for index, resource in enumerate(session.resources)}
    mount, shelf, upload = mounts["memory_store0"], mounts["memory_store1"], mounts["file2"]
    assert (mount, shelf) == (f"/mnt/memory/prefs-{unique}", f"/mnt/memory/handbook-{unique}")
    assert upload == f"/mnt/session/uploads/{attached.id}"
    fake_provider.script(
        Reply([ToolUse("read", {"file_path": f"{mount}/prefs.md"})]),
        Reply([ToolUse("write", {"file_path": f"{mount}/notes/tea.md", "content": WRITTEN})]),
        Reply([ToolUse("write", {"file_path": f"{shelf}/rules.md", "content": "Be unkind.\n"})]),
        Reply([ToolUse("bash", {"command": f"echo unkind >> {shelf}/rules.md"})]),
        Reply([ToolUse("read", {"file_path": upload})]),
        Reply([ToolUse("bash", {"command": f"echo changed > {upload}"})]),
        Reply([ToolUse("read", {"file_path": "/workspace/skills/pdf-tools/SKILL.md"})]),
        Reply([Text("Noted.")]),
    )
    with sandbox_worker(served.base_url, sandboxes) as worker:
        say(client, session.id, "what do I like? note it down")
        events = wait_for(client, session.id, idles(1), timeout=90)
        assert events[-1].stop_reason.type == "end_turn", worker.output
        # The change reaches the store when the worker tears the item down (after idle).
        versions = eventually(
            lambda: list(client.beta.memory_stores.memory_versions.list(store.id, session_id=session.id))
        )
        assert versions, worker.output
    uses = [e for e in events if e.type == "agent.tool_use"]
    results = {e.tool_use_id: e for e in events if e.type == "agent.tool_result"}
    assert len(results) == len(uses) == 7, worker.output
    read_memory, wrote, refused, refused_bash, read_file, changed_file, read_skill = (results[u.id] for u in uses)
    assert "likes green tea" in tool_result_text(read_memory) and not read_memory.is_error, worker.output
    assert not wrote.is_error, tool_result_text(wrote)
    assert refused.is_error and "permission denied" in tool_result_text(refused).lower()
    assert refused_bash.is_error and "Permission denied" in tool_result_text(refused_bash)
    assert tool_result_text(read_file) == ATTACHED.decode() and not read_file.is_error
    assert changed_file.is_error and "Permission denied" in tool_result_text(changed_file)
    assert "Fill and merge PDF forms." in tool_result_text(read_skill) and not read_skill.is_error, tool_result_text(read_skill)

    (version,) = versions
    assert version.operation == "created" and version.path == "/notes/tea.md"
    assert version.created_by.type == "session_actor" and version.created_by.session_id == session.id
    memories = {m.path: m for m in client.beta.memory_stores.memories.list(store.id) if m.type == "memory"}
    assert set(memories) == {"/prefs.md", "/notes/tea.md"}
    assert client.beta.memory_stores.memories.retrieve(memories["/notes/tea.md"].id, memory_store_id=store.id).content == WRITTEN
    # The read-only store has no version of the session, and its memory is as it was.
    assert list(client.beta.memory_stores.memory_versions.list(handbook.id, session_id=session.id)) == []
    (rules,) = [m for m in client.beta.memory_stores.memories.list(handbook.id, view="full") if m.type == "memory"]
    assert rules.content == "Be kind.\n"
