"""`agentry serve` as an operator runs it: a real process, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.support.postgres import free_port
from tests.support.serve_process import start_serve

KEY = "agentry-serve-process-test-key-0123456789"


def test_sigterm_ends_open_streams_and_closes_the_platform(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "AGENTRY_DATA_DIR": str(tmp_path),
        "AGENTRY_BOOTSTRAP_API_KEY": KEY,
        "AGENTRY_PORT": str(port),
        "AGENTRY_LOG_LEVEL": "info",
    }
    env.pop("AGENTRY_DATABASE_URL", None)
    server, base = start_serve(env)
    try:
        http = httpx.Client(base_url=base, headers={"x-api-key": KEY}, timeout=30)
        agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()
        env_ = http.post("/v1/environments", json={"name": "e"}).json()
        session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env_["id"]}).json()

        outcomes: list[str] = []

        def follow() -> None:
            try:
                with http.stream("GET", f"/v1/sessions/{session['id']}/events/stream") as stream:
                    for _ in stream.iter_lines():
                        pass
                outcomes.append("ended")
            except httpx.HTTPError as error:
                outcomes.append(type(error).__name__)

        streams = [threading.Thread(target=follow) for _ in range(3)]
        for thread in streams:
            thread.start()
        time.sleep(1)  # the streams are open and idle

        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=15)
        stopped_after = time.monotonic() - started
        for thread in streams:
            thread.join(timeout=5)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    assert server.returncode == 0, output
    assert stopped_after < 5, f"shutdown waited {stopped_after:.1f}s on open streams"
    assert outcomes == ["ended"] * 3, "streams were cut off instead of ended"
    assert "agentry stopped cleanly" in output
    assert KEY not in output
