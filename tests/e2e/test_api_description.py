"""The API describes itself: every route is in /openapi.json (and nothing else is), the
documents and the interactive reference are served without a key and without any other
host, and the event catalogue is published as AsyncAPI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from openapi_spec_validator import validate as validate_openapi

from interfaces.event_catalogue import catalogue
from interfaces.http.api_description import OPERATIONS
from interfaces.http.schemas import AgentCreate, SendEvents, SessionCreate
from tests.support.fake_provider import FakeProvider
from tests.support.server import RunningServer, provider_settings, running_server

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, fake_provider_server: FakeProvider) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("apidocs") / "data", **provider_settings(fake_provider_server)) as running:
        yield running


@pytest.fixture(scope="module")
def anonymous(live: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def document(anonymous: httpx.Client) -> dict[str, Any]:
    response = anonymous.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def registered_routes(app: Any) -> set[tuple[str, str]]:
    """(METHOD, uri template) for every responder a resource really implements."""
    routes: set[tuple[str, str]] = set()
    pending = list(app._router._roots)
    while pending:
        node = pending.pop()
        pending.extend(node.children or [])
        if node.resource is None:
            continue
        # With suffix routes one resource serves several templates: a method counts where
        # the node maps it to one of the resource's own responders (not Falcon's 405).
        for method, responder in (node.method_map or {}).items():
            if method in HTTP_METHODS and getattr(responder, "__self__", None) is node.resource:
                # A converter (``{model_id:path}``) is routing, not part of the described path.
                routes.add((method, re.sub(r"\{(\w+):\w+\}", r"{\1}", node.uri_template)))
    return routes


def test_every_route_on_the_app_is_described_and_nothing_else(live: RunningServer, document: dict[str, Any]) -> None:
    routes = registered_routes(live.platform.asgi_app())
    described = {
        (method.upper(), path) for path, operations in document["paths"].items() for method in operations
    }
    assert routes, "the router introspection found no routes"
    assert routes - described == set(), "routes without an operation in /openapi.json"
    assert described - routes == set(), "operations in /openapi.json that no route serves"
    assert len(described) == len(OPERATIONS)


def test_the_document_is_openapi_3_1_with_both_auth_schemes(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate_openapi(document)  # against the OpenAPI 3.1 meta-schema; raises if invalid
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"apiKey": []}, {"bearer": []}]
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_request_bodies_are_the_models_the_server_validates_with(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for model in (AgentCreate, SessionCreate, SendEvents):
        generated = model.model_json_schema()
        assert set(schemas[model.__name__]["properties"]) == set(generated["properties"])
        assert schemas[model.__name__].get("required") == generated.get("required")
    create = document["paths"]["/v1/agents"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/AgentCreate"}
    metadata = schemas["AgentCreate"]["properties"]["metadata"]["anyOf"][0]
    assert metadata["maxProperties"] == 16 and metadata["additionalProperties"]["maxLength"] == 512


def test_parameters_responses_and_errors_are_described(document: dict[str, Any]) -> None:
    sessions = document["paths"]["/v1/sessions"]["get"]
    names = {param["name"] for param in sessions["parameters"]}
    assert {"limit", "page", "include_archived", "order", "agent_id", "agent_version", "statuses[]"} <= names
    assert {f"created_at[{op}]" for op in ("gt", "gte", "lt", "lte")} <= names
    events = document["paths"]["/v1/sessions/{session_id}/events"]["get"]
    assert {"after_seq", "types[]", "order", "limit", "page"} <= {param["name"] for param in events["parameters"]}
    stream = document["paths"]["/v1/sessions/{session_id}/events/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert {"replay", "after_seq", "Last-Event-ID"} <= {param["name"] for param in stream["parameters"]}
    assert document["paths"]["/v1/agents/{agent_id}"]["get"]["parameters"][1]["name"] == "version"
    update = document["paths"]["/v1/agents/{agent_id}"]["post"]["responses"]
    assert {"200", "400", "401", "404", "409", "413", "415", "500"} <= set(update)
    error = document["components"]["responses"]["Error404"]["content"]["application/json"]["schema"]
    assert error["allOf"][0] == {"$ref": "#/components/schemas/ErrorBody"}
    body = document["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"type", "error", "request_id"}
    page = document["components"]["schemas"]["SessionPage"]
    assert set(page["required"]) == {"data", "next_page", "prev_page"}
    assert document["components"]["schemas"]["Agent"]["additionalProperties"] is True


def test_public_operations_answer_without_a_key_and_the_rest_refuse(
    anonymous: httpx.Client, document: dict[str, Any]
) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            url = path.replace("{name}", "swagger-ui.css").replace("/console/assets/{path}", "/console/assets/core.js")
            url = re.sub(r"\{[a-z_]+\}", "sesn_doesnotexist1", url)
            if operation.get("security") == []:
                if "stream" in url:
                    continue
                # A public operation that takes a body (a login) answers an empty one with a
                # 400 about the body, not a 401.
                expected = 400 if "requestBody" in operation else 200
                assert anonymous.request(method, url).status_code == expected, url
            else:
                response = anonymous.request(method, url)
                assert response.status_code == 401, url
                assert response.json()["error"]["type"] == "authentication_error"


def test_the_reference_page_and_its_assets_come_from_agentry_alone(anonymous: httpx.Client) -> None:
    page = anonymous.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in page.text
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert references
    assert not [ref for ref in references if "//" in ref or not ref.startswith("/")], references
    assert not re.search(r"https?://", page.text)
    expected = {".js": "application/javascript", ".css": "text/css", ".png": "image/png"}
    assets = [ref for ref in references if ref.startswith("/docs/assets/")]
    assert any(ref.endswith(".js") for ref in assets) and any(ref.endswith(".css") for ref in assets)
    for ref in assets:
        response = anonymous.get(ref)
        assert response.status_code == 200, ref
        assert response.headers["content-type"].startswith(expected[Path(ref).suffix]), ref
        assert len(response.content) > 500
    missing = anonymous.get("/docs/assets/..%2Fpyproject.toml")
    assert missing.status_code == 404
    assert missing.json()["type"] == "error"


def test_the_event_catalogue_is_published_as_asyncapi(anonymous: httpx.Client) -> None:
    response = anonymous.get("/asyncapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in spec["channels"].values()}
    assert {"agentry.agents", "agentry.environments", "agentry.sessions"} <= addresses
    assert "/v1/sessions/{session_id}/events/stream" in addresses
    published = {m["name"] for key, m in spec["components"]["messages"].items() if key.startswith("kafka.")}
    for event in catalogue():
        if event.kafka_topic is None:
            assert event.name not in published  # never leaves the event store
        else:
            assert event.name in published
            message = spec["components"]["messages"][f"kafka.{event.name}"]
            assert message["x-schema-version"] == event.version
    started = spec["components"]["messages"]["kafka.Session.Started"]
    assert started["x-schema-version"] == 2
    assert set(started["headers"]["required"]) == {"event_type", "event_id", "tenant", "seq"}
    sse = spec["channels"]["sessionEvents"]["messages"]
    assert {"user.message", "agent.message", "session.status_idle", "session.deleted"} <= set(sse)
    state = spec["components"]["schemas"]["Session.Started.v2"]
    assert state["properties"]["class_version"] == {"const": 2}
    for operation in spec["operations"].values():
        assert operation["action"] == "receive"


def test_the_event_catalogue_page_lists_every_event(anonymous: httpx.Client) -> None:
    page = anonymous.get("/docs/events")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for event in catalogue():
        assert f'id="{event.name}"' in page.text
    assert "never published" in page.text
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text)


# -- what fuzzing against the document found ---------------------------------------------


def test_metadata_null_on_create_reads_back_as_an_empty_object(live: RunningServer) -> None:
    """Found by schemathesis: ``"metadata": null`` is a valid create body, and the agent or
    environment then answered ``metadata: null`` where the document promises an object."""
    with httpx.Client(base_url=live.base_url, headers={"x-api-key": live.api_key}, timeout=20) as http:
        agent = http.post("/v1/agents", json={"name": "n", "model": "m", "metadata": None}).json()
        environment = http.post("/v1/environments", json={"name": "n", "metadata": None}).json()
        assert agent["metadata"] == {} and environment["metadata"] == {}
        assert http.get(f"/v1/agents/{agent['id']}").json()["metadata"] == {}
        assert http.get(f"/v1/environments/{environment['id']}").json()["metadata"] == {}
        listed = http.get("/v1/agents").json()["data"]
        assert [a["metadata"] for a in listed if a["id"] == agent["id"]] == [{}]


def test_an_agent_version_filter_beyond_the_column_range_is_a_400(http: httpx.Client) -> None:
    """Found by schemathesis on PostgreSQL: ``agent_version=2147483648`` overflowed the read
    model's INTEGER column and answered 500."""
    response = http.get("/v1/sessions", params={"agent_id": "agent_x", "agent_version": 2**31})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert http.get("/v1/sessions", params={"agent_id": "agent_x", "agent_version": 2**31 - 1}).status_code == 200


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)")
def test_a_headless_browser_renders_every_operation_with_no_other_host(live: RunningServer) -> None:
    """Every host but the server's resolves to nothing, so the page renders from Agentry alone."""
    assert CHROMIUM is not None
    rendered = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000", "--dump-dom", f"{live.base_url}/docs",
        ],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    shown = {
        (method.lower(), path)
        for method, path in re.findall(
            r'opblock-summary-method">(\w+)</span>.*?data-path="([^"]+)"', rendered.stdout
        )
    }
    assert shown == {(op.method, op.path) for op in OPERATIONS}


