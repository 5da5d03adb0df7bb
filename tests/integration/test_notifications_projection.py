"""The notifications projection on both stores: which events raise which notification for
whom, read marks per reader from the readers' inboxes, and a rebuild that yields exactly the
live rows. Mentions are recorded here straight through the event store (``Task.Commented``),
as the comment command that will record them in production is built elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from application.errors import NotFound
from application.notifications import NotificationService, audience_of, notification_id
from application.tenancy import Principal
from domain.ids import stream_id
from domain.sessions import Session
from domain.tasks import Task
from infra.event_store import EventsourcingEventStore, event_store_env
from infra.settings import Settings
from projections.notifications import NotificationReadModels, NotificationsProjection
from projections.queries import ListQuery
from projections.runner import ReadModelRunner, create_engine
from tests.support.postgres import database_of

KEY = Principal("t1", "apikey_one")
OTHER_KEY = Principal("t1", "apikey_two")
AUTHOR = Principal("t1", "user:user_ann", user_id="user_ann")
BO = Principal("t1", "user:user_bo", user_id="user_bo")
CY = Principal("t1", "user:user_cy", user_id="user_cy")
STRANGER = Principal("t2", "apikey_three")


class Setup:
    def __init__(self, store: EventsourcingEventStore, engine: sa.Engine) -> None:
        self.store = store
        self.engine = engine
        self.lists = NotificationReadModels(engine)
        self.runner = ReadModelRunner(engine, store, [NotificationsProjection()])
        self.runner.setup()
        self.service = NotificationService(store, self.lists)

    def caught_up(self) -> None:
        self.runner.catch_up()

    def seen(self, who: Principal, **filters: Any) -> list[dict[str, Any]]:
        self.caught_up()
        return self.lists.notifications_of(audience_of(who), ListQuery(limit=100), **filters).data


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    settings = Settings(data_dir=tmp_path, database_url=database_of(request))
    store = EventsourcingEventStore(event_store_env(settings))
    engine = create_engine(settings.read_model_url)
    yield Setup(store, engine)
    store.close()
    engine.dispose()


def _task(task_id: str, tenant: str = "t1", title: str = "Write the post", **fields: Any) -> Task:
    return Task(
        task_id=task_id, tenant_id=tenant, fields={"title": title, **fields}, assigned_agent_id="agent_0123456789",
        status="todo",
    )  # fmt: skip


def _comment(task: Task, author: dict[str, Any], mentions: list[dict[str, Any]], content: str = "@Bo have a look") -> None:
    task.trigger_event(
        Task.Commented, comment_id="cmt_0123456789", author=author, content=content, mentions=mentions, reply_to=None
    )


def _session(session_id: str, task_id: str | None = None) -> Session:
    details = {"title": "The run", "metadata": {"agentry_task_id": task_id} if task_id else {}}
    return Session(
        session_id=session_id, tenant_id="t1", agent={"id": "agent_0123456789", "version": 1},
        environment_id="env_0123456789", details=details,
    )  # fmt: skip


def _rows(engine: sa.Engine) -> dict[str, list[Any]]:
    found = {}
    with engine.connect() as conn:
        for table in NotificationsProjection.tables:
            found[table.name] = [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
    return found


def test_each_source_raises_its_notification_for_the_right_recipients(setup: Setup) -> None:
    store = setup.store
    review = _task("task_review0001", title="Blog post", requires_approval=True)
    review.execute("sesn_run000000001", "env_0123456789")
    run = _session("sesn_run000000001", review.task_id)
    store.save(review, run)
    review.record_result("sesn_run000000001", 5, "Draft: five tools.")
    done = _task("task_done000001", title="Pay invoices")
    done.update({"status": "done"})
    elsewhere = _task("task_other00001", tenant="t2")
    elsewhere.update({"status": "done"})
    store.save(review, done, elsewhere)
    mentions = [
        {"type": "user", "id": "user_bo", "name": "Bo"},
        {"type": "user", "id": "user_bo", "name": "Bo"},  # twice in one comment: told once
        {"type": "agent", "id": "agent_0123456789", "name": "Sierra"},  # agents are asked to reply instead
        {"type": "user", "id": "user_ann", "name": "Ann"},  # the author: not told of their own mention
        {"type": "user", "id": "user_cy", "name": "Cy"},
    ]
    _comment(done, {"type": "user", "id": "user_ann"}, mentions)
    store.save(done)
    run.record("session.error", "sevt_retry0001", {"error": {"type": "model_overloaded_error", "message": "busy", "retry_status": {"type": "retrying"}}})
    run.record("session.error", "sevt_final0001", {"error": {"type": "model_request_failed_error", "message": "bad key", "retry_status": {"type": "terminal"}}})
    store.save(run)

    workspace = setup.seen(KEY)
    assert [(n["kind"], n["title"]) for n in workspace] == [
        ("session_error", "Session “The run” failed"),
        ("task_done", "Task “Pay invoices” is done"),
        ("approval_awaited", "Task “Blog post” awaits approval"),
    ]
    error, paid, awaited = workspace
    assert error["session_id"] == "sesn_run000000001" and error["task_id"] == review.task_id
    assert error["message"] == "bad key" and error["error_type"] == "model_request_failed_error"
    assert awaited["message"] == "Draft: five tools." and awaited["task_id"] == review.task_id
    assert all(n["recipient"] == {"type": "workspace"} and n["read"] is False for n in workspace)
    positions = [n["position"] for n in workspace]
    assert positions == sorted(positions, reverse=True) and len(set(positions)) == 3

    for person, mentioned in ((BO, True), (CY, True), (AUTHOR, False)):
        seen = setup.seen(person)
        mentions_seen = [n for n in seen if n["kind"] == "mention"]
        assert [n for n in seen if n["kind"] != "mention"] == workspace, "a person sees the workspace's too"
        if not mentioned:
            assert mentions_seen == []
            continue
        (mention,) = mentions_seen
        assert mention["recipient"] == {"type": "user", "id": person.user_id}
        assert mention["actor"] == {"type": "user", "id": "user_ann"} and mention["comment_id"] == "cmt_0123456789"
        assert mention["title"] == "You were mentioned on task “Pay invoices”" and mention["message"] == "@Bo have a look"
    assert setup.seen(STRANGER)[0]["task_id"] == elsewhere.task_id and len(setup.seen(STRANGER)) == 1

    # Ids follow from the event and the recipient: the same in every process and rebuild.
    commented = store.read_stream(stream_id(done.task_id))[-1]
    expected = notification_id(commented.originator_id, commented.originator_version, "user_bo")
    assert [n["id"] for n in setup.seen(BO) if n["kind"] == "mention"] == [expected]


def test_read_marks_are_each_readers_own_and_a_rebuild_yields_the_same_rows(setup: Setup) -> None:
    store = setup.store
    tasks = [_task(f"task_read{i:08d}", title=f"T{i}") for i in range(4)]
    for task in tasks:
        task.update({"status": "done"})
    _comment(tasks[0], {"type": "api_key", "id": "apikey_one"}, [{"type": "user", "id": "user_bo", "name": "Bo"}])
    store.save(*tasks)
    setup.caught_up()
    first, second = setup.seen(KEY)[-1], setup.seen(KEY)[-2]

    marked = setup.service.mark_read(KEY, first["id"])
    assert marked.view["read"] is True and marked.position is not None
    assert setup.service.mark_read(KEY, first["id"]).position is None, "read again: nothing recorded"
    setup.caught_up()
    assert setup.lists.unread_count(audience_of(KEY)) == 3
    assert [n["id"] for n in setup.seen(KEY, read=True)] == [first["id"]]
    assert first["id"] not in [n["id"] for n in setup.seen(KEY, read=False)]
    assert setup.lists.unread_count(audience_of(OTHER_KEY)) == 4, "another key's marks are its own"
    assert setup.lists.unread_count(audience_of(BO)) == 5, "four for the workspace and Bo's mention"

    # Bo reads everything up to the second-oldest; then all; a stranger cannot mark Bo's.
    with pytest.raises(NotFound):
        setup.service.mark_read(STRANGER, first["id"])
    mention = next(n for n in setup.seen(BO) if n["kind"] == "mention")
    with pytest.raises(NotFound):
        setup.service.mark_read(KEY, mention["id"])  # a mention of Bo is Bo's alone
    setup.service.mark_read(BO, second["id"])
    setup.service.mark_all_read(BO, up_to=second["position"])
    setup.caught_up()
    # Up to the second: the first, the second, and the mention made between them.
    assert {n["id"] for n in setup.seen(BO, read=True)} == {first["id"], mention["id"], second["id"]}
    assert setup.lists.unread_count(audience_of(BO)) == 2
    everything = setup.service.mark_all_read(BO)
    assert everything.view["up_to"] == setup.lists.newest_position(audience_of(BO))
    assert setup.seen(BO, read=False) == [], "all read"
    assert setup.service.mark_all_read(BO).position is None, "nothing new: nothing recorded"

    later = _task("task_later00001", title="Later")
    later.update({"status": "review"})
    filed = Task(task_id="task_filed00001", tenant_id="t1", fields={"title": "Filed"}, assigned_agent_id=None, status="done")
    store.save(later, filed)
    unread = ["Task “Filed” is done", "Task “Later” awaits approval"]  # created done notifies too
    assert [n["title"] for n in setup.seen(BO, read=False)] == unread

    live = _rows(setup.engine)
    assert live["rm_notification_reads"], "a mark above the watermark is kept"
    assert len(live["rm_notification_watermarks"]) == 1
    with setup.engine.begin() as conn:  # vandalise the read model
        for table in NotificationsProjection.tables:
            conn.execute(sa.delete(table))
    setup.runner.rebuild("notifications")
    assert _rows(setup.engine) == live
    assert [n["title"] for n in setup.seen(BO, read=False)] == unread
