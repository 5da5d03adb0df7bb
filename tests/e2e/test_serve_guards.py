"""`agentry serve` as an operator runs it: settings it cannot run safely with stop it at once
with a message saying why; the slow-client settings reach the real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.postgres import free_port
from tests.support.serve_process import ROOT, start_serve

GOOD_KEY = "agentry-serve-guard-key-0123456789abcdef"


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTRY_")}
    env.update({"AGENTRY_DATA_DIR": str(tmp_path / "data"), "AGENTRY_PORT": str(free_port())})
    env.update({"AGENTRY_" + name: value for name, value in settings.items()})
    return env


def _refused_at_once(env: dict[str, str]) -> str:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "interfaces.cli.main", "serve"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert time.monotonic() - started < 15
    return done.stderr


def test_a_short_bootstrap_key_is_refused(tmp_path: Path) -> None:
    short = "agentry-too-short-key"
    message = _refused_at_once(_env(tmp_path, BOOTSTRAP_API_KEY=short))
    assert "AGENTRY_BOOTSTRAP_API_KEY" in message and "at least 32" in message
    assert short not in message
    assert not (tmp_path / "data").exists(), "nothing was created"


def test_postgres_without_a_key_secret_is_refused(tmp_path: Path, postgres_url: str) -> None:
    message = _refused_at_once(_env(tmp_path, DATABASE_URL=postgres_url, BOOTSTRAP_API_KEY=GOOD_KEY))
    assert "AGENTRY_API_KEY_SECRET is required with PostgreSQL" in message


def test_the_header_timeout_setting_reaches_the_server(tmp_path: Path) -> None:
    env = _env(tmp_path, BOOTSTRAP_API_KEY=GOOD_KEY, HEADER_TIMEOUT="1")
    server, _ = start_serve(env)
    try:
        with socket.create_connection(("127.0.0.1", int(env["AGENTRY_PORT"])), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            started = time.monotonic()
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            assert time.monotonic() - started < 2.5
        assert answer.startswith(b"HTTP/1.1 408 ")
    finally:
        server.terminate()
        server.communicate(timeout=15)
