"""GET /v1/models on a real server (SQLite and PostgreSQL), read by both official SDKs: the
`openai` SDK's models.list / retrieve and the `anthropic` SDK's (its auto-paging included).
A tenant's live agents and model cards are its models; nobody else's ever show."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import anthropic
import httpx
import openai
import pytest

from application.api_keys import DEFAULT_TENANT, generate_key
from application.errors import Invalid, NotFound
from application.model_catalog import ModelChoice
from application.tenancy import Principal
from tests.support.server import RunningServer

OTHER_TENANT = "other-tenant"


@pytest.fixture
def oai(server: RunningServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url + "/v1", api_key=server.api_key, max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
def stranger(server: RunningServer) -> Iterator[httpx.Client]:
    key = generate_key()
    server.platform.services.api_keys.issue(key, name="other", tenant_id=OTHER_TENANT)
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": key}, timeout=20) as client:
        yield client


def made(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(path, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def agent(http: httpx.Client, name: str) -> dict[str, Any]:
    return made(http, "/v1/agents", {"name": name, "model": "claude-opus-4-7"})


def card(http: httpx.Client, model_id: str, provider: str = "ant") -> dict[str, Any]:
    # probe: false — no provider is asked; the card is listed all the same.
    body = {"model_id": model_id, "provider": provider, "api_key": "card-key-0123456789", "probe": False}
    if provider.endswith("-compatible"):
        body["base_url"] = "https://gateway.example/v1"
    return made(http, "/v1/model_cards", body)


def unix(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp())


def test_both_sdks_list_and_retrieve_agents_and_cards_from_one_body(
    server: RunningServer, http: httpx.Client, oai: openai.OpenAI, client: anthropic.Anthropic
) -> None:
    first = agent(http, "planner")
    second = agent(http, "writer")
    gateway = card(http, "org/fast-model", provider="oai-compatible")

    listed = list(oai.models.list())
    assert [m.id for m in listed] == [gateway["model_id"], second["id"], first["id"]]  # newest first
    by_id = {m.id: m for m in listed}
    assert by_id[first["id"]].owned_by == "agentry" and by_id[first["id"]].object == "model"
    assert by_id[first["id"]].created == unix(first["created_at"])
    assert by_id["org/fast-model"].owned_by == "oai-compatible"
    assert by_id["org/fast-model"].created == unix(gateway["created_at"])

    infos = list(client.models.list())
    assert [(m.id, m.display_name) for m in infos] == [
        ("org/fast-model", "org/fast-model"), (second["id"], "writer"), (first["id"], "planner")
    ]
    assert all(m.type == "model" and m.lifecycle == "active" for m in infos)
    assert infos[2].created_at == datetime.fromisoformat(first["created_at"])
    assert [m.id for m in client.beta.models.list()] == [m.id for m in infos]

    # Retrieve by agent id, by `agent:<name>`, by a card's model_id (a slash in it included).
    for name in (first["id"], "agent:planner"):
        assert oai.models.retrieve(name).id == first["id"]
        info = client.models.retrieve(name)
        assert (info.id, info.display_name) == (first["id"], "planner")
        assert client.beta.models.retrieve(name).id == first["id"]
    model = oai.models.retrieve("org/fast-model")
    assert (model.id, model.owned_by, model.created) == ("org/fast-model", "oai-compatible", unix(gateway["created_at"]))
    assert client.models.retrieve("org/fast-model").display_name == "org/fast-model"
    # The body is the same for both: what one SDK retrieves is what the list held.
    assert http.get(f"/v1/models/{second['id']}").json() == http.get("/v1/models").json()["data"][1]

    catalog = server.platform.services.model_catalog
    me = Principal(DEFAULT_TENANT, "test")
    assert catalog.resolve(me, "agent:writer") == ModelChoice("agent", agent_id=second["id"])
    assert catalog.resolve(me, first["id"]) == ModelChoice("agent", agent_id=first["id"])
    assert catalog.resolve(me, "org/fast-model") == ModelChoice(
        "card", model_id="org/fast-model", model_card_id=gateway["id"]
    )


def test_the_anthropic_sdk_pages_through_more_models_than_a_page_holds(
    http: httpx.Client, oai: openai.OpenAI, client: anthropic.Anthropic
) -> None:
    ids = [agent(http, f"agent-{n}")["id"] for n in range(6)] + [card(http, "handle-a")["model_id"]]
    newest_first = ids[::-1]
    assert [m.id for m in oai.models.list()] == newest_first  # no limit: all of them

    page = client.models.list(limit=3)
    assert [m.id for m in page.data] == newest_first[:3]
    assert (page.has_more, page.first_id, page.last_id) == (True, newest_first[0], newest_first[2])
    assert [m.id for m in client.models.list(limit=3)] == newest_first  # auto-paging: 3 + 3 + 1
    last = client.models.list(limit=3, after_id=newest_first[5])
    assert ([m.id for m in last.data], last.has_more) == ([newest_first[6]], False)

    # Backwards from the oldest, as the SDK pages with before_id: nearest pages first.
    back = client.models.list(limit=3, before_id=newest_first[-1])
    assert ([m.id for m in back.data], back.has_more) == (newest_first[3:6], True)
    assert [m.id for m in client.models.list(limit=3, before_id=newest_first[-1])] == (
        newest_first[3:6] + newest_first[0:3]
    )
    between = http.get("/v1/models", params={"after_id": newest_first[0], "before_id": newest_first[3]}).json()
    assert [m["id"] for m in between["data"]] == newest_first[1:3] and between["has_more"] is False

    unknown = http.get("/v1/models", params={"after_id": "no-such-model"})
    assert unknown.status_code == 400 and "after_id" in unknown.json()["error"]["message"]
    assert http.get("/v1/models", params={"limit": 0}).status_code == 400
    assert len(http.get("/v1/models", params={"limit": 5000}).json()["data"]) == 7  # clamped, not refused


def test_another_tenants_agents_and_cards_never_appear(
    server: RunningServer, http: httpx.Client, stranger: httpx.Client, client: anthropic.Anthropic
) -> None:
    mine = agent(http, "shared-name")
    card(http, "shared-handle", provider="ant")
    theirs = agent(stranger, "shared-name")
    their_only = agent(stranger, "theirs-only")
    card(stranger, "shared-handle", provider="oai")
    card(stranger, "their-handle")

    assert [m.id for m in client.models.list()] == ["shared-handle", mine["id"]]
    assert client.models.retrieve("shared-handle").model_dump()["owned_by"] == "ant"
    assert client.models.retrieve("agent:shared-name").id == mine["id"]
    for foreign in (theirs["id"], their_only["id"], "agent:theirs-only", "their-handle"):
        with pytest.raises(anthropic.NotFoundError):
            client.models.retrieve(foreign)
    assert http.get("/v1/models", params={"after_id": their_only["id"]}).status_code == 400

    listed = stranger.get("/v1/models").json()
    assert [m["id"] for m in listed["data"]] == ["their-handle", "shared-handle", their_only["id"], theirs["id"]]
    assert stranger.get("/v1/models/shared-handle").json()["owned_by"] == "oai"
    assert stranger.get(f"/v1/models/{mine['id']}").status_code == 404

    catalog = server.platform.services.model_catalog
    with pytest.raises(NotFound):
        catalog.resolve(Principal(DEFAULT_TENANT, "test"), theirs["id"])


def test_archived_agents_and_deleted_cards_are_gone_and_a_pager_past_them_goes_on(
    http: httpx.Client, oai: openai.OpenAI, client: anthropic.Anthropic
) -> None:
    kept = agent(http, "kept")
    archived = agent(http, "retired")
    gone = card(http, "gone-handle")
    newest = agent(http, "newest")
    first_page = client.models.list(limit=2)
    assert [m.id for m in first_page.data] == [newest["id"], "gone-handle"]

    assert http.post(f"/v1/agents/{archived['id']}/archive").status_code == 200
    assert http.delete(f"/v1/model_cards/{gone['id']}").status_code == 200
    assert [m.id for m in oai.models.list()] == [newest["id"], kept["id"]]
    for name in (archived["id"], "agent:retired", "gone-handle"):
        with pytest.raises(openai.NotFoundError):
            oai.models.retrieve(name)
    # The archived agent keeps its place as a cursor: a pager that stopped on it goes on.
    after = http.get("/v1/models", params={"limit": 2, "after_id": archived["id"]}).json()
    assert [m["id"] for m in after["data"]] == [kept["id"]] and after["has_more"] is False


def test_a_name_shared_by_two_live_agents_is_refused_until_one_is_archived(
    server: RunningServer, http: httpx.Client, client: anthropic.Anthropic
) -> None:
    older = agent(http, "twin")
    newer = agent(http, "twin")
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.models.retrieve("agent:twin")
    assert "use the agent's id" in refused.value.message
    with pytest.raises(Invalid):
        server.platform.services.model_catalog.resolve(Principal(DEFAULT_TENANT, "test"), "agent:twin")
    assert client.models.retrieve(older["id"]).display_name == "twin"
    assert http.post(f"/v1/agents/{older['id']}/archive").status_code == 200
    assert client.models.retrieve("agent:twin").id == newer["id"]


def test_unknown_models_are_404s_and_a_bad_key_a_401_for_both_sdks(
    server: RunningServer, oai: openai.OpenAI, client: anthropic.Anthropic
) -> None:
    for unknown in ("no-such-model", "agent_" + "x" * 24, "agent:nobody", "agent:"):
        with pytest.raises(openai.NotFoundError) as missing:
            oai.models.retrieve(unknown)
        assert "GET /v1/models" in missing.value.message
        with pytest.raises(anthropic.NotFoundError):
            client.models.retrieve(unknown)
    with pytest.raises(NotFound, match="list them with GET /v1/models"):
        server.platform.services.model_catalog.resolve(Principal(DEFAULT_TENANT, "test"), "no-such-model")

    bad = "not-a-key-0123456789-abcdefghijklmnop"
    with openai.OpenAI(base_url=server.base_url + "/v1", api_key=bad, max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        with pytest.raises(openai.AuthenticationError):
            wrong.models.retrieve("no-such-model")
    wrong_anthropic = anthropic.Anthropic(base_url=server.base_url, api_key=bad, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        wrong_anthropic.models.list()
    with pytest.raises(anthropic.AuthenticationError):
        wrong_anthropic.beta.models.retrieve("no-such-model")
