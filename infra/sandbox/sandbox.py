"""One session's sandbox: its area, its egress proxy, and the helper process inside it that
runs the tools. The worker creates one when a session's work item starts and closes it when
the item ends; every tool call of the session goes through `call`.

The helper is restarted when it is gone (killed from inside, or stopped after a call that
overran), with the session's files kept; bash state is lost then, as after the SDK's own
bash timeout. Closing kills the helper's bubblewrap, which takes its whole pid namespace with
it, then kills whatever process of the session's uid is still alive on the host (there should
be none), then unmounts and removes the area."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import anyio
from anthropic.lib.tools import BetaFunctionToolResultType, ToolError

from domain.environment_config import Networking, Packages
from infra.sandbox.area import Area
from infra.sandbox.command import PROXY_PORT, hidden_python_prefixes, sandbox_argv, tool_path
from infra.sandbox.egress import EgressProxy, guard_for
from infra.sandbox.errors import PackageInstallFailed, PackageManagerUnavailable, SandboxError
from infra.sandbox.limits import SandboxLimits
from infra.sandbox.mounts import (
    clear_memory,
    clear_skills_link,
    hand_over,
    open_to_read,
    place_read_only,
    remove_placed,
)
from infra.sandbox.packages import InstallStep, check_apt, install_steps

log = logging.getLogger("agentry.sandbox")

# An image read comes back base64 (5 MiB), a PDF up to 20 MiB raw: leave room for both.
ANSWER_LIMIT = 48 * 1024 * 1024
START_TIMEOUT = 30.0
# A call's answer may come this much later than its command's own deadline (the helper
# needs the time to kill what the command left behind and to say so).
ANSWER_GRACE = 10.0
LOG_TAIL = 2000
LAUNCH_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


class Sandbox:
    def __init__(
        self,
        area: Area,
        limits: SandboxLimits,
        networking: Networking,
        *,
        sessions_root: Path,
        extra_env: Mapping[str, str],
    ) -> None:
        self._area = area
        self._limits = limits
        self._networking = networking
        self._sessions_root = sessions_root
        self._extra_env = dict(extra_env)
        self._proxy: EgressProxy | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._sequence = 0
        self._closed = False
        self._writable: tuple[Path, ...] = ()
        self._readable: tuple[Path, ...] = ()
        self._placed: dict[str, str] = {}

    @classmethod
    async def create(
        cls,
        root_dir: str | os.PathLike[str],
        session_id: str,
        *,
        networking: Any = None,
        packages: Any = None,
        limits: SandboxLimits | None = None,
        env: Mapping[str, str] | None = None,
        reachable_networks: Sequence[str] = (),
        blocked_networks: Sequence[str] = (),
    ) -> Sandbox:
        """Set up the session's sandbox under `root_dir` and install its packages.

        `networking` and `packages` are the environment config's, as the SDK sends them
        (None: no network, no packages). `env` adds variables inside (a package mirror, say).
        `reachable_networks` lets the egress proxy reach addresses it otherwise refuses as
        non-public (an internal mirror); `blocked_networks` refuses public ones (the platform's
        own services where they have public addresses). Raises `SandboxUnavailable`,
        `PackageManagerUnavailable` or `PackageInstallFailed`."""
        limits = limits or SandboxLimits()
        parsed_networking = Networking.parse(networking)
        parsed_packages = Packages.parse(packages)
        for name in ("setpriv", "prlimit", "bwrap"):
            tool_path(name)
        check_apt(parsed_packages.of("apt"))
        sessions_root = Path(root_dir).resolve()
        area = await anyio.to_thread.run_sync(
            Area.create, sessions_root, session_id, limits.disk_bytes, hidden_python_prefixes()
        )
        sandbox = cls(area, limits, parsed_networking, sessions_root=sessions_root, extra_env=env or {})
        try:
            guard = guard_for(parsed_networking, reachable_networks, blocked_networks)
            if guard is not None:
                sandbox._proxy = EgressProxy(guard, area.egress_socket, uid=area.uid)
                await sandbox._proxy.start()
            async with sandbox._lock:
                await sandbox._start_helper()
                steps = install_steps(parsed_packages)
                if steps:
                    await sandbox._install(steps)
                await sandbox._warm()
        except BaseException:
            await sandbox.close()
            raise
        return sandbox

    @property
    def workdir(self) -> Path:
        """The host directory that is /workspace inside (the SDK worker's `workdir`)."""
        return self._area.workspace

    @property
    def uid(self) -> int:
        return self._area.uid

    @property
    def mounts(self) -> Path:
        """The host directory that is /mnt inside."""
        return self._area.mnt

    async def prepare_mounts(self, files: Mapping[str, str], fetch: Callable[[str], Awaitable[bytes]]) -> list[str]:
        """Before a work item, while none of the session's processes runs: clear /mnt/memory
        (the SDK mounts the stores afresh) and any symlink at /workspace/skills, and put
        each file resource (its path inside → its file id, bytes from `fetch`) in place,
        read-only. A file already placed for the same id stays; one whose resource went is
        removed. Returns what could not be placed, one line each."""
        await anyio.to_thread.run_sync(clear_memory, self._area.mnt)
        await anyio.to_thread.run_sync(clear_skills_link, self._area.workspace)
        problems = []
        for inside in [path for path, file_id in self._placed.items() if files.get(path) != file_id]:
            await anyio.to_thread.run_sync(remove_placed, self._area.mnt, inside)
            del self._placed[inside]
        for inside, file_id in files.items():
            if self._placed.get(inside) == file_id:
                continue
            try:
                data = await fetch(file_id)
                await anyio.to_thread.run_sync(place_read_only, self._area.mnt, inside, data)
            except Exception as error:
                problems.append(f"{file_id} at {inside}: {error}")
                continue
            self._placed[inside] = file_id
        return problems

    def share(self, writable: Sequence[Path] = (), readable: Sequence[Path] = ()) -> None:
        """Trees the worker wrote as root for this session (host paths in its area): the
        `writable` become the uid's, the `readable` readable by it. Done again before each
        call while they are shared, since the memory sync writes there between calls."""
        for root in (*writable, *readable):
            if not Path(os.path.abspath(root)).is_relative_to(self._area.root):
                raise ValueError(f"{root} is not in this session's area")
        self._writable, self._readable = tuple(writable), tuple(readable)
        self._share()

    def _share(self) -> None:
        try:
            for root in self._writable:
                hand_over(root, self._area.uid)
            for root in self._readable:
                open_to_read(root)
        except OSError as error:
            log.warning("could not hand the session its mounted files: %s", error)

    @property
    def limits(self) -> SandboxLimits:
        return self._limits

    async def call(self, tool: str, arguments: Mapping[str, Any]) -> BetaFunctionToolResultType:
        """Run one tool inside; its failure comes back as a `ToolError` with the tool's words."""
        async with self._lock:
            if self._closed:
                raise ToolError(f"{tool}: this session's sandbox is closed")
            try:
                if self._process is None or self._process.returncode is not None:
                    await self._start_helper()
                    await self._warm()
                if self._writable or self._readable:
                    await anyio.to_thread.run_sync(self._share)
                with anyio.fail_after(self._limits.command_seconds + ANSWER_GRACE):
                    answer = await self._exchange({"op": "call", "tool": tool, "input": dict(arguments)})
            except TimeoutError:
                await self._stop_helper()
                raise ToolError(f"{tool}: no answer within the time limit; everything it started was stopped") from None
            except SandboxError as error:
                await self._stop_helper()
                raise ToolError(f"{tool}: {error}") from error
            except BaseException:
                # Cancelled mid-call (the runner's own deadline, a shutdown): the pipe is out of
                # step and the command may still run, so nothing of it is kept.
                with anyio.CancelScope(shield=True):
                    await self._stop_helper()
                raise
        if answer["ok"]:
            return _content(answer.get("content"))
        raise ToolError(_content(answer.get("error")))

    async def close(self) -> None:
        """Kill every process of the session and remove its files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await self._stop_helper()
            if self._proxy is not None:
                await self._proxy.close()
            await anyio.to_thread.run_sync(self._area.remove)

    async def _start_helper(self) -> None:
        config = json.dumps(
            {
                "command_seconds": self._limits.command_seconds,
                "cpu_seconds": self._limits.cpu_seconds,
                "memory_bytes": self._limits.memory_bytes,
                "proxy_port": PROXY_PORT if self._proxy is not None else None,
            }
        )
        argv = sandbox_argv(
            self._area,
            self._limits,
            sessions_root=self._sessions_root,
            networked=self._proxy is not None,
            extra_env=self._extra_env,
            config=config,
        )
        with open(self._area.log, "ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                limit=ANSWER_LIMIT,
                # Not the worker's environment: bubblewrap's init is the sandbox's pid 1, and its
                # /proc/1/environ is readable from inside (the tools' own is set with --setenv).
                env=LAUNCH_ENV,
            )
        self._process = process
        try:
            with anyio.fail_after(START_TIMEOUT):
                ready = await self._read_answer(process)
        except (TimeoutError, SandboxError):
            ready = None
        if ready != {"ready": True}:
            await self._stop_helper()
            raise SandboxError(f"the sandbox did not start: {self._log_tail()}")

    async def _stop_helper(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            # Kill the namespace's init (bubblewrap's child) first: the kernel then kills every
            # process in the namespace, and bubblewrap, its parent, reaps it and exits. Killing
            # bubblewrap first would leave that init to whoever reaps orphans here.
            for child in _children(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            with anyio.move_on_after(2):
                await process.wait()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await anyio.to_thread.run_sync(kill_uid, self._area.uid)

    async def _exchange(self, request: dict[str, Any]) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdin is not None
        self._sequence += 1
        request["id"] = self._sequence
        try:
            process.stdin.write(json.dumps(request).encode() + b"\n")
            await process.stdin.drain()
        except (ConnectionError, RuntimeError) as error:
            raise SandboxError("the sandbox stopped") from error
        answer = await self._read_answer(process)
        if answer.get("id") != self._sequence or not isinstance(answer.get("ok"), bool):
            raise SandboxError("the sandbox answered out of turn")
        return answer

    async def _read_answer(self, process: asyncio.subprocess.Process) -> dict[str, Any]:
        assert process.stdout is not None
        try:
            line = await process.stdout.readline()
        except (ValueError, asyncio.LimitOverrunError) as error:
            raise SandboxError("the sandbox's answer was too large") from error
        if not line:
            raise SandboxError("the sandbox stopped (it restarts with the session's files on the next call)")
        try:
            answer = json.loads(line)
        except ValueError as error:
            raise SandboxError("the sandbox answered with something that is not JSON") from error
        if not isinstance(answer, dict):
            raise SandboxError("the sandbox answered with something that is not an object")
        return answer

    async def _warm(self) -> None:
        """Wait until the helper has the SDK loaded (it loads while the packages install), so
        the first tool call costs what the others do."""
        with anyio.fail_after(START_TIMEOUT):
            answer = await self._exchange({"op": "warm"})
        if not answer["ok"]:
            raise SandboxError(f"the sandbox could not load the tools: {str(answer.get('error'))[:LOG_TAIL]}")

    async def _install(self, steps: list[InstallStep]) -> None:
        request = {"op": "install", "steps": [asdict(step) for step in steps], "timeout": self._limits.install_seconds}
        try:
            with anyio.fail_after(self._limits.install_seconds + ANSWER_GRACE):
                answer = await self._exchange(request)
        except TimeoutError:
            raise PackageInstallFailed(steps[0].manager, "package installation ran out of time") from None
        if answer["ok"]:
            return
        error = answer.get("error")
        if not isinstance(error, dict) or not isinstance(error.get("manager"), str):
            raise SandboxError(f"package installation failed: {str(error)[:LOG_TAIL]}")
        manager = error["manager"]
        if "missing" in error:
            raise PackageManagerUnavailable(manager, f"this worker cannot run it: {str(error['missing'])[:LOG_TAIL]}")
        raise PackageInstallFailed(manager, f"installing failed: {str(error.get('failed'))[-LOG_TAIL:]}")

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self._area.log.read_bytes()[-LOG_TAIL:].decode(errors="replace").strip() or "(no output)"
        return "(no output)"


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def processes_of(uid: int) -> list[tuple[int, str]]:
    """``(pid, command name)`` of the host's live (not zombie) processes whose real uid is `uid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("Uid", "-1").split()[0]) != uid or fields.get("State", "").strip().startswith(("Z", "X")):
            continue
        found.append((int(entry), fields.get("Name", "").strip()))
    return found


def kill_uid(uid: int) -> None:
    """SIGKILL every live process whose real uid is `uid`, until none is left: the net under
    the pid namespace, which should already have taken them all."""
    for _ in range(200):
        found = processes_of(uid)
        if not found:
            return
        for pid, _ in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)
    log.error("processes of sandbox uid %s survived SIGKILL", uid)


def _valid_block(block: Any) -> bool:
    if not isinstance(block, dict):
        return False
    if block.get("type") == "text":
        return isinstance(block.get("text"), str)
    if block.get("type") in ("image", "document"):
        source = block.get("source")
        return (
            isinstance(source, dict)
            and source.get("type") == "base64"
            and isinstance(source.get("media_type"), str)
            and isinstance(source.get("data"), str)
        )
    return False


def _content(value: Any) -> BetaFunctionToolResultType:
    """The helper is as untrusted as the code beside it: only tool content passes."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(_valid_block(block) for block in value):
        return cast(BetaFunctionToolResultType, value)
    return "the sandbox answered with something that is not tool content"
