"""The operations surface on a real server: probes, /metrics after a known workload (parsed by
prometheus-client's own parser), the access log's request ids, and a projector's metrics port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from application.ports import ModelUsage
from application.runtime.pricing import cost_micros
from tests.support.fake_provider import FakeProvider, Reply, Text
from tests.support.postgres import free_port
from tests.support.sdk_sessions import idles, say, sdk_client, wait_for
from tests.support.serve_process import ROOT, start_serve
from tests.support.server import API_KEY_SECRET, ROOT_SECRET, RunningServer, running_server

PRICED_MODEL = "claude-sonnet-4-6"
AGENTS = 3


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def labelled(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> dict[str, float]:
    """``name``'s samples keyed by their one label's value."""
    return {labels[0][1]: v for (sample, labels), v in found.items() if sample == name and len(labels) == 1}


def until(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def scrape(base_url: str, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{base_url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def test_metrics_hold_the_counts_of_a_known_workload(server: RunningServer, http: httpx.Client, fake_provider: FakeProvider) -> None:
    for index in range(AGENTS):
        assert http.post("/v1/agents", json={"name": f"a{index}", "model": PRICED_MODEL}).status_code == 200
    agent = http.get("/v1/agents").json()["data"][0]
    assert http.get("/v1/agents/agent_doesnotexist0000000000").status_code == 404
    environment = http.post("/v1/environments", json={"name": "e"}).json()
    session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": environment["id"]}).json()

    fake_provider.script(Reply([Text("Hello there.")], usage={"input_tokens": 1200, "output_tokens": 30}))
    client = sdk_client(server)
    say(client, session["id"], "hi")
    log = wait_for(client, session["id"], idles(1))

    # One stream, replaying the whole log: every event is delivered once.
    with http.stream("GET", f"/v1/sessions/{session['id']}/events/stream", params={"after_seq": 0}) as stream:
        ids = []
        for line in stream.iter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            if len(ids) == len(log):
                open_now = scrape(server.base_url)
                break
    assert ids == [event.seq for event in log]
    assert value(open_now, "agentry_sse_streams_open") == 1
    # The last write waits for the projections (read-your-writes); the followers catch up on their own.
    http.post("/v1/agents", json={"name": "last", "model": PRICED_MODEL})

    def settled() -> Any:
        found = scrape(server.base_url)
        lags = labelled(found, "agentry_projection_lag_events")
        quiet = value(found, "agentry_sse_streams_open") == 0 and value(found, "agentry_turns_running") == 0
        return found if quiet and lags and not any(lags.values()) else None

    found = until(settled)
    assert value(found, "agentry_http_requests_total", method="POST", route="/v1/agents", status="200") == AGENTS + 1
    assert value(found, "agentry_http_requests_total", method="GET", route="/v1/agents/{agent_id}", status="404") == 1
    assert value(found, "agentry_http_requests_total", method="POST", route="/v1/sessions", status="200") == 1
    # Histograms count what the counter counts, per route and status.
    assert value(found, "agentry_http_request_duration_seconds_count", method="POST", route="/v1/agents", status="200") == AGENTS + 1
    # Never the raw path: an id is not a label value.
    assert not any(agent["id"] in str(labels) for (_, labels) in found)

    # Every append is counted: at least one per write above, and every event of the session.
    appends = value(found, "agentry_event_store_appends_total")
    assert appends >= AGENTS + 1 + 2 + 1
    assert value(found, "agentry_event_store_events_appended_total") >= len(log) + AGENTS + 1
    assert value(found, "agentry_event_store_append_duration_seconds_count") == appends
    assert value(found, "agentry_sse_events_delivered_total") == len(log)

    head = value(found, "agentry_event_log_head")
    positions = labelled(found, "agentry_projection_position")
    assert {"agents", "sessions", "vectors"} <= set(positions)
    assert all(position == head for position in positions.values())

    # The turn: one provider request, its tokens and its list price.
    starts = sum(event.type == "span.model_request_start" for event in log)
    assert starts == 1
    latency = {labels: v for (name, labels), v in found.items() if name == "agentry_provider_request_duration_seconds_count"}
    assert sum(latency.values()) == 1
    assert dict(next(iter(latency))) == {"provider": "ant", "model": PRICED_MODEL, "outcome": "ok"}
    assert value(found, "agentry_model_tokens_total", model=PRICED_MODEL, direction="input") == 1200
    assert value(found, "agentry_model_tokens_total", model=PRICED_MODEL, direction="output") == 30
    cost, priced = cost_micros(PRICED_MODEL, ModelUsage(input_tokens=1200, output_tokens=30))
    assert priced and value(found, "agentry_model_cost_usd_total", model=PRICED_MODEL) == pytest.approx(cost / 1e6)
    assert value(found, "agentry_turn_duration_seconds_count") >= 1


def test_probes_answer_without_a_key(server: RunningServer) -> None:
    assert httpx.get(f"{server.base_url}/livez").json() == {"status": "ok"}
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.base_url}/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"event_store", "projections", "runtime"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["projections"]["max_lag"] == 1000
    assert ready.headers["request-id"].startswith("req_")


@pytest.mark.server_settings(projections_in_process=False, ready_max_lag=0)
def test_readyz_is_503_while_a_projection_is_behind(server: RunningServer, http: httpx.Client) -> None:
    # Projections run elsewhere, and nothing runs them: the bootstrap key and this agent wait.
    assert http.post("/v1/agents", json={"name": "a", "model": "m"}).status_code == 200
    ready = httpx.get(f"{server.base_url}/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not_ready"
    assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    assert body["request_id"] == ready.headers["request-id"]
    projections = body["checks"]["projections"]
    assert projections["ok"] is False and "agents" in projections["behind"] and projections["lag"]["agents"] >= 2
    assert body["checks"]["event_store"]["ok"] is True

    # A projector catches up (as `agentry project` would): ready again.
    server.platform.projections.catch_up()
    server.platform.followers.catch_up()
    ready = until(lambda: (r := httpx.get(f"{server.base_url}/readyz")).status_code == 200 and r)
    assert ready.json()["checks"]["projections"]["behind"] == []


@pytest.mark.server_settings(projections_in_process=False, ready_max_lag=0, ready_projections=False)
def test_readyz_leaves_projections_out_when_they_are_fed_from_kafka(server: RunningServer, http: httpx.Client) -> None:
    # As with `agentry project --from kafka`: nothing moves the log positions here.
    assert http.post("/v1/agents", json={"name": "a", "model": "m"}).status_code == 200
    ready = httpx.get(f"{server.base_url}/readyz")
    assert ready.status_code == 200, ready.text
    assert "projections" not in ready.json()["checks"] and ready.json()["checks"]["event_store"]["ok"] is True


@pytest.mark.server_settings(metrics_require_key=True)
def test_metrics_may_require_a_key(server: RunningServer) -> None:
    refused = httpx.get(f"{server.base_url}/metrics")
    assert refused.status_code == 401
    assert refused.json()["request_id"] == refused.headers["request-id"]
    found = scrape(server.base_url, **{"x-api-key": server.api_key})
    assert value(found, "agentry_http_requests_total", method="GET", route="/metrics", status="401") == 1
    assert httpx.get(f"{server.base_url}/readyz").status_code == 200  # the probes stay public


KEY = "agentry-operations-test-key-0123456789abcdef"


def test_each_request_has_one_json_log_line_with_its_request_id(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "AGENTRY_DATA_DIR": str(tmp_path), "AGENTRY_BOOTSTRAP_API_KEY": KEY, "AGENTRY_PORT": str(port)}
    for name in ("AGENTRY_DATABASE_URL", "AGENTRY_LOG_FORMAT"):
        env.pop(name, None)
    server, base = start_serve(env)  # its stderr is a pipe, not a terminal: JSON lines
    secret = "s3cr3t-in-a-query-string-0123456789"
    try:
        with httpx.Client(base_url=base, headers={"x-api-key": KEY}) as http:
            created = http.post("/v1/agents", json={"name": "a", "model": "m"})
            missing = http.get("/v1/agents/agent_doesnotexist0000000000", params={"token": secret})
            refused = httpx.get(f"{base}/v1/agents", headers={"x-api-key": "agentry-wrong-key-" + secret})
            # falcon refuses an unknown method before any middleware's process_request ran
            odd = http.request("PURGE", "/v1/agents")
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    lines = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len(output.strip().splitlines()), "every line is one JSON object"
    by_id = {line.get("request_id"): line for line in lines if line.get("logger") == "agentry.access"}

    line = by_id[created.headers["request-id"]]
    assert {k: line[k] for k in ("method", "route", "status", "tenant")} == {
        "method": "POST", "route": "/v1/agents", "status": 200, "tenant": "default",
    }  # fmt: skip
    assert line["duration_ms"] >= 0 and line["level"] == "info"
    for response, route, status in ((missing, "/v1/agents/{agent_id}", 404), (refused, "/v1/agents", 401)):
        assert response.json()["request_id"] == response.headers["request-id"]  # the envelope repeats it
        line = by_id[response.headers["request-id"]]
        assert (line["route"], line["status"]) == (route, status)
    assert "tenant" not in by_id[refused.headers["request-id"]]
    assert 400 <= odd.status_code < 500 and "request-id" in odd.headers, (odd.status_code, odd.headers, odd.text)
    assert odd.headers["request-id"] in by_id
    assert by_id[odd.headers["request-id"]]["status"] == odd.status_code
    assert "Traceback" not in output
    assert secret not in output and KEY not in output
    assert any(line.get("step") == "projection_batch" for line in lines)


def test_agentry_project_answers_metrics_on_its_own_port(tmp_path: Path, postgres_url: str) -> None:
    with running_server(tmp_path / "api", postgres_url, projections_in_process=False) as api:
        with httpx.Client(base_url=api.base_url, headers={"x-api-key": api.api_key}) as http:
            for index in range(AGENTS):
                assert http.post("/v1/agents", json={"name": f"a{index}", "model": "m"}).status_code == 200
        head = api.platform.store.max_notification_id()
        port = free_port()
        env = {
            **os.environ,
            "AGENTRY_DATA_DIR": str(tmp_path / "projector"),
            "AGENTRY_DATABASE_URL": postgres_url,
            "AGENTRY_API_KEY_SECRET": API_KEY_SECRET,
            "AGENTRY_ROOT_SECRET": ROOT_SECRET,
            "AGENTRY_METRICS_PORT": str(port),
            "AGENTRY_LOG_FORMAT": "json",
        }
        projector = subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli.main", "project"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:

            def caught_up() -> Any:
                try:
                    found = samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
                except httpx.TransportError:
                    return None
                positions = labelled(found, "agentry_projection_position")
                return found if positions.get("agents", 0) >= head else None

            found = until(caught_up, timeout=60)
        finally:
            projector.send_signal(signal.SIGTERM)
            output, _ = projector.communicate(timeout=30)
        assert projector.returncode == 0, output
        assert value(found, "agentry_event_log_head") >= head
        assert labelled(found, "agentry_projection_lag_events")["agents"] == value(found, "agentry_event_log_head") - labelled(
            found, "agentry_projection_position"
        )["agents"]
        # Its own process: it answered no HTTP requests of the API.
        assert not [name for (name, _) in found if name == "agentry_http_requests_total"]
        assert '"step":"projection_batch"' in output.replace(" ", "")


def test_a_worker_reports_its_turns_on_its_own_metrics_port(tmp_path: Path, postgres_url: str, fake_provider: FakeProvider) -> None:
    from tests.support.worker_process import running_workers, worker_env

    port = free_port()
    with running_server(tmp_path / "api", postgres_url, turns="workers") as api:
        env = worker_env(postgres_url, fake_provider, METRICS_PORT=str(port), LOG_FORMAT="json")
        with running_workers(env, 1) as (worker,):
            client = sdk_client(api)
            agent = client.beta.agents.create(name="runner", model=PRICED_MODEL)
            environment = client.beta.environments.create(name="env")
            session_id = client.beta.sessions.create(agent=agent.id, environment_id=environment.id).id
            fake_provider.script(Reply([Text("Answered by a worker.")], usage={"input_tokens": 70, "output_tokens": 7}))
            say(client, session_id, "hi")
            wait_for(client, session_id, idles(1))

            def turn_over() -> Any:
                found = samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
                return found if value(found, "agentry_turn_duration_seconds_count") >= 1 else None

            found = until(turn_over)
        output = worker.output
    assert value(found, "agentry_turns_running") == 0
    assert value(found, "agentry_model_tokens_total", model=PRICED_MODEL, direction="input") == 70
    assert value(found, "agentry_provider_request_duration_seconds_count", provider="ant", model=PRICED_MODEL, outcome="ok") == 1
    # The turn's steps were written by the worker, and measured there.
    assert value(found, "agentry_event_store_events_appended_total") >= 1
    assert value(found, "agentry_event_store_append_duration_seconds_count") == value(found, "agentry_event_store_appends_total")
    turns = [orjson.loads(line) for line in output.splitlines() if line.startswith("{") and '"step":"turn"' in line]
    assert [(line["session_id"], line["outcome"]) for line in turns] == [(session_id, "done")]
