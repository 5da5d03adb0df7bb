"""What one session's sandbox may use. Every figure is enforced by the kernel, not by the
tools: the size cap by the session's own tmpfs, the rest by rlimits set before bubblewrap
starts (so nothing inside can raise them) and by the per-command deadline of the bash tool."""

from __future__ import annotations

from dataclasses import dataclass

# The SDK's session runner gives up on a tool call after 150 s (TOOL_TIMEOUT in
# `_beta_session_runner.py`); a command must end, and its error come back, before that.
MAX_COMMAND_SECONDS = 130.0


@dataclass(frozen=True)
class SandboxLimits:
    disk_bytes: int = 1 << 30
    """Size cap of the session's area: /workspace, /tmp, /dev/shm and the home directory
    (with the packages installed into it) together. A tmpfs, so it is memory the host lends."""
    memory_bytes: int = 2 << 30
    """Address space of each process the tools start (RLIMIT_AS)."""
    cpu_seconds: int = 600
    """CPU time of each process the tools start (RLIMIT_CPU); the persistent shell counts its
    builtins across commands, so a session whose shell spent it gets a fresh one."""
    processes: int = 256
    """Processes and threads the session's uid may have at once (RLIMIT_NPROC), the helper
    that runs the file tools included."""
    command_seconds: float = 120.0
    """Wall time of one bash command; a longer `timeout_ms` from the model is cut to it."""
    install_seconds: float = 600.0
    """Wall time of installing the environment's packages when the sandbox starts."""
    open_files: int = 4096
    """Open files per process (RLIMIT_NOFILE)."""

    def __post_init__(self) -> None:
        for name in ("disk_bytes", "memory_bytes", "cpu_seconds", "processes", "open_files"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxLimits.{name} must be positive")
        if not 0 < self.command_seconds <= MAX_COMMAND_SECONDS:
            raise ValueError(f"SandboxLimits.command_seconds must be in (0, {MAX_COMMAND_SECONDS:g}]")
        if self.install_seconds <= 0:
            raise ValueError("SandboxLimits.install_seconds must be positive")
        if self.processes < 16:
            raise ValueError("SandboxLimits.processes must leave room for the helper (at least 16)")
