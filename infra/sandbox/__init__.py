"""Sandboxes for one session's built-in tools (bash, read, write, edit, glob, grep), confined
by bubblewrap: see docs/sandbox.md."""

from infra.sandbox.errors import (
    PackageError,
    PackageInstallFailed,
    PackageManagerUnavailable,
    SandboxError,
    SandboxUnavailable,
)
from infra.sandbox.limits import SandboxLimits
from infra.sandbox.sandbox import Sandbox
from infra.sandbox.tools import sandbox_tools

__all__ = [
    "PackageError",
    "PackageInstallFailed",
    "PackageManagerUnavailable",
    "Sandbox",
    "SandboxError",
    "SandboxLimits",
    "SandboxUnavailable",
    "sandbox_tools",
]
