"""What metering every request costs: request rate of the real app with rate limits on (limits
so high nothing is refused, so every request is metered and gets its headers) ÷ the same app
with them off, both embedded (SQLite), measured by `wrk` in the same run, alternating.

    .venv/bin/python bench/rate_limits.py [seconds per run, default 5]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import BENCH_KEY, ROOT, free_port, wait_until_serving, wrk_requests_per_second  # noqa: E402

UNREACHABLE_RPM = 1_000_000_000


def serve(kind: str, port: int, data_dir: str) -> None:
    from infra.settings import Settings
    from interfaces.bootstrap import build, server_config

    rpm = UNREACHABLE_RPM if kind == "metered" else 0
    settings = Settings(
        data_dir=Path(data_dir), bootstrap_api_key=BENCH_KEY, rate_limit_workspace_rpm=rpm, rate_limit_caller_rpm=rpm
    )
    platform = build(settings)
    platform.start()
    import uvicorn

    uvicorn.Server(server_config(settings, platform.asgi_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")).run()


def rate(kind: str, seconds: int) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        process = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port), data_dir], cwd=ROOT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base, process)
            created = httpx.post(base + "/v1/agents", json={"name": "a", "model": "m"}, headers={"x-api-key": BENCH_KEY})
            created.raise_for_status()
            if kind == "metered":
                probe = httpx.get(base + "/v1/agents", headers={"x-api-key": BENCH_KEY})
                assert "anthropic-ratelimit-requests-limit" in probe.headers, "metering is not on"
            return wrk_requests_per_second(base + "/v1/agents?limit=1", seconds)
        finally:
            process.terminate()
            process.wait(timeout=15)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    off, metered = [], []
    for _ in range(3):
        off.append(rate("off", seconds))
        metered.append(rate("metered", seconds))
    print(f"rate limits off:      {max(off):8.0f} requests/s  (runs: {', '.join(f'{r:.0f}' for r in off)})")
    print(f"every request metered:{max(metered):8.0f} requests/s  (runs: {', '.join(f'{r:.0f}' for r in metered)})")
    print(f"ratio metered ÷ off:  {max(metered) / max(off):.2f}")


if __name__ == "__main__":
    main()
