"""What metering every request costs: request rate of the real app with rate limits on (limits
so high nothing is refused, so every request is metered and gets its headers) ÷ the same app
with them off, both embedded (SQLite), measured by `wrk` in the same run, alternating.

    .venv/bin/python bench/rate_limits.py [seconds per run, default 5]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import BENCH_KEY, compare_alternating, served_read_rate  # noqa: E402

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


def check_metered(kind: str) -> Callable[[str], None] | None:
    def check(base: str) -> None:
        probe = httpx.get(base + "/v1/agents", headers={"x-api-key": BENCH_KEY})
        assert "anthropic-ratelimit-requests-limit" in probe.headers, "metering is not on"

    return check if kind == "metered" else None


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    compare_alternating(
        lambda kind: served_read_rate(__file__, kind, seconds, check_metered(kind)),
        ("off", "rate limits off"),
        ("metered", "every request metered"),
    )


if __name__ == "__main__":
    main()
