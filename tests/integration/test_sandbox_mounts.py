"""A session sandbox's /mnt against the real bubblewrap: file resources put there read-only,
trees the worker wrote as root (memory stores, skills) handed to the session's uid or opened
to it, and no symlink the uid plants there leads root anywhere else on the host."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from infra.sandbox import Sandbox, SandboxLimits
from tests.support.sandbox import Tools, sessions_root

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIMITS = SandboxLimits(disk_bytes=16 << 20, command_seconds=10)


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    with sessions_root() as path:
        yield path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox(root: Path) -> AsyncIterator[Sandbox]:
    opened = await Sandbox.create(root, "sesn_mounts", limits=LIMITS)
    yield opened
    await opened.close()


@pytest.fixture(scope="module")
def tools(sandbox: Sandbox) -> Tools:
    return Tools(sandbox)


async def test_file_resources_are_placed_read_only_once(sandbox: Sandbox, tools: Tools):
    fetched: list[str] = []

    async def fetch(file_id: str) -> bytes:
        fetched.append(file_id)
        return f"bytes of {file_id}\n".encode()

    files = {"/mnt/session/uploads/file_a": "file_a", "/mnt/session/uploads/data/b.csv": "file_b"}
    assert await sandbox.prepare_mounts(files, fetch) == []
    assert await tools.ok("read", file_path="/mnt/session/uploads/file_a") == "bytes of file_a\n"
    assert await tools.ok("bash", command="cat /mnt/session/uploads/data/b.csv") == "bytes of file_b"
    assert "read-only" in await tools.error("write", file_path="/mnt/session/uploads/file_a", content="x")
    assert "Permission denied" in await tools.error("bash", command="echo x > /mnt/session/uploads/file_a")
    assert "Permission denied" in await tools.error("bash", command="rm -f /mnt/session/uploads/file_a")
    assert "Permission denied" in await tools.error("bash", command="touch /mnt/session/uploads/new")
    assert "Permission denied" in await tools.error("bash", command="mkdir /mnt/elsewhere")
    placed = sandbox.mounts / "session" / "uploads" / "file_a"
    assert (placed.stat().st_uid, placed.stat().st_mode & 0o777) == (0, 0o444)
    assert (placed.parent.stat().st_uid, placed.parent.stat().st_mode & 0o777) == (0, 0o555)
    # The next item of the session: what is in place stays, what was detached goes.
    files_now = {"/mnt/session/uploads/file_a": "file_a"}
    assert await sandbox.prepare_mounts(files_now, fetch) == []
    assert fetched == ["file_a", "file_b"]
    assert not (sandbox.mounts / "session" / "uploads" / "data" / "b.csv").exists()
    # Nowhere but under /mnt, and never under /mnt/memory (the memory stores' place).
    refused = await sandbox.prepare_mounts(
        {**files_now, "/etc/x": "file_c", "/mnt/memory/notes/x": "file_d", "/workspace/x": "file_e"}, fetch
    )
    assert len(refused) == 3 and not (sandbox.mounts / "memory" / "notes").exists()
    assert not (sandbox.workdir / "x").exists()


async def test_a_writable_tree_is_handed_over_and_a_read_only_one_opened(sandbox: Sandbox, tools: Tools):
    # As the SDK makes a memory store's folder and files: root's, 0700 and 0600.
    writable, read_only = sandbox.mounts / "memory" / "notes", sandbox.mounts / "memory" / "handbook"
    for store in (writable, read_only):
        (store / "deep").mkdir(mode=0o700, parents=True)
        (store / "deep" / "a.md").write_text("seeded\n")
        os.chmod(store / "deep" / "a.md", 0o600)
    skills = sandbox.workdir / "skills" / "pdf-tools"
    skills.mkdir(mode=0o700, parents=True)
    os.chmod(skills.parent, 0o700)
    (skills / "SKILL.md").write_text("---\nname: pdf-tools\n---\n")
    sandbox.share(writable=[writable], readable=[read_only, skills.parent])
    assert await tools.ok("read", file_path="/mnt/memory/notes/deep/a.md") == "seeded\n"
    await tools.ok("write", file_path="/mnt/memory/notes/deep/b.md", content="new\n")
    await tools.ok("edit", file_path="/mnt/memory/notes/deep/a.md", old_string="seeded", new_string="edited")
    assert (writable / "deep" / "a.md").read_text() == "edited\n"
    assert await tools.ok("read", file_path="/mnt/memory/handbook/deep/a.md") == "seeded\n"
    assert "permission denied" in (await tools.error("write", file_path="/mnt/memory/handbook/deep/a.md", content="x")).lower()
    assert "permission denied" in (await tools.error("write", file_path="/mnt/memory/handbook/c.md", content="x")).lower()
    assert (read_only / "deep" / "a.md").read_text() == "seeded\n"
    assert "pdf-tools" in await tools.ok("read", file_path="/workspace/skills/pdf-tools/SKILL.md")
    # What the memory sync writes between calls (root's, 0600) is the uid's by the next call.
    (writable / "pulled.md").write_text("pulled\n")
    os.chmod(writable / "pulled.md", 0o600)
    assert await tools.ok("bash", command="cat /mnt/memory/notes/pulled.md") == "pulled"
    sandbox.share()
    # The next item starts with /mnt/memory empty (the SDK refuses a store folder that exists).
    assert await sandbox.prepare_mounts({"/mnt/session/uploads/file_a": "file_a"}, _never) == []
    assert list((sandbox.mounts / "memory").iterdir()) == []


async def test_a_symlink_in_mnt_leads_root_nowhere(sandbox: Sandbox, tools: Tools):
    store = sandbox.mounts / "memory" / "trap"
    store.mkdir(mode=0o700)
    sandbox.share(writable=[store])
    try:
        await tools.ok("bash", command="mkdir -p /mnt/memory/trap/real && ln -s /etc /mnt/memory/trap/etc")
        # The worker (root, on the host) walking or reading through it meets ELOOP, not /etc.
        with pytest.raises(OSError) as raised:
            (store / "etc" / "hostname").read_text()
        assert raised.value.errno == 40  # ELOOP
        sandbox.share(writable=[store])  # a walk of the tree follows nothing either
        assert os.stat("/etc/hostname").st_uid == 0
    finally:
        sandbox.share()
    # A symlinked /workspace/skills is removed before the SDK extracts skills into it as root.
    shutil.rmtree(sandbox.workdir / "skills")  # the SDK removes the skills it extracted
    await tools.ok("bash", command="ln -s /etc /workspace/skills")
    await sandbox.prepare_mounts({"/mnt/session/uploads/file_a": "file_a"}, _never)
    assert not (sandbox.workdir / "skills").exists()


async def _never(file_id: str) -> bytes:
    raise AssertionError(f"{file_id} fetched again")
