"""Real `agentry worker` processes, as an operator starts them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.child_process import ChildProcess
from tests.support.fake_provider import API_KEY as PROVIDER_KEY
from tests.support.server import ROOT_SECRET

READY = "taking turns"


class Worker(ChildProcess):
    """One `agentry worker` process."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__([sys.executable, "-m", "interfaces.cli.main", "worker"], env, READY, "the worker")


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
