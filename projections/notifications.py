"""The notifications read model: raised by events, read per reader.

Which events raise which notification (one row per notification and recipient):

| event | kind | recipient |
|---|---|---|
| ``Task.StatusChanged`` to ``review`` (or ``Task.Created`` in it) | ``approval_awaited`` | the workspace |
| ``Task.StatusChanged`` to ``done`` (or ``Task.Created`` done) | ``task_done`` | the workspace |
| ``session.error`` that ends a turn (not one the runtime is retrying) | ``session_error`` | the workspace |
| ``Task.Commented`` mentioning a user (not the author) | ``mention`` | that user |

A row keeps the global position of the event that raised it (``position``: the order of the
list and the id of the stream's frames) and an id derived from that event and its recipient,
so a rebuild yields the very same rows. Read marks come from the readers' ``Inbox`` events:
ids read one by one (``rm_notification_reads``) and a position up to which everything is read
(``rm_notification_watermarks``); ``read`` is worked out per reader when a row is read out.
The titles of tasks and sessions and the tenants of streams whose events carry none are kept
in ``rm_notification_subjects``, by this same projection, so it never waits on another one.

Positions are the store's: rows arrive in position order when this projection follows the
store (``agentry serve``, ``agentry project --from store``, a rebuild). From Kafka, events of
different aggregates may arrive out of that order, so a stream resumed by position can miss a
notification projected late there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from application.notifications import WORKSPACE, Audience, notification_id
from application.views import TIME_BOUNDS, iso
from domain.notifications import Inbox
from domain.sessions import Session, SessionErrorOccurred, SessionWasDeleted
from domain.tasks import Task
from projections import tables
from projections.bulk import insert_rows
from projections.queries import ListQuery, Page, ReadModels
from projections.runner import ReadModelProjection

EXCERPT = 500

notifications = sa.Table(
    "rm_notifications",
    tables.metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("recipient", sa.String(128), nullable=False),  # WORKSPACE or a user id
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_notifications_by_recipient", "tenant_id", "recipient", "position"),
    sa.Index("rm_notifications_by_position", "position"),
)
# What a stream is about, for events that do not say: a task's or a session's tenant and
# title (a task's last result too), an inbox's tenant and reader (``public_id``).
notification_subjects = sa.Table(
    "rm_notification_subjects",
    tables.metadata,
    sa.Column("stream_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("public_id", sa.String(128), nullable=False),
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("task_id", sa.String(64), nullable=True),  # a session's: the task it runs
)
notification_reads = sa.Table(
    "rm_notification_reads",
    tables.metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("reader", sa.String(128), primary_key=True),
    sa.Column("notification_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)
notification_watermarks = sa.Table(
    "rm_notification_watermarks",
    tables.metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("reader", sa.String(128), primary_key=True),
    sa.Column("up_to", sa.BigInteger, nullable=False),
)

Handler = Callable[[sa.Connection, Any, int], None]


def _excerpt(text: Any) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def _quoted(title: str | None) -> str:
    return f"“{title}”" if title else "(untitled)"


class NotificationsProjection(ReadModelProjection):
    name = "notifications"
    tables = (notifications, notification_subjects, notification_reads, notification_watermarks)

    def __init__(self) -> None:
        self._handlers: dict[type, Handler] = {
            Task.Created: self._task_created,
            Task.Updated: self._task_updated,
            Task.ResultRecorded: self._task_result,
            Task.StatusChanged: self._task_status,
            Task.Commented: self._task_commented,
            Task.Deleted: self._forget,
            Session.Started: self._session_started,
            SessionErrorOccurred: self._session_error,
            SessionWasDeleted: self._forget,
            Inbox.Opened: self._inbox_opened,
            Inbox.NotificationsRead: self._read,
            Inbox.AllRead: self._all_read,
        }

    def wants(self, event_class: type) -> bool:
        return any(base in self._handlers for base in event_class.__mro__)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        raise TypeError("notifications need each event's position: the runners call apply_at")

    def apply_at(self, conn: sa.Connection, event: Any, position: int) -> None:
        for cls in type(event).__mro__:
            handler = self._handlers.get(cls)
            if handler is not None:
                handler(conn, event, position)
                return

    # -- subjects ------------------------------------------------------------------------------

    # A batch's new subjects wait in memory (a session's start is one per session) and go in
    # together: before anything reads or changes a subject, and at the batch's end.
    _new_subjects: list[dict[str, Any]] | None = None

    def apply_all(self, conn: sa.Connection, events: Sequence[Any], positions: Sequence[int] | None = None) -> None:
        if positions is None or len(events) < 2:
            super().apply_all(conn, events, positions)
            return
        self._new_subjects = []
        try:
            super().apply_all(conn, events, positions)
            self._subjects_added(conn)
        finally:
            self._new_subjects = None

    def _subjects_added(self, conn: sa.Connection) -> None:
        if self._new_subjects:
            insert_rows(conn, notification_subjects, self._new_subjects)
            self._new_subjects = []

    def _subject(self, conn: sa.Connection, event: Any) -> Any:
        self._subjects_added(conn)
        table = notification_subjects
        return conn.execute(sa.select(table).where(table.c.stream_id == str(event.originator_id))).first()

    def _set_subject(self, conn: sa.Connection, event: Any, **values: Any) -> None:
        self._subjects_added(conn)
        table = notification_subjects
        conn.execute(sa.update(table).where(table.c.stream_id == str(event.originator_id)).values(**values))

    def _add_subject(self, conn: sa.Connection, event: Any, tenant_id: str, public_id: str, **values: Any) -> None:
        row = {"stream_id": str(event.originator_id), "tenant_id": tenant_id, "public_id": public_id, **values}
        if self._new_subjects is not None:
            self._new_subjects.append(row)
        else:
            conn.execute(sa.insert(notification_subjects).values(**row))

    def _forget(self, conn: sa.Connection, event: Any, position: int) -> None:
        self._subjects_added(conn)
        table = notification_subjects
        conn.execute(sa.delete(table).where(table.c.stream_id == str(event.originator_id)))

    def _task_created(self, conn: sa.Connection, event: Any, position: int) -> None:
        self._add_subject(conn, event, event.tenant_id, event.task_id, title=event.fields.get("title"))
        self._task_status(conn, event, position)  # a task may start in review, or done

    def _task_updated(self, conn: sa.Connection, event: Any, position: int) -> None:
        if "title" in event.changes:
            self._set_subject(conn, event, title=event.changes["title"])

    def _task_result(self, conn: sa.Connection, event: Any, position: int) -> None:
        self._set_subject(conn, event, result=_excerpt(event.result))

    def _session_started(self, conn: sa.Connection, event: Any, position: int) -> None:
        details = event.details or {}
        task_id = (details.get("metadata") or {}).get("agentry_task_id")
        self._add_subject(conn, event, event.tenant_id, event.session_id, title=details.get("title"), task_id=task_id)

    def _inbox_opened(self, conn: sa.Connection, event: Any, position: int) -> None:
        self._add_subject(conn, event, event.tenant_id, event.reader)

    # -- notifications -------------------------------------------------------------------------

    def _task_status(self, conn: sa.Connection, event: Any, position: int) -> None:
        if event.status not in ("review", "done"):
            return
        task = self._subject(conn, event)
        if task is None:
            return
        if event.status == "review":
            kind, title = "approval_awaited", f"Task {_quoted(task.title)} awaits approval"
        else:
            kind, title = "task_done", f"Task {_quoted(task.title)} is done"
        self._notify(conn, event, position, task.tenant_id, WORKSPACE, kind, title, task.result, task_id=task.public_id)

    def _task_commented(self, conn: sa.Connection, event: Any, position: int) -> None:
        task = self._subject(conn, event)
        if task is None:
            return
        author = event.author or {}
        mentioned: list[str] = []
        for mention in event.mentions or []:
            user_id = mention.get("id") if mention.get("type") == "user" else None
            if not isinstance(user_id, str) or not user_id or user_id in mentioned:
                continue
            if author.get("type") == "user" and author.get("id") == user_id:
                continue  # nobody is told of their own mention
            mentioned.append(user_id)
        for user_id in mentioned:
            self._notify(
                conn, event, position, task.tenant_id, user_id, "mention",
                f"You were mentioned on task {_quoted(task.title)}", _excerpt(event.content),
                task_id=task.public_id, comment_id=event.comment_id, actor=author or None,
            )  # fmt: skip

    def _session_error(self, conn: sa.Connection, event: Any, position: int) -> None:
        error = (event.payload or {}).get("error") or {}
        if (error.get("retry_status") or {}).get("type") == "retrying":
            return  # the runtime tries again; a turn that finally fails reports once more
        session = self._subject(conn, event)
        if session is None:
            return
        title = f"Session {_quoted(session.title)} failed" if session.title else f"Session {session.public_id} failed"
        message = _excerpt(error.get("message")) or error.get("type")
        self._notify(
            conn, event, position, session.tenant_id, WORKSPACE, "session_error", title, message,
            session_id=session.public_id, task_id=session.task_id, error_type=error.get("type"),
        )  # fmt: skip

    @staticmethod
    def _notify(
        conn: sa.Connection,
        event: Any,
        position: int,
        tenant_id: str,
        recipient: str,
        kind: str,
        title: str,
        message: str | None,
        **refs: Any,
    ) -> None:
        created_at = iso(event.timestamp)
        doc = {
            "type": "notification",
            "id": notification_id(event.originator_id, event.originator_version, recipient),
            "kind": kind,
            "title": title,
            "message": message,
            "task_id": refs.get("task_id"),
            "session_id": refs.get("session_id"),
            "comment_id": refs.get("comment_id"),
            "error_type": refs.get("error_type"),
            "actor": refs.get("actor"),
            "recipient": {"type": "workspace"} if recipient == WORKSPACE else {"type": "user", "id": recipient},
            "position": position,
            "created_at": created_at,
        }
        conn.execute(
            sa.insert(notifications).values(
                id=doc["id"], tenant_id=tenant_id, recipient=recipient, position=position, kind=kind,
                created_at=created_at, doc=doc,
            )  # fmt: skip
        )

    # -- read marks ----------------------------------------------------------------------------

    def _read(self, conn: sa.Connection, event: Any, position: int) -> None:
        inbox = self._subject(conn, event)
        if inbox is None or not event.notifications:
            return
        rows = [
            {"tenant_id": inbox.tenant_id, "reader": inbox.public_id, "notification_id": key, "position": at}
            for key, at in event.notifications.items()
        ]
        conn.execute(sa.insert(notification_reads), rows)

    def _all_read(self, conn: sa.Connection, event: Any, position: int) -> None:
        inbox = self._subject(conn, event)
        if inbox is None:
            return
        marks, reads = notification_watermarks, notification_reads
        whose = {"tenant_id": inbox.tenant_id, "reader": inbox.public_id}
        conn.execute(sa.delete(marks).where(marks.c.tenant_id == inbox.tenant_id, marks.c.reader == inbox.public_id))
        conn.execute(sa.insert(marks).values(**whose, up_to=event.up_to))
        # Marks at or below the watermark say nothing more (the inbox dropped them too).
        conn.execute(
            sa.delete(reads).where(
                reads.c.tenant_id == inbox.tenant_id, reads.c.reader == inbox.public_id, reads.c.position <= event.up_to
            )
        )


class NotificationReadModels(ReadModels):
    """Reads of the notifications a caller sees, each with ``read`` as that caller has it."""

    def _seen_by(self, audience: Audience) -> list[Any]:
        return [notifications.c.tenant_id == audience.tenant_id, notifications.c.recipient.in_(audience.recipients)]

    @staticmethod
    def _is_read(audience: Audience) -> Any:
        reads, marks = notification_reads, notification_watermarks
        marked = (
            sa.select(reads.c.notification_id)
            .where(
                reads.c.tenant_id == audience.tenant_id,
                reads.c.reader == audience.reader,
                reads.c.notification_id == notifications.c.id,
            )
            .exists()
        )
        up_to = (
            sa.select(marks.c.up_to)
            .where(marks.c.tenant_id == audience.tenant_id, marks.c.reader == audience.reader)
            .scalar_subquery()
        )
        return sa.or_(marked, notifications.c.position <= sa.func.coalesce(up_to, 0))

    def _with_read(self, audience: Audience, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not docs:
            return []
        reads, marks = notification_reads, notification_watermarks
        ids = [doc["id"] for doc in docs]
        with self._engine.connect() as conn:
            up_to = conn.execute(
                sa.select(marks.c.up_to).where(marks.c.tenant_id == audience.tenant_id, marks.c.reader == audience.reader)
            ).scalar()
            marked = set(
                conn.execute(
                    sa.select(reads.c.notification_id).where(
                        reads.c.tenant_id == audience.tenant_id,
                        reads.c.reader == audience.reader,
                        reads.c.notification_id.in_(ids),
                    )
                ).scalars()
            )
        return [{**doc, "read": doc["position"] <= (up_to or 0) or doc["id"] in marked} for doc in docs]

    def notifications_of(self, audience: Audience, query: ListQuery, read: bool | None = None) -> Page:
        """Newest first (by position) unless the query says ``asc``; ``read`` keeps only the
        read (True) or unread (False) ones."""
        table = notifications
        conditions = self._seen_by(audience)
        for bound, moment in query.created_at.items():
            conditions.append(TIME_BOUNDS[bound](table.c.created_at, moment))
        if read is not None:
            is_read = self._is_read(audience)
            conditions.append(is_read if read else sa.not_(is_read))
        page = self._page(table, (table.c.position, table.c.id), conditions, query)
        return Page(self._with_read(audience, page.data), page.next_page, page.prev_page)

    def find(self, audience: Audience, notification_id: str) -> dict[str, Any] | None:
        select = sa.select(notifications.c.doc).where(*self._seen_by(audience), notifications.c.id == notification_id)
        with self._engine.connect() as conn:
            row = conn.execute(select).first()
        return None if row is None else self._with_read(audience, [dict(row.doc)])[0]

    def unread_count(self, audience: Audience) -> int:
        select = sa.select(sa.func.count()).select_from(notifications)
        select = select.where(*self._seen_by(audience), sa.not_(self._is_read(audience)))
        with self._engine.connect() as conn:
            return int(conn.execute(select).scalar() or 0)

    def newest_position(self, audience: Audience) -> int:
        select = sa.select(sa.func.max(notifications.c.position)).where(*self._seen_by(audience))
        with self._engine.connect() as conn:
            return int(conn.execute(select).scalar() or 0)

    def after(self, audience: Audience, position: int, limit: int = 100) -> list[dict[str, Any]]:
        """The next notifications this audience sees after ``position``, oldest first (a stream)."""
        table = notifications
        select = (
            sa.select(table.c.doc)
            .where(*self._seen_by(audience), table.c.position > position)
            .order_by(table.c.position, table.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            docs = [dict(row.doc) for row in conn.execute(select)]
        return self._with_read(audience, docs)

    def newest_of_all(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(notifications.c.position))).scalar() or 0)

    def newest_by_tenant(self, after: int) -> dict[str, int]:
        """Workspaces with notifications after ``after``: the newest position of each (what
        wakes open streams; one query however many are open)."""
        table = notifications
        select = sa.select(table.c.tenant_id, sa.func.max(table.c.position)).where(table.c.position > after)
        with self._engine.connect() as conn:
            return {tenant: int(newest) for tenant, newest in conn.execute(select.group_by(table.c.tenant_id))}
