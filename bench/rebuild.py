"""`agentry projections rebuild all` (the read-model projections, in-process, the code path
of ``interfaces/cli/main.py`` → ``projections/runner.py``) ÷ a raw psycopg batch insert of as
many rows (``executemany`` in one transaction) into a table shaped like a read model's, both
measured in this run against the same PostgreSQL.

    .venv/bin/python bench/rebuild.py [--events 20000] [--rounds 3]

'all' on the command line also rebuilds the ``vectors`` index (after the read models), a
different thing: its cost is the embedding model's, and only memories and knowledge documents
are embedded, none of which this bench's log holds. This bench times the read models (all 23),
which is what the ratio is about. Needs PostgreSQL (see bench/_support.py)."""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from _support import scratch_database  # noqa: E402

from domain.agents import Agent  # noqa: E402
from domain.environments import Environment  # noqa: E402
from domain.sessions import Session  # noqa: E402
from infra.event_store import EventsourcingEventStore, event_store_env  # noqa: E402
from infra.settings import Settings  # noqa: E402
from projections.resources import all_projections  # noqa: E402
from projections.runner import ReadModelRunner, create_engine  # noqa: E402

# One turn of a session as the runtime records it: running, the user's message, a model
# request with its usage and then its cost, the answer, idle (7 events; two change the
# session's row, two the usage counters).
TURN = (
    ("session.status_running", {}),
    ("user.message", {"content": [{"type": "text", "text": "hello there, how are you today?"}]}),
    ("span.model_request_start", {}),
    ("span.model_request_end", {"model_usage": {"input_tokens": 1200, "output_tokens": 300}}),
    ("agent.message", {"content": [{"type": "text", "text": "Fine, thanks. " * 8}]}),
    ("session.status_idle", {"stop_reason": {"type": "end_turn"}}),
)


def seed(store: EventsourcingEventStore, total: int) -> None:
    """Agents (created, updated twice), environments, and sessions of six turns each, saved
    in batches straight through the event store."""
    batch: list = []

    def flush() -> None:
        if batch:
            store.save(*batch)
            batch.clear()

    count = 0
    index = 0
    while count < total:
        tenant = f"tenant{index % 10}"
        agent = Agent(agent_id=f"agent_b{index:012d}", tenant_id=tenant, definition={"name": "bench", "model": "m", "metadata": {}})
        agent.update({"name": "bench-1", "model": "m"})
        agent.update({"name": "bench-2", "model": "m"})
        environment = Environment(environment_id=f"env_b{index:012d}", tenant_id=tenant, definition={"name": "e", "config": {}})
        session = Session(
            session_id=f"sesn_b{index:012d}", tenant_id=tenant, agent={"id": agent.agent_id, "version": 3, "model": "m"},
            environment_id=environment.environment_id, details={},
        )  # fmt: skip
        count += 3 + 1 + 1
        for turn in range(6):
            span = f"sevt_{index}_{turn}_span"
            for event_type, payload in TURN:
                if event_type == "span.model_request_end":
                    payload = {**payload, "model_request_start_id": span}
                session.record(event_type, span if event_type == "span.model_request_start" else f"sevt_{index}_{turn}_{event_type}", payload)
                count += 1
                if event_type == "span.model_request_end":
                    session.record_cost(span, 1500, True)
                    count += 1
        batch.extend((agent, environment, session))
        index += 1
        if len(batch) >= 60:
            flush()
    flush()


def raw_batch_insert_seconds(url: str, rows: int, doc: dict) -> float:
    """``rows`` rows of (id, stream_id, tenant_id, created_at, doc jsonb) inserted with one
    ``executemany`` in one transaction: the floor a rebuild that writes as many rows has."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE bench_raw (id varchar(64) PRIMARY KEY, stream_id varchar(36) NOT NULL,"
            " tenant_id varchar(64) NOT NULL, created_at varchar(40) NOT NULL, doc jsonb NOT NULL)"
        )
        conn.commit()
        text = json.dumps(doc)
        values = [(f"row{i:010d}", f"{i:036d}", "tenant", "2026-01-01T00:00:00.000000Z", text) for i in range(rows)]
        started = time.perf_counter()
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO bench_raw (id, stream_id, tenant_id, created_at, doc) VALUES (%s, %s, %s, %s, %s)", values
            )
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_raw")
        conn.commit()
    return elapsed


def rebuild_all_seconds(runner: ReadModelRunner) -> tuple[float, float, int]:
    """``projections rebuild all`` minus the vector index, as the CLI runs it: the seconds,
    this process's CPU seconds in them (the machine is shared), and the position reached."""
    started, cpu = time.perf_counter(), time.process_time()
    position = runner.rebuild(*runner.names)
    return time.perf_counter() - started, time.process_time() - cpu, position


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with scratch_database() as url, tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), database_url=url)
        store = EventsourcingEventStore(event_store_env(settings))
        print(f"seeding about {args.events} events (agents, environments, sessions with turns) …", flush=True)
        seed(store, args.events)
        total = store.max_notification_id()
        print(f"  {total} events recorded", flush=True)
        engine = create_engine(settings.read_model_url)
        runner = ReadModelRunner(engine, store, all_projections())
        runner.setup()
        doc = {"id": "sesn_b000000000001", "type": "session", "status": "idle", "metadata": {}, "title": None,
               "created_at": "2026-01-01T00:00:00.000000Z", "updated_at": "2026-01-01T00:00:00.000000Z"}  # fmt: skip

        # As the CLI does before it rebuilds (interfaces/cli/main.py, _freeze_startup_objects):
        # what is alive now is set aside from the cyclic collector.
        gc.collect()
        gc.freeze()
        # Rounds alternate (the machine is shared: drift hits both); the best of each counts.
        raw_runs, rebuild_runs = [], []
        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number}: raw psycopg executemany of {total} rows in one transaction …", flush=True)
            raw_runs.append(total / raw_batch_insert_seconds(url, total, doc))
            print(f"  {raw_runs[-1]:,.0f} rows/s", flush=True)
            print(f"round {round_number}: projections rebuild all ({len(runner.names)} read models; not vectors) …", flush=True)
            seconds, cpu, position = rebuild_all_seconds(runner)
            assert position == total, (position, total)
            rebuild_runs.append(total / seconds)
            print(f"  up to event {position} in {seconds:.2f}s ({cpu:.2f}s CPU): {rebuild_runs[-1]:,.0f} events/s", flush=True)
        store.close()
        engine.dispose()
    raw, rebuild = max(raw_runs), max(rebuild_runs)
    print(f"best: raw {raw:,.0f} rows/s, rebuild {rebuild:,.0f} events/s")
    print(f"ratio: rebuild all rate / raw batch insert rate = {rebuild / raw:.3f}")


if __name__ == "__main__":
    main()
