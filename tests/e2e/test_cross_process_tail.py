"""Two API processes on one PostgreSQL: a tail on one wakes for writes made through the other
(LISTEN/NOTIFY), with no polling delay to hide behind."""

from __future__ import annotations

import time

import anthropic

from tests.support.fake_provider import FakeProvider
from tests.support.sdk_sessions import PLAIN_TURN
from tests.support.server import provider_settings, running_server


def test_a_tail_on_one_server_sees_events_written_through_another(
    postgres_url: str, tmp_path, fake_provider: FakeProvider  # noqa: ANN001
) -> None:
    provider = provider_settings(fake_provider)
    with (
        running_server(tmp_path / "a", postgres_url, **provider) as a,
        running_server(tmp_path / "b", postgres_url, **provider) as b,
    ):
        # Keep-alives come every 15 s: a 5 s read timeout fails unless the tail is woken.
        client_a = anthropic.Anthropic(base_url=a.base_url, api_key=a.api_key, max_retries=0, timeout=5)
        client_b = anthropic.Anthropic(base_url=b.base_url, api_key=b.api_key, max_retries=0, timeout=5)
        agent = client_b.beta.agents.create(name="x", model="m")
        env = client_b.beta.environments.create(name="e")
        session = client_b.beta.sessions.create(agent=agent.id, environment_id=env.id)

        received = []
        started = time.monotonic()
        with client_a.beta.sessions.events.stream(session.id) as stream:
            client_b.beta.sessions.events.send(
                session.id, events=[{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]
            )
            for event in stream:
                received.append(event.type)
                if event.type == "session.status_idle":
                    break
        assert received == ["user.message", *PLAIN_TURN]
        assert time.monotonic() - started < 5
