"""The activity feed's reading of events, without HTTP: an aggregate it has never heard of (a
task, as the Task aggregate will record them) is named, attributed and summarised from its
classes alone; a batch gives the rows that event-by-event application gives; no secret field
reaches a row; who may read which tenant's entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.domain import Aggregate, event

from application.activity import activity_id, naming_of, readable_tenants, snake
from application.ids import base62
from application.people import ORGANIZATION_ID
from application.tenancy import Principal
from application.views import iso
from application.webhook_events import event_id as webhook_event_id
from domain.agents import Agent
from domain.api_keys import ApiKey
from domain.ids import stream_id
from domain.people import User
from domain.sessions import AgentMessageSent, UserMessageSent
from projections.activity import ActivityProjection, activity, activity_streams
from projections.tables import metadata


class Task(Aggregate):
    """Shaped as the Task aggregate is being written: the feed must need no line for it."""

    @staticmethod
    def create_id(task_id: str, **_: Any) -> UUID:
        return stream_id(task_id)

    class Created(Aggregate.Created):
        task_id: str
        tenant_id: str
        title: str
        assigned_agent_id: str | None

    @event(Created)
    def __init__(self, task_id: str, tenant_id: str, title: str, assigned_agent_id: str | None) -> None:
        self.task_id = task_id

    @event("StatusChanged")
    def change_status(self, status: str) -> None:
        pass

    @event("Updated")
    def reassign(self, assigned_agent_id: str) -> None:
        pass

    @event("Commented")
    def comment(self, body: str, actor: dict[str, Any]) -> None:
        pass


def _task_events() -> list[Any]:
    task = Task(task_id="task_0001", tenant_id="wrkspc_a", title="Write the report", assigned_agent_id="agent_a")
    task.change_status(status="review")
    task.comment(body="the secret plan is X", actor={"type": "user", "id": "user_1"})
    task.reassign(assigned_agent_id="agent_b")
    task.comment(body="over to you", actor={"type": "api_key", "id": "apikey_1"})
    return task.collect_events()


def _engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine, tables=[activity, activity_streams])
    return engine


def _docs(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row.doc) for row in conn.execute(sa.select(activity).order_by(activity.c.created_at))]


def test_names_come_from_the_classes() -> None:
    assert [snake(name) for name in ("ApiKey", "StatusChanged", "MCPServerAdded", "LoggedIn")] == [
        "api_key", "status_changed", "mcp_server_added", "logged_in"
    ]  # fmt: skip
    assert naming_of(Task.Created).action == "task.created"
    assert naming_of(Task.StatusChanged).action == "task.status_changed"
    assert naming_of(ApiKey.RoleChanged).action == "api_key.role_changed"
    # Every aggregate's first event is `.created`, whatever the class calls it.
    assert naming_of(ApiKey.Issued).action == "api_key.created"
    # A session's log events keep their public type and belong to the session.
    assert (naming_of(UserMessageSent).entity_type, naming_of(UserMessageSent).action) == ("session", "user.message")


def test_an_aggregate_the_feed_never_heard_of_is_named_attributed_and_summarised() -> None:
    engine = _engine()
    with engine.begin() as conn:
        ActivityProjection().apply_all(conn, _task_events())
    docs = _docs(engine)
    assert [d["action"] for d in docs] == [
        "task.created", "task.status_changed", "task.commented", "task.updated", "task.commented"
    ]  # fmt: skip
    assert {d["entity_type"] for d in docs} == {"task"} and {d["entity_id"] for d in docs} == {"task_0001"}
    assert {d["workspace_id"] for d in docs} == {"wrkspc_a"}
    assert docs[0]["summary"] == 'task created "Write the report"'
    assert docs[1]["summary"] == "task status changed → review"
    # The agent follows a reassignment; an event that records its actor is attributed to it.
    assert [d["agent_id"] for d in docs] == ["agent_a", "agent_a", "agent_a", "agent_b", "agent_b"]
    assert docs[2]["actor"] == {"type": "user", "id": "user_1"} and docs[2]["user_id"] == "user_1"
    assert docs[4]["actor"] == {"type": "api_key", "id": "apikey_1"} and docs[4]["user_id"] is None
    assert docs[0]["actor"] is None
    assert "secret plan" not in json.dumps(docs), "a comment's text is not a summary"


def test_a_batch_gives_the_rows_that_one_event_at_a_time_gives() -> None:
    agent = Agent(agent_id="agent_x", tenant_id="default", definition={"name": "x", "metadata": {}})
    agent.update({"name": "y"})
    # A stream whose first event this feed never saw (a Kafka topic's retention, say).
    orphan = Agent(agent_id="agent_o", tenant_id="default", definition={"name": "o", "metadata": {}})
    orphan.update({"name": "p"})
    orphan.update({"name": "q"})
    events = _task_events() + agent.collect_events() + orphan.collect_events()[1:]
    one_by_one, batched, in_two = _engine(), _engine(), _engine()
    projection = ActivityProjection()
    for item in events:
        with one_by_one.begin() as conn:
            projection.apply(conn, item)
    with batched.begin() as conn:
        projection.apply_all(conn, events)
    for part in (events[:2], events[2:]):  # the second batch continues streams the first began
        with in_two.begin() as conn:
            projection.apply_all(conn, part)

    def rows(engine: sa.Engine) -> tuple[list[Any], list[Any]]:
        with engine.connect() as conn:
            return (
                [tuple(r) for r in conn.execute(sa.select(activity).order_by(activity.c.stream_id, activity.c.version))],
                [tuple(r) for r in conn.execute(sa.select(activity_streams).order_by(activity_streams.c.stream_id))],
            )

    assert rows(one_by_one) == rows(batched) == rows(in_two)
    assert len(rows(batched)[0]) == len(events)
    unseen = [d for d in _docs(batched) if d["entity_type"] == "agent" and d["entity_id"] is None]
    assert len(unseen) == 2 and {d["workspace_id"] for d in unseen} == {None}, "listed in no workspace"


def test_no_secret_field_reaches_a_row() -> None:
    user = User(
        user_id="user_1", tenant_id=ORGANIZATION_ID, email="a@example.test", name="Ann", role="user",
        password_hash="argon2-hash-of-the-password", memberships={"default": "workspace_developer"},
    )  # fmt: skip
    user.change_password("argon2-hash-of-the-new-password")
    user.begin_totp("sealed-totp-secret")
    key = ApiKey(key_hash="hash-of-the-api-key", key_id="apikey_1", tenant_id="default", name="ci", role="admin", hint="…abcd")
    engine = _engine()
    with engine.begin() as conn:
        ActivityProjection().apply_all(conn, user.collect_events() + key.collect_events())
    docs = _docs(engine)
    dumped = json.dumps(docs)
    for secret in ("argon2-hash", "sealed-totp-secret", "hash-of-the-api-key"):
        assert secret not in dumped
    by_action = {d["action"]: d for d in docs}
    assert by_action["user.password_changed"]["actor"] == {"type": "user", "id": "user_1"}
    assert by_action["user.created"]["workspace_id"] is None, "people belong to the organization"
    assert by_action["api_key.created"]["entity_id"] == "apikey_1"


def test_an_agents_session_events_name_it_as_their_actor() -> None:
    from domain.sessions import Session

    session = Session(
        session_id="sesn_1", tenant_id="default", agent={"id": "agent_1", "version": 1}, environment_id="env_1",
        details={"title": None},
    )  # fmt: skip
    events = session.collect_events()
    engine = _engine()
    projection = ActivityProjection()
    with engine.begin() as conn:
        projection.apply_all(conn, events)
    first = events[0]
    later = [
        UserMessageSent(originator_id=first.originator_id, originator_version=2, timestamp=first.timestamp,
                        seq=1, event_id="sevt_1", payload={"content": [{"type": "text", "text": "hidden words"}]}),
        AgentMessageSent(originator_id=first.originator_id, originator_version=3, timestamp=first.timestamp,
                         seq=2, event_id="sevt_2", payload={"content": [{"type": "text", "text": "hidden reply"}]}),
    ]  # fmt: skip
    with engine.begin() as conn:
        projection.apply_all(conn, later)
    docs = {d["action"]: d for d in _docs(engine)}
    assert docs["user.message"]["actor"] is None and docs["user.message"]["agent_id"] == "agent_1"
    assert docs["agent.message"]["actor"] == {"type": "agent", "id": "agent_1"}
    assert "hidden" not in json.dumps(list(docs.values()))


def test_an_organization_admin_also_reads_the_organizations_entries() -> None:
    assert readable_tenants(Principal("wrkspc_a", "apikey_1", role="admin")) == ("wrkspc_a",)
    admin = Principal("wrkspc_a", "apikey_2", organization_role="admin")
    assert readable_tenants(admin) == ("wrkspc_a", ORGANIZATION_ID)


def test_derived_ids_and_timestamps_keep_their_spelling() -> None:
    """A rebuild must give the ids it gave before, and receivers deduplicate webhook events by
    theirs: these literals were written by the first implementation."""
    stream = "3f1c2a9e-0000-4000-8000-000000000001"
    assert activity_id(stream, 7) == "actv_kJBDBmecLRGngcCHaZFTmEBZ"
    assert webhook_event_id(UUID(stream), 7, "session.status_idle") == "wevt_brE3lzOBnc2ZOzTXsDD0Pp3n"
    assert base62(62**3 + 61, 5) == "9aaba"
    # Fixed width, in UTC, whatever the zone; years before 1000 padded.
    assert iso(datetime(2026, 3, 1, 1, 2, 3, tzinfo=timezone(timedelta(hours=2)))) == "2026-02-28T23:02:03.000000Z"
    assert iso(datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "0999-01-02T03:04:05.000006Z"
    assert iso(None) is None
