"""Webhooks without a server: the signature the SDK verifies, which stored events become which
webhook kinds (the mapping table stays in step with the SDK's types and the event catalogue),
the URL rule, and the fan-out's exactly-once position and event-time subscriptions."""

from __future__ import annotations

import base64
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import pytest
import standardwebhooks
from anthropic.types.beta.beta_webhook_event_data import BetaWebhookEventData

from application.webhook_delivery import ListWindow, RetryPolicy, Target, WebhookDispatcher, signature
from application.webhook_events import KINDS, KNOWN_KINDS, PRODUCED_KINDS, SDK_ONLY_KINDS, Origin, webhook_events
from application.webhooks import new_secret
from domain.agents import Agent
from domain.errors import InvalidState
from domain.sessions import Session
from domain.vaults import Vault
from domain.webhooks import InvalidWebhookUrl, WebhookEndpoint, check_url
from infra.event_store import EventsourcingEventStore
from infra.http_poster import HttpxPoster
from infra.webhook_deliveries import SqlDeliveryLog
from interfaces.event_catalogue import by_topic
from projections.runner import create_engine

ORGANIZATION = "org_default"


def _sdk_kinds() -> set[str]:
    kinds = set()
    for member in typing.get_args(typing.get_args(BetaWebhookEventData)[0]):
        kinds.update(typing.get_args(member.model_fields["type"].annotation))
    return kinds


# -- signatures ---------------------------------------------------------------------------------


def test_a_signature_verifies_with_standard_webhooks_and_the_sdks_unwrap() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    body = b'{"id":"wevt_1","type":"event","created_at":"2026-05-01T10:00:00.000000Z","data":{"type":"agent.created","id":"agent_1","organization_id":"o","workspace_id":"w"}}'
    now = int(datetime.now(UTC).timestamp())
    headers = {"webhook-id": "wevt_1", "webhook-timestamp": str(now), "webhook-signature": signature(secret, "wevt_1", now, body)}
    assert standardwebhooks.Webhook(secret).verify(body.decode(), headers)["id"] == "wevt_1"
    event = anthropic.Anthropic(api_key="x").beta.webhooks.unwrap(body.decode(), headers=headers, key=secret)
    assert event.data.type == "agent.created"
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_secret()).verify(body.decode(), headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body.decode().replace("agent_1", "agent_2"), headers)


# -- the mapping table --------------------------------------------------------------------------


def test_every_kind_the_sdk_defines_is_known_and_agentry_sends_only_the_sdks_or_its_own() -> None:
    sdk = _sdk_kinds()
    assert sdk <= KNOWN_KINDS and SDK_ONLY_KINDS <= sdk
    assert not PRODUCED_KINDS & SDK_ONLY_KINDS
    own = PRODUCED_KINDS - sdk
    assert own and all(kind.startswith("task.") for kind in own), own


def test_every_mapped_topic_is_a_stored_event_of_the_catalogue() -> None:
    catalogued = by_topic()
    for topic in KINDS:
        if not topic.startswith("domain.tasks:"):  # Task is another branch's aggregate
            assert topic in catalogued, topic


def _idle(stop: str) -> Any:
    session = Session(
        session_id="sesn_abcdefgh", tenant_id="w", agent={"id": "agent_abcdefgh", "version": 1},
        environment_id="env_abcdefgh", details={},
    )  # fmt: skip
    session.go_idle("sevt_1", {"type": stop})
    return session.collect_events()[-1]


@pytest.mark.parametrize(
    ("stop", "kinds"),
    [
        ("end_turn", ["session.status_idled"]),
        ("requires_action", ["session.status_idled", "session.requires_action"]),
        ("budget_reached", ["session.status_idled", "session.budget_reached"]),
    ],
)
def test_an_idle_session_is_one_or_two_kinds_by_its_stop_reason(stop: str, kinds: list[str]) -> None:
    made = webhook_events("domain.sessions:SessionBecameIdle", _idle(stop), Origin("sesn_abcdefgh", "w"), ORGANIZATION)
    assert [event.kind for event in made] == kinds
    assert len({event.id for event in made}) == len(kinds)
    assert made[0].body["data"] == {"type": "session.status_idled", "id": "sesn_abcdefgh", "organization_id": ORGANIZATION, "workspace_id": "w"}
    again = webhook_events("domain.sessions:SessionBecameIdle", _idle(stop), Origin("sesn_abcdefgh", "w"), ORGANIZATION)
    assert [event.id for event in again] == [event.id for event in made], "an event's id is derived, not drawn"


def test_a_credential_event_names_the_credential_and_its_vault() -> None:
    vault = Vault(vault_id="vlt_abcdefgh", tenant_id="w", display_name="v", metadata={})
    vault.add_credential("vcrd_abcdefgh", None, {}, {"type": "static_bearer", "mcp_server_url": "https://m.test/"}, {"token": "sealed"})
    added = vault.collect_events()[-1]
    (made,) = webhook_events("domain.vaults:Vault.CredentialAdded", added, Origin("vlt_abcdefgh", "w"), ORGANIZATION)
    assert made.body["data"] == {
        "type": "vault_credential.created", "id": "vcrd_abcdefgh", "vault_id": "vlt_abcdefgh",
        "organization_id": ORGANIZATION, "workspace_id": "w",
    }  # fmt: skip
    assert made.body["type"] == "event" and made.body["id"].startswith("wevt_")


# -- the endpoint -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://h.test/x?token=1", "http://127.0.0.1:8080/hooks", "HTTPS://H.TEST"])
def test_http_and_https_urls_are_accepted(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    "url", ["ftp://h.test/", "file:///etc/passwd", "javascript:alert(1)", "//h.test/", "http://", "http://h.test:x/", "http://h.test/\n"]
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidWebhookUrl):
        check_url(url)


