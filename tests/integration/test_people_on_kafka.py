"""People's events reach Kafka (``agentry.people``): logins, failed logins, role and
membership changes, invites — and no message holds a password, its hash, a TOTP secret
(clear or sealed), a login token or an invite token."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx

from application.outbox import is_published
from application.totp import code_at
from domain.ids import stream_id
from interfaces.bootstrap import build_relay
from tests.support.kafka import Broker, read_topics
from tests.support.server import running_server

PASSWORD = "kafka-secret-password-1"


def test_people_events_are_on_kafka_without_their_secrets(postgres_url: str, broker: Broker, tmp_path: Path) -> None:
    prefix = "p" + uuid.uuid4().hex[:8]
    with running_server(
        tmp_path / "data", postgres_url, kafka_bootstrap_servers=broker.bootstrap, kafka_topic_prefix=prefix
    ) as server, httpx.Client(base_url=server.base_url, headers={"x-api-key": server.api_key}, timeout=20) as http:
        invite = http.post("/v1/organizations/invites", json={"email": "kim@example.com", "role": "user"}).json()
        user = http.post("/v1/auth/invites/accept", json={"token": invite["token"], "password": PASSWORD}).json()
        anonymous = httpx.Client(base_url=server.base_url, timeout=20)
        token = anonymous.post("/v1/auth/login", json={"email": "kim@example.com", "password": PASSWORD}).json()["access_token"]
        bearer = {"authorization": f"Bearer {token}"}
        secret = anonymous.post("/v1/auth/totp", headers=bearer).json()["secret"]
        assert anonymous.post("/v1/auth/totp/confirm", json={"code": code_at(secret, time.time())}, headers=bearer).status_code == 200
        anonymous.post("/v1/auth/login", json={"email": "kim@example.com", "password": "wrong-password"})
        second = anonymous.post(
            "/v1/auth/login", json={"email": "kim@example.com", "password": PASSWORD, "totp_code": code_at(secret, time.time())}
        ).json()["access_token"]
        anonymous.close()
        assert http.post(f"/v1/organizations/users/{user['id']}", json={"role": "developer"}).status_code == 200
        store = server.platform.store
        published = sum(1 for n in store.notifications(0, 1_000_000) if is_published(n.topic))
        password_hash = store.load(stream_id(user["id"])).password_hash

        relay = build_relay(server.settings)
        stop = threading.Event()
        thread = threading.Thread(target=relay.run, args=(stop.is_set,), daemon=True)
        thread.start()
        try:
            topics = [f"{prefix}.{name}" for name in ("people",)]
            received = read_topics(broker.bootstrap, topics, lambda r: b"RoleChanged" in b"".join(m.value or b"" for m in r.messages))
        finally:
            stop.set()
            thread.join(timeout=10)
            relay.close()

    assert published > 0
    kinds = {dict(message.headers)["event_type"].decode() for message in received.messages}
    assert {"Invite.Created", "Invite.Accepted", "User.Created", "User.LoggedIn", "User.LoginFailed", "User.RoleChanged",
            "User.TotpStarted", "User.TotpEnabled"} <= kinds  # fmt: skip
    for message in received.messages:
        raw = b"".join([message.key or b"", message.value or b"", *(value for _, value in message.headers)])
        for name, value in {
            "password": PASSWORD, "password hash": password_hash, "totp secret": secret, "login token": token,
            "second login token": second, "invite token": invite["token"], "sealed totp": "totp_sealed",
            "hash field": "password_hash", "invite hash field": "token_hash",
        }.items():  # fmt: skip
            assert value.encode() not in raw, f"the {name} in a message on {message.topic}"
