"""What the slow-client bounds cost: request rate of the real app served with the bounds
(header deadline protocol + body deadline middleware) ÷ the same app on uvicorn's own
protocol, both embedded (SQLite), measured by `wrk` in the same run, alternating.

    .venv/bin/python bench/edge_bounds.py [seconds per run, default 5]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import BENCH_KEY, ROOT, free_port, wait_until_serving, wrk_requests_per_second  # noqa: E402


def serve(kind: str, port: int, data_dir: str) -> None:
    import uvicorn

    from infra.settings import Settings
    from interfaces.bootstrap import build, server_config

    settings = Settings(
        data_dir=Path(data_dir), bootstrap_api_key=BENCH_KEY, rate_limit_workspace_rpm=0, rate_limit_caller_rpm=0
    )
    platform = build(settings)
    platform.start()
    options = {"host": "127.0.0.1", "port": port, "log_level": "warning", "lifespan": "off"}
    if kind == "bounded":
        config = server_config(settings, platform.asgi_app(), **options)
    else:
        config = uvicorn.Config(platform.asgi_app(), **options)
    uvicorn.Server(config).run()


def rate(kind: str, seconds: int) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, str(port), data_dir], cwd=ROOT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base, process)
            httpx.post(base + "/v1/agents", json={"name": "a", "model": "m"}, headers={"x-api-key": BENCH_KEY})
            return wrk_requests_per_second(base + "/v1/agents?limit=1", seconds)
        finally:
            process.terminate()
            process.wait(timeout=15)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    plain, bounded = [], []
    for _ in range(3):
        plain.append(rate("plain", seconds))
        bounded.append(rate("bounded", seconds))
    print(f"uvicorn's own protocol: {max(plain):8.0f} requests/s  (runs: {', '.join(f'{r:.0f}' for r in plain)})")
    print(f"with the bounds:        {max(bounded):8.0f} requests/s  (runs: {', '.join(f'{r:.0f}' for r in bounded)})")
    print(f"ratio bounded ÷ plain:  {max(bounded) / max(plain):.2f}")


if __name__ == "__main__":
    main()
