"""A session's sandbox, against the real bubblewrap: the SDK's tools work inside it, and every
way out the issue lists is refused, reported as a tool error, and leaves the host as it was."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from anthropic.lib.tools.agent_toolset import AgentToolContext, beta_agent_toolset_20260401

from infra.sandbox import Sandbox, SandboxLimits, sandbox_tools
from tests.support.sandbox import Tools, live_processes, sessions_root

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Small enough to hit quickly; the CPU limit well under the command's wall time, so a busy loop
# meets the first before the second even on a loaded machine.
LIMITS = SandboxLimits(disk_bytes=16 << 20, memory_bytes=512 << 20, cpu_seconds=2, processes=64, command_seconds=6)


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    with sessions_root() as path:
        yield path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox(root: Path) -> AsyncIterator[Sandbox]:
    opened = await Sandbox.create(root, "sesn_main", limits=LIMITS)
    yield opened
    await opened.close()


@pytest.fixture(scope="module")
def tools(sandbox: Sandbox) -> Tools:
    return Tools(sandbox)


async def test_the_tools_are_the_sdk_toolset(sandbox: Sandbox):
    reference = beta_agent_toolset_20260401(AgentToolContext(workdir="/workspace"))
    assert [tool.to_dict() for tool in sandbox_tools(sandbox)] == [tool.to_dict() for tool in reference]
    assert [tool.name for tool in sandbox_tools(sandbox)] == ["bash", "read", "write", "edit", "glob", "grep"]


async def test_a_file_written_is_run_by_bash_and_read_back(sandbox: Sandbox, tools: Tools):
    wrote = await tools.ok("write", file_path="/workspace/round/hello.py", content="print('hello from the sandbox')\n")
    assert "/workspace/round/hello.py" in wrote
    ran = await tools.ok("bash", command="cd round && python3 hello.py > out.txt && cat out.txt && pwd")
    assert ran == "hello from the sandbox\n/workspace/round"
    assert await tools.ok("read", file_path="/workspace/round/out.txt") == "hello from the sandbox\n"
    await tools.ok("edit", file_path="round/hello.py", old_string="from the sandbox", new_string="again")
    assert await tools.ok("bash", command="python3 /workspace/round/hello.py") == "hello again"
    assert await tools.ok("glob", pattern="round/*.py") == "/workspace/round/hello.py"
    assert await tools.ok("grep", pattern="again", path="round") == "/workspace/round/hello.py:1:print('hello again')"
    # Images come back as content blocks, as from the SDK's own read.
    pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
    await tools.ok("bash", command=f"echo {pixel} | base64 -d > /workspace/round/pixel.png")
    image = await tools.ok("read", file_path="round/pixel.png")
    assert image == [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": pixel}}]
    # The shell keeps its state between calls, like the SDK's own.
    await tools.ok("bash", command="export GREETING=kept && cd /workspace/round")
    assert await tools.ok("bash", command="echo $GREETING $PWD") == "kept /workspace/round"
    # Both halves ran as the session's uid: the files on the host are its, never root's.
    on_host = sandbox.workdir / "round"
    assert {(on_host / name).stat().st_uid for name in ("hello.py", "out.txt", "pixel.png")} == {sandbox.uid}
    assert await tools.ok("bash", command="id -u") == str(sandbox.uid) != "0"


async def test_the_workers_environment_is_nowhere_inside(tools: Tools, monkeypatch: pytest.MonkeyPatch):
    # The module's sandbox was started before this variable existed; a restart after it is not.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-must-not-leak")
    monkeypatch.setenv("AGENTRY_DATABASE_URL", "postgresql://agentry:must-not-leak@db/agentry")
    assert "sandbox stopped" in await tools.error("bash", command="kill -9 $PPID; sleep 5")
    assert await tools.ok("bash", command="cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c must-not-leak || true") == "0"
    assert await tools.ok("bash", command="env | grep -c -e ANTHROPIC -e AGENTRY || true") == "0"


async def test_reading_etc_shadow_is_refused(tools: Tools):
    assert "Permission denied" in await tools.error("bash", command="cat /etc/shadow")
    assert "outside the session's working directory" in await tools.error("read", file_path="/etc/shadow")
    assert "outside the session's working directory" in await tools.error("read", file_path="../../etc/shadow")


async def test_another_sessions_directory_is_out_of_reach(root: Path, sandbox: Sandbox, tools: Tools):
    other = await Sandbox.create(root, "sesn_other", limits=LIMITS)
    try:
        await Tools(other).ok("write", file_path="secret.txt", content="the other session's secret")
        secret = other.workdir / "secret.txt"
        assert other.uid != sandbox.uid
        assert await tools.error("bash", command=f"cat {secret}")
        assert "No such file" in await tools.error("bash", command=f"ls {root}")
        assert "outside the session's working directory" in await tools.error("read", file_path=str(secret))
        # Even with the path in sight, the directory is the other uid's alone.
        assert (other.workdir.stat().st_uid, other.workdir.stat().st_mode & 0o777) == (other.uid, 0o700)
        assert secret.read_text() == "the other session's secret"
    finally:
        await other.close()


async def test_writing_outside_the_working_directory_is_refused(tools: Tools):
    for target in ("/etc/agentry-escape", "/usr/agentry-escape", "/var/agentry-escape", "/agentry-escape"):
        assert "Read-only file system" in await tools.error("bash", command=f"echo escaped > {target}")
        assert "outside the session's working directory" in await tools.error(
            "write", file_path=target, content="escaped"
        )
        assert not Path(target).exists()
    assert "outside the session's working directory" in await tools.error(
        "write", file_path="../agentry-escape", content="escaped"
    )
    # A symlink out of the workspace does not take the file tools along.
    await tools.ok("bash", command="ln -sf /etc/passwd /workspace/link")
    assert "outside the session's working directory" in await tools.error("write", file_path="link", content="x")


async def test_a_local_server_is_unreachable_with_networking_off(tools: Tools):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)"
        assert "Connection refused" in await tools.error("bash", command=f'python3 -c "{probe}"')
        assert "No such file" in await tools.error("bash", command="ls /run/agentry/egress.sock")
        assert await tools.ok("bash", command="echo ${HTTPS_PROXY:-none}") == "none"
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()


async def test_a_fork_bomb_hits_the_process_limit_and_is_cleared(sandbox: Sandbox, tools: Tools):
    assert await tools.ok("bash", command="ulimit -u") == str(LIMITS.processes)
    # In the foreground: forks fail at the limit, bash retries them until the command's time is up.
    bomb = "bomb() { bomb | bomb; }; bomb"
    assert "timed out" in await tools.error("bash", command=bomb, timeout_ms=2000)
    assert await tools.ok("bash", command="ps -e -o comm= | grep -c -x bash") == "1"
    assert live_processes(sandbox.uid).count("bash") == 1
    # The classic one detaches and returns at once; it stays within the limit until the shell restarts.
    await tools.ok("bash", command=":(){ :|:& };:")
    for _ in range(20):
        assert len(live_processes(sandbox.uid)) <= LIMITS.processes
        await asyncio.sleep(0.05)
    assert await tools.ok("bash", restart=True) == "bash session restarted"
    assert live_processes(sandbox.uid).count("bash") == 1
    assert await tools.ok("bash", command="echo alive") == "alive"


async def test_a_loop_past_the_time_limit_is_stopped(tools: Tools):
    assert "timed out after 1.0s" in await tools.error("bash", command="while :; do :; done", timeout_ms=1000)
    # The model cannot ask for more than the limit.
    too_long = await tools.error("bash", command="sleep 600", timeout_ms=3_600_000)
    assert f"timed out after {LIMITS.command_seconds:.1f}s" in too_long
    assert await tools.ok("bash", command="echo still here") == "still here"


async def test_writing_past_the_size_cap_fails_in_bash_and_in_write(sandbox: Sandbox, tools: Tools):
    cap = LIMITS.disk_bytes
    assert "No space left on device" in await tools.error("bash", command=f"head -c {2 * cap} /dev/zero > big")
    assert "No space left on device" in await tools.error("bash", command=f"head -c {2 * cap} /dev/zero > /tmp/big")
    assert "no space left on device" in await tools.error("write", file_path="big2", content="x" * (2 * cap))
    usage = os.statvfs(sandbox.workdir)
    assert usage.f_blocks * usage.f_frsize <= cap
    await tools.ok("bash", command="rm -f big big2 /tmp/big")
    assert await tools.ok("write", file_path="small.txt", content="fits") == "wrote 4 bytes to small.txt"


async def test_memory_and_cpu_limits_stop_a_process(tools: Tools):
    assert "MemoryError" in await tools.error("bash", command="python3 -c 'bytearray(1 << 30)'")
    busy = await tools.error("bash", command="python3 -c 'while True: pass'")
    assert "CPU time limit exceeded" in busy
    assert await tools.ok("bash", command="echo alive") == "alive"


async def test_the_helper_killed_from_inside_comes_back_with_the_files(tools: Tools):
    await tools.ok("write", file_path="kept.txt", content="survives")
    assert "sandbox stopped" in await tools.error("bash", command="kill -9 $PPID; sleep 5")
    assert await tools.ok("read", file_path="kept.txt") == "survives"
    assert await tools.ok("bash", command="cat kept.txt") == "survives"


async def test_a_process_ignoring_sigterm_is_gone_after_close(root: Path):
    sandbox = await Sandbox.create(root, "sesn_stubborn", limits=LIMITS)
    try:
        tools = Tools(sandbox)
        stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(1000)"
        await tools.ok(
            "bash",
            command=f"trap '' TERM; (trap '' TERM; exec sleep 1000) & setsid nohup python3 -c '{stubborn}' >/dev/null 2>&1 &",
        )
        await tools.ok("bash", command="sleep 0.5")  # give setsid its moment to exec python3
        assert {"sleep", "python3"} <= set(live_processes(sandbox.uid))
    finally:
        await sandbox.close()
    assert live_processes(sandbox.uid) == []
    assert not sandbox.workdir.exists()
    assert not (root / "sesn_stubborn").exists()
    assert "closed" in await tools.error("bash", command="echo too late")


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from infra.sandbox import Sandbox, sandbox_tools

    async def main():
        sandbox = await Sandbox.create(sys.argv[1], "sesn_orphaned")
        bash = {tool.name: tool for tool in sandbox_tools(sandbox)}["bash"]
        await bash.call({"command": "trap '' TERM; (trap '' TERM; exec sleep 1000) & sleep 0.2"})
        print(sandbox.uid, flush=True)
        await asyncio.sleep(1000)

    asyncio.run(main())
    """
)


async def test_a_killed_worker_takes_its_sandbox_along(root: Path):
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(root)], stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    uid = int(await asyncio.to_thread(worker.stdout.readline))
    assert "sleep" in live_processes(uid)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 30
    while live_processes(uid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert live_processes(uid) == []
    # Its area stays until the next sandbox on this machine sweeps it away.
    assert (root / "sesn_orphaned").exists()
    sweeper = await Sandbox.create(root, "sesn_sweeper", limits=LIMITS)
    await sweeper.close()
    assert not (root / "sesn_orphaned").exists()


async def test_bash_arguments_are_checked_as_the_sdk_checks_them(tools: Tools):
    assert await tools.ok("bash", command="echo lax", timeout_ms="5000") == "lax"
    assert "Invalid arguments for function bash" in await tools.error("bash", command="echo", timeout_ms="soon")
    assert "Invalid arguments for function bash" in await tools.error("bash", command="echo", shell="/bin/zsh")
    assert "command is required" in await tools.error("bash")
    assert "Invalid arguments for function read" in await tools.error("read", path="x")
