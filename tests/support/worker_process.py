"""Real `agentry worker` processes, as an operator starts them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.serve_process import ROOT
from tests.support.server import ROOT_SECRET

READY = "taking turns"


class Worker:
    """One `agentry worker` process; its output is collected on a thread (never a full pipe)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli.main", "worker"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
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

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(READY in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the worker did not start:\n" + self.output)
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, as an orchestrator stops it; returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)
        return self.process.returncode


def worker_env(database_url: str, fake: Any, **settings: str) -> dict[str, str]:
    """A worker's environment: the database, the fake provider as its default Anthropic
    provider, and ``settings`` (``AGENTRY_`` names without the prefix)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTRY_")}
    env.update(
        {
            "AGENTRY_DATABASE_URL": database_url,
            # Model cards' keys are opened by whichever process drives the turn.
            "AGENTRY_ROOT_SECRET": ROOT_SECRET,
            "AGENTRY_ANTHROPIC_API_KEY": PROVIDER_KEY,
            "AGENTRY_ANTHROPIC_BASE_URL": fake.anthropic_base_url,
            "AGENTRY_LOG_LEVEL": "info",
        }
    )
    env.update({"AGENTRY_" + name: value for name, value in settings.items()})
    return env


@contextmanager
def running_workers(env: dict[str, str], count: int = 1) -> Iterator[list[Worker]]:
    """``count`` workers, started side by side and ready; stopped (SIGTERM) afterwards."""
    workers = [Worker(env) for _ in range(count)]
    try:
        for worker in workers:
            worker.wait_ready()
        yield workers
    finally:
        for worker in workers:  # all told first: they stop side by side
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in workers:
            worker.stop()