def _endpoint(kinds: list[str]) -> WebhookEndpoint:
    return WebhookEndpoint(
        endpoint_id="whep_abcdefgh", tenant_id=ORGANIZATION, url="http://127.0.0.1:9/", name="", description="",
        enabled_events=kinds, ciphertext="v1.sealed",
    )  # fmt: skip


def test_an_endpoint_needs_a_kind_and_a_deleted_one_takes_no_change() -> None:
    with pytest.raises(InvalidState):
        _endpoint([])
    endpoint = _endpoint(["agent.created"])
    assert endpoint.update({"enabled_events": []}) is False, "an empty list leaves the kinds"
    assert endpoint.update({"state": "disabled"}) is True and not endpoint.enabled
    endpoint.delete()
    with pytest.raises(InvalidState):
        endpoint.regenerate_secret("v1.other")


# -- the fan-out ----------------------------------------------------------------------------------


def test_the_fan_out_matches_events_against_endpoints_as_they_were_and_records_each_batch_once(
    store: EventsourcingEventStore, tmp_path: Path
) -> None:
    deliveries = SqlDeliveryLog(create_engine(f"sqlite:///{tmp_path / 'rm.sqlite3'}"))

    def dispatcher() -> WebhookDispatcher:
        return WebhookDispatcher(store, deliveries, lambda _: None, HttpxPoster(), lambda _: ORGANIZATION)

    agent = Agent(agent_id="agent_abcdefgh", tenant_id="w", definition={"name": "a"})
    store.save(agent)  # before the endpoint: never delivered
    endpoint = _endpoint(["agent.updated"])
    store.save(endpoint)
    agent.update({"name": "b"})
    store.save(agent)  # delivered
    endpoint.update({"state": "disabled"})
    store.save(endpoint)
    agent.update({"name": "c"})
    store.save(agent)  # while disabled: never delivered
    endpoint.update({"state": "enabled", "enabled_events": ["agent.archived"]})
    store.save(endpoint)
    agent.update({"name": "d"})
    agent.archive()
    store.save(agent)  # only the archive is subscribed now

    first, second = dispatcher(), dispatcher()
    assert first.fan_out() == 8
    assert second.fan_out() == 0 and first.fan_out() == 0, "one position for every dispatcher"
    assert deliveries.record(0, 8, {}, [], "now") is False, "a batch read at a moved position is not recorded"
    page = deliveries.page("whep_abcdefgh", ListWindow(descending=False), None)
    assert [(entry["event_type"], entry["status"]) for entry in page["data"]] == [
        ("agent.updated", "pending"), ("agent.archived", "pending"),
    ]  # fmt: skip
    assert page["data"][0]["event"]["data"]["id"] == "agent_abcdefgh"
    assert [due.event_id for due in deliveries.due("whep_abcdefgh", "9999", 10)] == [page["data"][0]["event_id"]], (
        "the object's later delivery waits behind the first"
    )

    endpoint.delete()
    store.save(endpoint)
    assert first.fan_out() == 1
    assert deliveries.page("whep_abcdefgh", ListWindow(), None)["data"] == [], "a deleted endpoint's deliveries go with it"


def test_an_endpoint_that_does_not_answer_is_probed_once_per_backoff_not_once_per_object(
    store: EventsourcingEventStore, tmp_path: Path
) -> None:
    deliveries = SqlDeliveryLog(create_engine(f"sqlite:///{tmp_path / 'rm.sqlite3'}"))
    closed = Target("http://127.0.0.1:9/hooks", new_secret(), True)  # nothing listens on port 9
    dispatcher = WebhookDispatcher(
        store, deliveries, lambda _: closed, HttpxPoster(), lambda _: ORGANIZATION, RetryPolicy(timeout_seconds=2.0)
    )
    store.save(_endpoint(["agent.created"]))
    for n in range(3):
        store.save(Agent(agent_id=f"agent_{n}bcdefgh", tenant_id="w", definition={"name": "a"}))
    dispatcher.fan_out()
    dispatcher._serve("whep_abcdefgh")  # one pass, as a sender runs it

    log = deliveries.page("whep_abcdefgh", ListWindow(descending=False), None)["data"]
    assert [entry["attempts"] for entry in log] == [1, 0, 0]
    assert "no answer" in log[0]["error"] and log[0]["status"] == "pending"
    assert len({entry["next_attempt_at"] for entry in log}) == 1, "the others wait as long as the one that failed"
    assert deliveries.due("whep_abcdefgh", log[0]["created_at"], 10) == []


def test_batches_that_deliver_nothing_are_not_written_one_by_one(store: EventsourcingEventStore, tmp_path: Path) -> None:
    deliveries = SqlDeliveryLog(create_engine(f"sqlite:///{tmp_path / 'rm.sqlite3'}"))
    dispatcher = WebhookDispatcher(store, deliveries, lambda _: None, HttpxPoster(), lambda _: ORGANIZATION)
    for n in range(3):
        store.save(Agent(agent_id=f"agent_{n}bcdefgh", tenant_id="w", definition={"name": "a"}))
    assert dispatcher.fan_out() == 3 and dispatcher.fan_out() == 0
    assert deliveries.position() == 0, "no endpoint: the position waits in memory"
    store.save(_endpoint(["agent.created"]))
    assert dispatcher.fan_out() == 1
    assert deliveries.position() == 4, "a subscription change is recorded with the position, and those before it"
