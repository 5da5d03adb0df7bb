"""A real uvicorn server running the real app, on a free port, in a background thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from infra.settings import Settings
from interfaces.bootstrap import ApiProcess, build, server_config
from tests.support.postgres import free_port

API_KEY = "agentry-test-key-0123456789-abcdefghijklmnop"
# With PostgreSQL the server needs the secret keys are hashed with (the embedded one makes its own).
API_KEY_SECRET = "agentry-test-key-hashing-secret-0123456789"
# And the root key that wraps the data keys of stored secrets (model-card keys).
ROOT_SECRET = "agentry-test-root-secret-0123456789-abcdefgh"


@dataclass
class RunningServer:
    base_url: str
    api_key: str
    platform: ApiProcess
    settings: Settings


def provider_settings(fake: Any) -> dict[str, Any]:
    """``Settings`` fields that make a fake provider (tests/support/fake_provider.py) the
    server's default Anthropic provider."""
    from tests.support.fake_provider import API_KEY as PROVIDER_KEY

    return {"anthropic_api_key": PROVIDER_KEY, "anthropic_base_url": fake.anthropic_base_url}


SANDBOX_WORKER_KEY = "sandbox-worker-key-for-tests-0123456789abcdef"


@contextmanager
def running_server(data_dir: Path, database_url: str = "", **overrides: Any) -> Iterator[RunningServer]:
    """``overrides`` are further ``Settings`` fields (timeouts, limits)."""
    fields: dict[str, Any] = {
        "api_key_secret": API_KEY_SECRET if database_url else "",
        "root_secret": ROOT_SECRET if database_url else "",
        # Embedded, the server generates its own; PostgreSQL's operator gives one.
        "sandbox_worker_key": SANDBOX_WORKER_KEY if database_url else "",
        **overrides,
    }
    settings = Settings(data_dir=data_dir, database_url=database_url, bootstrap_api_key=API_KEY, **fields)
    platform = build(settings)
    platform.start()
    port = free_port()
    server = uvicorn.Server(
        server_config(
            settings,
            platform.asgi_app(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            # Open SSE tails notice a gone client only at their next keep-alive; do not wait.
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", API_KEY, platform, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        platform.close()


REPO = Path(__file__).resolve().parents[2]


def run_cli(settings: Settings, *args: str, timeout: float = 180, **extra: str) -> subprocess.CompletedProcess[str]:
    """``agentry <args>`` as a separate process against a running server's stores (its data
    folder, database and secrets); ``extra`` are further environment variables."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AGENTRY_")}
    env.update(
        AGENTRY_DATA_DIR=str(settings.data_dir),
        AGENTRY_DATABASE_URL=settings.database_url,
        AGENTRY_API_KEY_SECRET=settings.api_key_secret,
        AGENTRY_ROOT_SECRET=settings.root_secret,
        AGENTRY_SANDBOX_WORKER_KEY=settings.sandbox_worker_key,
        AGENTRY_LOG_LEVEL="warning",
        **extra,
    )
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli.main", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
