"""What the slow-client bounds cost: request rate of the real app served with the bounds
(header deadline protocol + body deadline middleware) ÷ the same app on uvicorn's own
protocol, both embedded (SQLite), measured by `wrk` in the same run, alternating.

    .venv/bin/python bench/edge_bounds.py [seconds per run, default 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import BENCH_KEY, compare_alternating, served_read_rate  # noqa: E402


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


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    compare_alternating(
        lambda kind: served_read_rate(__file__, kind, seconds),
        ("plain", "uvicorn's own protocol"),
        ("bounded", "with the bounds"),
    )


if __name__ == "__main__":
    main()
