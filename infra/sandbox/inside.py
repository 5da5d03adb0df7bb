"""The helper that runs inside a session's sandbox, as the session's uid, for as long as the
sandbox lives: it answers the worker's tool calls with the SDK's own tool implementations
(`anthropic.lib.tools.agent_toolset`) rooted at /workspace, so the file tools and bash are
confined by the same namespaces, uid, rlimits and size cap.

Started as `python -I -B inside.py CONFIG_JSON` from a read-only bind mount, without Agentry
on its path: it may import only the standard library and the anthropic SDK. It speaks JSON
lines on stdin/stdout (one request, one answer; the worker sends one at a time) and, when
the sandbox has networking, forwards 127.0.0.1:PROXY_PORT to the worker's egress proxy on
/run/agentry/egress.sock — the only way out of the sandbox's network namespace.

Everything it says is untrusted by the worker: code run by bash has the same uid and could
kill or imitate it. It makes itself non-dumpable so that code cannot read or write its pipes
through /proc, but the worker checks every answer anyway."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

WORKDIR = "/workspace"
MNT = "/mnt"
UPLOADS = "/mnt/session/uploads"
EGRESS_SOCKET = "/run/agentry/egress.sock"
LINE_LIMIT = 64 * 1024 * 1024
OUTPUT_TAIL = 4000
PR_SET_DUMPABLE = 4


class CallFailed(Exception):
    def __init__(self, content: Any) -> None:
        super().__init__("tool call failed")
        self.content = content


def _load_toolset() -> dict[str, Any]:
    from anthropic.lib.tools.agent_toolset import AgentToolContext, beta_agent_toolset_20260401

    # /mnt holds the session's memory stores and files; the uploads are read-only (their
    # files are root's 0444 too: this makes the SDK say so before the kernel does).
    context = AgentToolContext(
        workdir=WORKDIR,
        env=dict(os.environ),
        allowed_roots=[Path(MNT)],
        read_only_roots=[Path(UPLOADS)],
    )
    return {tool.name: tool for tool in beta_agent_toolset_20260401(context) if tool.name != "bash"}


def _kill_everything_else() -> None:
    """SIGKILL every other process of this sandbox (its own pid namespace: kill(-1) reaches
    all of it but the namespace's init and the caller), so a timed-out command leaves no
    background process, fork bomb or SIGTERM-ignoring child behind."""
    me = os.getpid()
    for _ in range(200):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(-1, signal.SIGKILL)
        alive = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in (1, me):
                continue
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry}/stat") as stat:
                    state = stat.read().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X"):
                    alive.append(entry)
        if not alive:
            return
        time.sleep(0.005)


def _limits(config: dict[str, Any]) -> str:
    """The per-process limits of the shell and all it starts. The CPU limit's soft side sends
    SIGXCPU (so the shell says "CPU time limit exceeded"), the hard side a second later kills."""
    cpu = int(config["cpu_seconds"])
    return f"ulimit -S -t {cpu} && ulimit -H -t {cpu + 1} && ulimit -v {int(config['memory_bytes']) // 1024}"


def _bash_arguments(
    command: str | None = None, restart: bool | None = None, timeout_ms: int | None = None
) -> tuple[str | None, bool | None, int | None]:
    """The SDK's bash signature, so its arguments are validated as the SDK validates them."""
    return command, restart, timeout_ms


@functools.cache
def _bash_validator() -> Any:
    """Built once (pydantic imported on first use): building it costs ~1 ms, most of a
    sandboxed bash call."""
    import pydantic

    return pydantic.validate_call(_bash_arguments)


class Shell:
    """The session's persistent bash, started with the per-process CPU and memory rlimits."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._session: Any = None

    async def _start(self) -> Any:
        import anyio
        from anthropic.lib.tools.agent_toolset import BashSession

        proc = await anyio.open_process(
            ["/bin/bash", "-c", f"{_limits(self._config)} && exec /bin/bash --noprofile --norc"],
            cwd=WORKDIR,
            env={**os.environ, "PS1": "", "PS2": "", "TERM": "dumb"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return BashSession(proc)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        _kill_everything_else()

    async def run(self, arguments: dict[str, Any]) -> str:
        import pydantic

        try:
            command, restart, timeout_ms = _bash_validator()(**arguments)
        except pydantic.ValidationError as error:
            raise CallFailed("Invalid arguments for function bash") from error
        if restart:
            await self.close()
            self._session = await self._start()
            return "bash session restarted"
        if not command:
            raise CallFailed("bash: command is required")
        limit = float(self._config["command_seconds"])
        timeout = min(timeout_ms / 1000.0, limit) if timeout_ms and timeout_ms > 0 else limit
        # A shell that died (its CPU limit, `exit`, a timeout) is replaced, not reported.
        if self._session is None or self._session.closed:
            await self.close()
            self._session = await self._start()
        try:
            output, code = await self._session.exec(command, timeout=timeout)
        except TimeoutError as error:
            await self.close()
            raise CallFailed(f"bash: {error}; the shell and every process it started were killed") from error
        except RuntimeError as error:
            await self.close()
            raise CallFailed(f"bash: {error}") from error
        if code != 0:
            raise CallFailed(output)
        return str(output)


class Helper:
    def __init__(self, config: dict[str, Any], out: Any) -> None:
        self._config = config
        self._out = out
        self._shell = Shell(config)
        self._toolset: asyncio.Future[dict[str, Any]] | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # The SDK takes about a second to import; bash and the package installs need little
        # of it, so the file tools' half loads while they start.
        self._toolset = loop.run_in_executor(None, _load_toolset)
        if self._config.get("proxy_port"):
            await asyncio.start_server(_forward, "127.0.0.1", int(self._config["proxy_port"]))
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        self._send({"ready": True})
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                self._send({"id": None, "ok": False, "error": "request too large"})
                return
            if not line:
                await self._shell.close()
                return
            request = json.loads(line)
            self._send(await self._answer(request))

    async def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        handlers: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "call": self._call,
            "install": self._install,
            "close_shell": self._close_shell,
            "warm": self._warm,
        }
        handler = handlers.get(str(request.get("op")))
        if handler is None:
            return {"id": request.get("id"), "ok": False, "error": f"unknown op {request.get('op')!r}"}
        try:
            return {"id": request.get("id"), "ok": True, "content": await handler(request)}
        except CallFailed as failure:
            return {"id": request.get("id"), "ok": False, "error": failure.content}

    async def _call(self, request: dict[str, Any]) -> Any:
        name, arguments = str(request.get("tool")), request.get("input")
        if not isinstance(arguments, dict):
            raise CallFailed(f"Input must be a dictionary, got {type(arguments).__name__}")
        if name == "bash":
            return await self._shell.run(arguments)
        assert self._toolset is not None
        tool = (await self._toolset).get(name)
        if tool is None:
            raise CallFailed(f"unknown tool {name!r}")
        from anthropic.lib.tools import ToolError

        try:
            result = await tool.call(arguments)
        except ToolError as error:
            raise CallFailed(_plain(error.content)) from error
        except Exception as error:  # the runner reports any tool exception as an error result
            raise CallFailed(f"{name}: {error}") from error
        return _plain(result)

    async def _warm(self, _request: dict[str, Any]) -> Any:
        assert self._toolset is not None
        await self._toolset
        from anthropic.lib.tools.agent_toolset import BashSession  # noqa: F401  (loaded by now)

        return "warm"

    async def _close_shell(self, _request: dict[str, Any]) -> Any:
        await self._shell.close()
        return "closed"

    async def _install(self, request: dict[str, Any]) -> Any:
        """Run each manager's probe, then its install, within one deadline; the worker turns
        a missing manager or a failed install into the matching error."""
        deadline = time.monotonic() + float(request["timeout"])
        limits = _limits(self._config)
        for step in request["steps"]:
            manager = step["manager"]
            probe = step["probe"]
            if shutil.which(probe[0]) is None:
                raise CallFailed({"manager": manager, "missing": f"{probe[0]} is not installed on this worker"})
            for argv, is_probe in ((probe, True), (step["argv"], False)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CallFailed({"manager": manager, "failed": "package installation ran out of time"})
                proc = await asyncio.create_subprocess_exec(
                    "/bin/bash",
                    "-c",
                    f'{limits} && exec "$@"',
                    "install",
                    *argv,
                    cwd=WORKDIR,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **step.get("env", {})},
                )
                try:
                    output, _ = await asyncio.wait_for(proc.communicate(), remaining)
                except TimeoutError:
                    _kill_everything_else()
                    raise CallFailed({"manager": manager, "failed": "package installation ran out of time"}) from None
                tail = output.decode(errors="replace")[-OUTPUT_TAIL:]
                if proc.returncode != 0:
                    if is_probe:
                        raise CallFailed({"manager": manager, "missing": f"`{' '.join(probe)}` failed: {tail}"})
                    raise CallFailed({"manager": manager, "failed": tail})
        return "installed"

    def _send(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message).encode() + b"\n")
        self._out.flush()


def _plain(content: Any) -> Any:
    if content is None:
        return "(no output)"
    if isinstance(content, str):
        return content
    return [dict(block) for block in content]


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        up_reader, up_writer = await asyncio.open_unix_connection(EGRESS_SOCKET)
    except OSError:
        writer.close()
        return

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        with contextlib.suppress(OSError):
            sink.write_eof()

    try:
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    finally:
        up_writer.close()
        writer.close()


def main() -> None:
    config = json.loads(sys.argv[1])
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the answers
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    asyncio.run(Helper(config, out).run())


if __name__ == "__main__":
    main()
