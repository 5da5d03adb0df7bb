"""A process a test starts as an operator would (`agentry worker`, `agentry sandbox-worker`,
the SDK's environment worker): its output is collected on a thread (never a full pipe)."""

from __future__ import annotations

import subprocess
import threading
import time

from tests.support.serve_process import ROOT


class ChildProcess:
    def __init__(self, command: list[str], env: dict[str, str], ready: str, what: str) -> None:
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._ready = ready
        self._what = what
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 60) -> None:  # an import on a loaded 2-core box can take 15 s
        deadline = time.monotonic() + timeout
        while not any(self._ready in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self._what} did not start:\n" + self.output)
            time.sleep(0.05)

    def stop(self, grace: float = 15) -> int:
        """SIGTERM, as an orchestrator stops it; returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)
        return self.process.returncode

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._reader.join(5)
