"""The session's tools as the SDK's runner sees them: the names, descriptions and input
schemas of `beta_agent_toolset_20260401`, each call carried out inside the session's
sandbox. Hand them to the SDK's worker per session:

    EnvironmentWorker(client, workdir=sandbox.workdir, tools=lambda _context: sandbox_tools(sandbox))"""

from __future__ import annotations

from typing import Any

from anthropic.lib.tools import BetaAsyncBuiltinFunctionTool, BetaFunctionToolResultType
from anthropic.lib.tools.agent_toolset import AgentToolContext, beta_agent_toolset_20260401
from anthropic.types.beta import BetaToolUnionParam

from infra.sandbox.command import WORKDIR
from infra.sandbox.sandbox import Sandbox


class SandboxTool(BetaAsyncBuiltinFunctionTool):
    def __init__(self, sandbox: Sandbox, definition: BetaToolUnionParam) -> None:
        self._sandbox = sandbox
        self._definition = definition

    def to_dict(self) -> BetaToolUnionParam:
        return self._definition

    async def call(self, input: object) -> BetaFunctionToolResultType:
        if not isinstance(input, dict):
            raise TypeError(f"Input must be a dictionary, got {type(input).__name__}")
        arguments: dict[str, Any] = input
        return await self._sandbox.call(self.name, arguments)


def sandbox_tools(sandbox: Sandbox) -> list[BetaAsyncBuiltinFunctionTool]:
    # The SDK's own tools, bound to the path they have inside, lend their definitions.
    reference = beta_agent_toolset_20260401(AgentToolContext(workdir=WORKDIR))
    return [SandboxTool(sandbox, tool.to_dict()) for tool in reference]
