"""Sessions, their event log and its SSE stream through the official anthropic SDK."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.support.sdk_sessions import PLAIN_TURN, say, wait_idle

REPLY = "Hello from the fake provider."  # the fake provider's default answer


def _agent_and_env(client: anthropic.Anthropic) -> tuple[str, str]:
    agent = client.beta.agents.create(name="helper", model="claude-opus-4-7")
    env = client.beta.environments.create(name="default")
    return agent.id, env.id


def test_session_pins_the_agent_version_it_started_with(client: anthropic.Anthropic) -> None:
    agent_id, env_id = _agent_and_env(client)
    session = client.beta.sessions.create(agent=agent_id, environment_id=env_id, title="first")
    assert session.id.startswith("sesn_")
    assert session.status == "idle"
    assert session.agent.version == 1
    client.beta.agents.update(agent_id, version=1, system="new prompt")
    assert client.beta.sessions.retrieve(session.id).agent.version == 1
    later = client.beta.sessions.create(agent=agent_id, environment_id=env_id)
    assert later.agent.version == 2 and later.agent.system == "new prompt"
    pinned_old = client.beta.sessions.create(agent={"type": "agent", "id": agent_id, "version": 1}, environment_id=env_id)
    assert pinned_old.agent.version == 1 and pinned_old.agent.system is None

    listed = client.beta.sessions.list()
    assert {session.id, later.id, pinned_old.id} <= {s.id for s in listed}
    assert [s.id for s in client.beta.sessions.list(agent_id=agent_id, agent_version=2)] == [later.id]


def test_send_message_records_it_and_the_model_reply(client: anthropic.Anthropic) -> None:
    agent_id, env_id = _agent_and_env(client)
    session = client.beta.sessions.create(agent=agent_id, environment_id=env_id)
    sent = client.beta.sessions.events.send(
        session.id, events=[{"type": "user.message", "content": [{"type": "text", "text": "hello"}]}]
    )
    assert [e.type for e in sent.data] == ["user.message"]
    events = wait_idle(client, session.id, 1)
    assert [e.type for e in events] == ["user.message", *PLAIN_TURN]
    assert events[0].content[0].text == "hello"
    assert events[3].content[0].text == REPLY
    assert events[6].stop_reason.type == "end_turn"
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6, 7]
    assert client.beta.sessions.retrieve(session.id).status == "idle"

    newest_first = list(client.beta.sessions.events.list(session.id, order="desc"))
    assert [e.id for e in newest_first] == [e.id for e in reversed(events)]
    only_messages = list(client.beta.sessions.events.list(session.id, types=["agent.message"]))
    assert [e.id for e in only_messages] == [events[3].id]
    paged = list(client.beta.sessions.events.list(session.id, limit=1))
    assert [e.id for e in paged] == [e.id for e in events]


def test_after_seq_reads_only_later_events(client: anthropic.Anthropic, http: httpx.Client) -> None:
    agent_id, env_id = _agent_and_env(client)
    session = client.beta.sessions.create(agent=agent_id, environment_id=env_id)
    say(client, session.id, "one")
    events = wait_idle(client, session.id, 1)
    later = http.get(f"/v1/sessions/{session.id}/events", params={"after_seq": 2}).json()["data"]
    assert [e["id"] for e in later] == [e.id for e in events[2:]]


def test_stream_replays_exactly_the_missed_events_after_a_disconnect(client: anthropic.Anthropic) -> None:
    agent_id, env_id = _agent_and_env(client)
    session = client.beta.sessions.create(agent=agent_id, environment_id=env_id)

    seen = []
    with client.beta.sessions.events.stream(session.id) as stream:
        say(client, session.id, "first")
        for event in stream:
            seen.append(event)
            if event.type == "session.status_idle":
                break
    assert [e.type for e in seen] == ["user.message", *PLAIN_TURN]
    last_seen = seen[-1].seq

    # While nobody listens, a second turn happens.
    say(client, session.id, "second")
    full_log = wait_idle(client, session.id, 2)
    missed = [e for e in full_log if e.seq > last_seen]
    assert len(missed) == 7

    replayed = []
    with client.beta.sessions.events.stream(
        session.id, extra_headers={"Last-Event-ID": str(last_seen)}
    ) as stream:
        for event in stream:
            replayed.append(event)
            if event.type == "session.status_idle":
                break
    assert [e.id for e in replayed] == [e.id for e in missed]
    assert [e.seq for e in replayed] == [last_seen + n for n in range(1, 8)]


def test_stream_replay_then_live_has_no_gap_and_no_duplicate(client: anthropic.Anthropic) -> None:
    agent_id, env_id = _agent_and_env(client)
    session = client.beta.sessions.create(agent=agent_id, environment_id=env_id)
    say(client, session.id, "before")
    wait_idle(client, session.id, 1)

    received = []
    with client.beta.sessions.events.stream(session.id, extra_query={"replay": "1"}) as stream:
        for event in stream:
            received.append(event)
            if len(received) == 7:
                say(client, session.id, "during")  # live events arrive after the replay
            if len(received) == 14:
                break
    assert [e.seq for e in received] == list(range(1, 15))
    assert len({e.id for e in received}) == 14
    assert [e.type for e in received][7:] == ["user.message", *PLAIN_TURN]


def test_deleting_a_session_ends_its_stream_and_hides_it(client: anthropic.Anthropic) -> None:
    agent_id, env_id = _agent_and_env(client)
    session = client.beta.sessions.create(agent=agent_id, environment_id=env_id)
    types = []
    with client.beta.sessions.events.stream(session.id) as stream:
        deleted = client.beta.sessions.delete(session.id)
        assert deleted.type == "session_deleted"
        types = [event.type for event in stream]  # the server closes the stream
    assert types == ["session.deleted"]
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.retrieve(session.id)
    assert session.id not in [s.id for s in client.beta.sessions.list()]


def test_initial_events_start_the_first_turn(client: anthropic.Anthropic) -> None:
    agent_id, env_id = _agent_and_env(client)
    session = client.beta.sessions.create(
        agent=agent_id,
        environment_id=env_id,
        initial_events=[{"type": "user.message", "content": [{"type": "text", "text": "go"}]}],
    )
    events = wait_idle(client, session.id, 1)
    assert events[0].type == "user.message" and events[-1].type == "session.status_idle"


def test_every_event_type_the_sdk_can_send_is_recorded_or_refused(client: anthropic.Anthropic, http: httpx.Client) -> None:
    agent_id, env_id = _agent_and_env(client)
    session = client.beta.sessions.create(agent=agent_id, environment_id=env_id)
    events_url = f"/v1/sessions/{session.id}/events"
    note = {"type": "system.message", "content": [{"type": "text", "text": "be brief"}]}
    hello = {"type": "user.message", "content": [{"type": "text", "text": "hi"}]}
    # Answers to tool calls nobody made are refused; so is a system.message that is not the
    # last event, right after what it accompanies, once. Nothing of a refused request is stored.
    for refused_events in (
        [{"type": "user.tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "42"}]}],
        [{"type": "user.custom_tool_result", "custom_tool_use_id": "ctu_1", "is_error": True}],
        [{"type": "user.tool_confirmation", "tool_use_id": "toolu_2", "result": "allow"}],
        [note],
        [note, hello],
        [hello, note, note],
        [{"type": "user.interrupt"}, note],
    ):
        refused = http.post(events_url, json={"events": refused_events})
        assert refused.status_code == 400, (refused_events, refused.text)
    assert http.get(events_url).json()["data"] == []

    sent = client.beta.sessions.events.send(session.id, events=[{"type": "user.interrupt"}])
    assert [e.type for e in sent.data] == ["user.interrupt"]
    # An interrupt asks the model for nothing: the session stays idle.
    assert client.beta.sessions.retrieve(session.id).status == "idle"
    sent = client.beta.sessions.events.send(session.id, events=[hello, note])
    assert [e.type for e in sent.data] == ["user.message", "system.message"]
    wait_idle(client, session.id, 1)

    # An outcome starts a turn on its description; its id is the server's to mint.
    outcome = client.beta.sessions.events.send(
        session.id,
        events=[{"type": "user.define_outcome", "description": "a haiku", "rubric": {"type": "text", "content": "5-7-5"}, "max_iterations": 2}],
    ).data[0]
    assert outcome.outcome_id.startswith("outc_")
    assert outcome.rubric.type == "text" and outcome.max_iterations == 2
    wait_idle(client, session.id, 2)
    forged = http.post(
        f"/v1/sessions/{session.id}/events",
        json={"events": [{"type": "user.define_outcome", "description": "d", "rubric": {"type": "file", "file_id": "file_1"}, "outcome_id": "outc_mine"}]},
    )
    assert forged.status_code == 202
    assert forged.json()["data"][0]["outcome_id"] not in ("outc_mine", outcome.outcome_id)


def test_a_replay_longer_than_one_chunk_arrives_whole_and_in_order(client: anthropic.Anthropic, http: httpx.Client) -> None:
    agent_id, env_id = _agent_and_env(client)
    session = client.beta.sessions.create(agent=agent_id, environment_id=env_id)
    for batch in range(3):  # 250 events: the stream replays them in several chunks
        count = 100 if batch < 2 else 50
        client.beta.sessions.events.send(session.id, events=[{"type": "user.interrupt"}] * count)
    seqs = []
    with client.beta.sessions.events.stream(session.id, extra_query={"replay": "1"}) as stream:
        for event in stream:
            seqs.append(event.seq)
            if len(seqs) == 250:
                break
    assert seqs == list(range(1, 251))


def test_the_stream_of_a_deleted_session_is_gone_once_it_has_nothing_left(http: httpx.Client) -> None:
    agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()
    env = http.post("/v1/environments", json={"name": "e"}).json()
    session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]}).json()
    http.post(f"/v1/sessions/{session['id']}/events", json={"events": [{"type": "user.interrupt"}]})
    assert http.delete(f"/v1/sessions/{session['id']}").status_code == 200
    url = f"/v1/sessions/{session['id']}/events/stream"
    # What is left can still be replayed, ending with session.deleted ...
    with http.stream("GET", url, headers={"Last-Event-ID": "1"}) as stream:
        assert stream.status_code == 200
        frames = [line for line in stream.iter_lines() if line.startswith("event:")]
    assert frames == ["event: session.deleted"]
    # ... but with nothing left, a 404 tells an EventSource to stop reconnecting.
    for headers in ({}, {"Last-Event-ID": "2"}):
        gone = http.get(url, headers=headers)
        assert gone.status_code == 404 and gone.json()["type"] == "error"

