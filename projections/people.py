"""The organization's users, invites and workspace members as lists, and their queries.

Lists here page as the SDK's organization lists do (``after_id`` / ``before_id``, an envelope
of ``data``, ``has_more``, ``first_id``, ``last_id``), oldest first. Rows never hold a secret:
no password hash, no sealed TOTP secret, no invite token hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from application.views import iso
from domain.people import Invite, User
from projections.runner import ReadModelProjection
from projections.tables import metadata

users = sa.Table(
    "rm_users",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("stream_id", sa.String(36), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_users_by_time", "created_at", "id"),
)

invites = sa.Table(
    "rm_invites",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("stream_id", sa.String(36), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending or accepted (expired is read off expires_at)
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_invites_by_time", "created_at", "id"),
)

workspace_members = sa.Table(
    "rm_workspace_members",
    metadata,
    sa.Column("workspace_id", sa.String(128), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),  # the user's
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Index("rm_workspace_members_by_time", "workspace_id", "created_at", "id"),
)


def _user_doc(user_id: str, email: str, name: str, role: str, added_at: str) -> dict[str, Any]:
    return {"id": user_id, "type": "user", "email": email, "name": name, "role": role, "added_at": added_at}


class PeopleProjection(ReadModelProjection):
    name = "people"
    tables = (users, invites, workspace_members)

    def wants(self, event_class: type) -> bool:
        return issubclass(event_class, User.Event | Invite.Event)

    def apply(self, conn: sa.Connection, event: Any) -> None:
        if not isinstance(event, User.Event | Invite.Event):
            return
        handler = getattr(self, "_" + type(event).__qualname__.replace(".", "_"), None)
        if handler is not None:
            handler(conn, event)

    # -- users ---------------------------------------------------------------------------------

    def _user_id(self, conn: sa.Connection, event: Any) -> str | None:
        return conn.execute(sa.select(users.c.id).where(users.c.stream_id == str(event.originator_id))).scalar()

    def _joined(self, conn: sa.Connection, user_id: str, event: Any, email: str) -> None:
        stamp = iso(event.timestamp)
        assert stamp is not None
        doc = _user_doc(user_id, email, event.name, event.role, stamp)
        conn.execute(sa.delete(users).where(users.c.id == user_id))
        conn.execute(
            sa.insert(users).values(
                id=user_id, stream_id=str(event.originator_id), email=email, role=event.role, created_at=stamp, doc=doc
            )
        )
        conn.execute(sa.delete(workspace_members).where(workspace_members.c.id == user_id))
        for workspace_id, role in event.memberships.items():
            self._member(conn, user_id, workspace_id, role, stamp)

    def _member(self, conn: sa.Connection, user_id: str, workspace_id: str, role: str, stamp: str) -> None:
        doc = {"type": "workspace_member", "user_id": user_id, "workspace_id": workspace_id, "workspace_role": role}
        done = conn.execute(
            sa.update(workspace_members)
            .where(workspace_members.c.workspace_id == workspace_id, workspace_members.c.id == user_id)
            .values(doc=doc)
        )
        if done.rowcount == 0:
            conn.execute(
                sa.insert(workspace_members).values(workspace_id=workspace_id, id=user_id, created_at=stamp, doc=doc)
            )

    def _User_Created(self, conn: sa.Connection, event: Any) -> None:
        self._joined(conn, event.user_id, event, event.email)

    def _User_Rejoined(self, conn: sa.Connection, event: Any) -> None:
        row = conn.execute(sa.select(users.c.id, users.c.email).where(users.c.stream_id == str(event.originator_id))).first()
        if row is not None:
            self._joined(conn, row.id, event, row.email)

    def _User_Removed(self, conn: sa.Connection, event: Any) -> None:
        user_id = self._user_id(conn, event)
        # The row stays (its email and id are needed if the person rejoins) but leaves lists.
        conn.execute(sa.update(users).where(users.c.id == user_id).values(role="", created_at=""))
        conn.execute(sa.delete(workspace_members).where(workspace_members.c.id == user_id))

    def _patch_user(self, conn: sa.Connection, event: Any, **changes: Any) -> None:
        row = conn.execute(sa.select(users.c.doc).where(users.c.stream_id == str(event.originator_id))).first()
        if row is not None:
            values = {"role": changes["role"]} if "role" in changes else {}
            conn.execute(
                sa.update(users)
                .where(users.c.stream_id == str(event.originator_id))
                .values(doc={**row.doc, **changes}, **values)
            )

    def _User_RoleChanged(self, conn: sa.Connection, event: Any) -> None:
        self._patch_user(conn, event, role=event.role)

    def _User_ProfileUpdated(self, conn: sa.Connection, event: Any) -> None:
        self._patch_user(conn, event, name=event.name)

    def _User_WorkspaceRoleSet(self, conn: sa.Connection, event: Any) -> None:
        user_id = self._user_id(conn, event)
        if user_id is not None:
            stamp = iso(event.timestamp)
            assert stamp is not None
            self._member(conn, user_id, event.workspace_id, event.workspace_role, stamp)

    def _User_WorkspaceMembershipRemoved(self, conn: sa.Connection, event: Any) -> None:
        user_id = self._user_id(conn, event)
        conn.execute(
            sa.delete(workspace_members).where(
                workspace_members.c.workspace_id == event.workspace_id, workspace_members.c.id == user_id
            )
        )

    # -- invites -------------------------------------------------------------------------------

    def _Invite_Created(self, conn: sa.Connection, event: Any) -> None:
        stamp, expires = iso(event.timestamp), iso(event.expires_at)
        doc = {
            "id": event.invite_id, "type": "invite", "email": event.email, "role": event.role, "status": "pending",
            "invited_at": stamp, "expires_at": expires, "accepted_at": None, "rbac_group_ids": [],
        }  # fmt: skip
        conn.execute(
            sa.insert(invites).values(
                id=event.invite_id, stream_id=str(event.originator_id), email=event.email, role=event.role,
                state="pending", expires_at=expires, created_at=stamp, doc=doc,
            )  # fmt: skip
        )

    def _Invite_Accepted(self, conn: sa.Connection, event: Any) -> None:
        where = invites.c.stream_id == str(event.originator_id)
        row = conn.execute(sa.select(invites.c.doc).where(where)).first()
        if row is not None:
            doc = {**row.doc, "status": "accepted", "accepted_at": iso(event.timestamp)}
            conn.execute(sa.update(invites).where(where).values(state="accepted", doc=doc))

    def _Invite_Deleted(self, conn: sa.Connection, event: Any) -> None:
        conn.execute(sa.delete(invites).where(invites.c.stream_id == str(event.originator_id)))


@dataclass(frozen=True)
class IdPage:
    data: list[dict[str, Any]]
    has_more: bool

    def envelope(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "has_more": self.has_more,
            "first_id": _row_id(self.data[0]) if self.data else None,
            "last_id": _row_id(self.data[-1]) if self.data else None,
        }


def _row_id(doc: dict[str, Any]) -> str:
    return str(doc.get("id") or doc.get("user_id"))


@dataclass(frozen=True)
class IdQuery:
    limit: int = 20
    after_id: str | None = None
    before_id: str | None = None


class PeopleReadModels:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def _page(self, table: sa.Table, conditions: list[Any], query: IdQuery) -> IdPage:
        key = sa.tuple_(table.c.created_at, table.c.id)
        with self._engine.connect() as conn:
            select = sa.select(table.c.doc).where(*conditions)
            anchor_id = query.after_id or query.before_id
            backwards = query.after_id is None and query.before_id is not None
            if anchor_id is not None:
                anchor = conn.execute(
                    sa.select(table.c.created_at, table.c.id).where(*conditions, table.c.id == anchor_id)
                ).first()
                if anchor is None:
                    return IdPage([], False)
                select = select.where(key < tuple(anchor) if backwards else key > tuple(anchor))
            order = sa.desc if backwards else sa.asc
            select = select.order_by(order(table.c.created_at), order(table.c.id)).limit(query.limit + 1)
            docs = [dict(row.doc) for row in conn.execute(select)]
        more = len(docs) > query.limit
        docs = docs[: query.limit]
        if backwards:
            docs.reverse()
        return IdPage(docs, more)

    def users(self, query: IdQuery, email: str | None = None, roles: list[str] | None = None) -> IdPage:
        conditions: list[Any] = [users.c.role != ""]
        if email:
            conditions.append(users.c.email == email.strip().lower())
        if roles:
            conditions.append(users.c.role.in_(roles))
        return self._page(users, conditions, query)

    def admin_ids(self) -> list[str]:
        with self._engine.connect() as conn:
            return list(conn.execute(sa.select(users.c.id).where(users.c.role == "admin")).scalars())

    def pending_invite_ids(self, email: str) -> list[str]:
        with self._engine.connect() as conn:
            where = (invites.c.email == email, invites.c.state == "pending")
            return list(conn.execute(sa.select(invites.c.id).where(*where)).scalars())

    def invites(
        self, query: IdQuery, now: datetime, email: str | None = None, roles: list[str] | None = None,
        statuses: list[str] | None = None,
    ) -> IdPage:  # fmt: skip
        stamp = iso(now)
        conditions: list[Any] = []
        if email:
            conditions.append(invites.c.email == email.strip().lower())
        if roles:
            conditions.append(invites.c.role.in_(roles))
        if statuses:
            wanted = []
            if "accepted" in statuses:
                wanted.append(invites.c.state == "accepted")
            if "pending" in statuses:
                wanted.append(sa.and_(invites.c.state == "pending", invites.c.expires_at > stamp))
            if "expired" in statuses:
                wanted.append(sa.and_(invites.c.state == "pending", invites.c.expires_at <= stamp))
            conditions.append(sa.or_(*wanted) if wanted else sa.false())
        page = self._page(invites, conditions, query)
        for doc in page.data:
            if doc["status"] == "pending" and doc["expires_at"] <= stamp:
                doc["status"] = "expired"
        return page

    def workspace_members(self, workspace_id: str, query: IdQuery) -> IdPage:
        return self._page(workspace_members, [workspace_members.c.workspace_id == workspace_id], query)
