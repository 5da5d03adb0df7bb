"""Helpers for the sandbox tests: a sessions root bubblewrap can reach, tool calls that say
whether they failed, and the host's view of a sandbox's processes."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from anthropic.lib.tools import ToolError
from anthropic.lib.tools._tool_dispatch import run_runnable_tool

from infra.sandbox import Sandbox, sandbox_tools
from infra.sandbox.area import unmount_and_remove
from infra.sandbox.sandbox import processes_of


@contextmanager
def sessions_root() -> Iterator[Path]:
    """Under /tmp itself: pytest's own tmp folders are 0700, which the sandbox's uid cannot
    cross to reach its area."""
    root = Path(tempfile.mkdtemp(prefix="agentry-sandboxes-", dir="/tmp"))
    try:
        yield root
    finally:
        # What a failed test left mounted goes too (unmount first, never delete through a mount).
        unmount_and_remove(root)


class Tools:
    """A session's tools, called the way the SDK's session runner calls them."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.by_name = {tool.name: tool for tool in sandbox_tools(sandbox)}

    async def ok(self, name: str, **arguments: Any) -> Any:
        return await run_runnable_tool(self.by_name[name], arguments)

    async def error(self, name: str, **arguments: Any) -> str:
        """The text of the error the call ends in (the test fails if it succeeds)."""
        try:
            result = await run_runnable_tool(self.by_name[name], arguments)
        except ToolError as error:
            return str(error)
        raise AssertionError(f"{name} {arguments} succeeded: {result!r}")


def live_processes(uid: int) -> list[str]:
    """The command names of the host's processes running as `uid` that are not zombies."""
    return [name for _, name in processes_of(uid)]