def test_a_live_stream_sends_frames_as_the_document_describes(http: httpx.Client) -> None:
    """Schemathesis only reads streams that end (a deleted session's); this follows a live one."""
    document = http.get("/openapi.json").json()
    frame_schema = document["paths"]["/v1/sessions/{session_id}/events/stream"]["get"]["responses"]["200"][
        "content"
    ]["text/event-stream"]["schema"]
    validate_event = jsonschema_rs.validator_for(document["components"]["schemas"]["SessionEvent"])
    agent = http.post("/v1/agents", json={"name": "s", "model": "m"}).json()
    environment = http.post("/v1/environments", json={"name": "s"}).json()
    session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": environment["id"]}).json()
    http.post(
        f"/v1/sessions/{session['id']}/events",
        json={"events": [{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]},
    )
    frames: list[dict[str, str]] = []
    with http.stream("GET", f"/v1/sessions/{session['id']}/events/stream", params={"replay": "1"}) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, str] = {}
        for line in stream.iter_lines():
            if line.startswith(":"):
                continue
            if not line:
                if frame:
                    frames.append(frame)
                    if frame["event"] == "session.status_idle":
                        break
                frame = {}
                continue
            field, _, value = line.partition(": ")
            frame[field] = value
    assert [f["event"] for f in frames][:2] == ["user.message", "session.status_running"]
    for seq, frame in enumerate(frames, start=1):
        assert set(frame) == set(frame_schema["required"])
        assert frame["event"] in frame_schema["properties"]["event"]["enum"]
        data = json.loads(frame["data"])
        assert not list(validate_event.iter_errors(data)), data
        assert (data["type"], data["seq"], frame["id"]) == (frame["event"], seq, str(seq))
