"""Reads of the list read models: one list query, one keyset page behind opaque tokens, one
page envelope for every list endpoint."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa

from application.mentions import Mentionable
from application.views import AGENT_OWNER, TIME_BOUNDS, CatalogEntry
from domain.ids import stream_id
from projections import people as people_tables
from projections import tables, task_tables


class BadPageToken(ValueError):
    """The page token was not one this server handed out."""


MAX_TOKEN_INT = 2**62
# A page stops early (and says there is more) once its documents reach this many bytes of
# JSON, so a page of large agents cannot take the server's memory with it. It always holds
# at least one row.
MAX_PAGE_BYTES = 4 * 1024 * 1024


def encode_token(*key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_token(token: str, *shape: type) -> list[Any]:
    """The token's values, each checked against ``shape`` (``str`` or ``int``)."""
    try:
        padded = token + "=" * (-len(token) % 4)
        key = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise BadPageToken("invalid page token") from None
    if not isinstance(key, list) or len(key) != len(shape):
        raise BadPageToken("invalid page token")
    for value, kind in zip(key, shape, strict=True):
        if kind is int and (type(value) is not int or not 0 <= value <= MAX_TOKEN_INT):
            raise BadPageToken("invalid page token")
        # PostgreSQL text cannot hold a NUL: a token carrying one would reach a query as a 500.
        if kind is str and (not isinstance(value, str) or len(value) > 128 or "\x00" in value):
            raise BadPageToken("invalid page token")
    return key


@dataclass(frozen=True)
class ListQuery:
    """What every list endpoint accepts. ``created_at`` maps a bound (gt, gte, lt, lte) to a
    fixed-width UTC timestamp, so bounds compare as strings."""

    limit: int = 20
    page: str | None = None
    include_archived: bool = False
    created_at: dict[str, str] = field(default_factory=dict)
    descending: bool = True


@dataclass(frozen=True)
class TaskFilters:
    """What the task list narrows by, besides the list query (all AND'ed; lists OR'ed within)."""

    board_id: str | None = None
    assigned_agent_id: str | None = None
    parent_task_id: str | None = None
    statuses: list[str] = field(default_factory=list)
    priorities: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    due_before: str | None = None
    due_after: str | None = None
    q: str | None = None
    archived: bool | None = None  # only archived (True) or only live (False) ones


@dataclass(frozen=True)
class Page:
    data: list[dict[str, Any]]
    next_page: str | None
    prev_page: str | None = None

    def envelope(self) -> dict[str, Any]:
        return {"data": self.data, "next_page": self.next_page, "prev_page": self.prev_page}


class ReadModels:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def _page(
        self,
        table: sa.Table,
        key_columns: tuple[sa.Column[Any], ...],
        conditions: list[Any],
        query: ListQuery,
    ) -> Page:
        """A keyset page. A token carries its direction and the key of the row it stopped at:
        ``next`` continues after the last row, ``prev`` returns to the rows before the first."""
        # A token names its list, so one list's token cannot page through another.
        shape = (str, str) + tuple(int if isinstance(c.type, sa.Integer) else str for c in key_columns)
        direction, key = "next", None
        if query.page:
            listed, direction, *key = decode_token(query.page, *shape)
            if listed != table.name or direction not in ("next", "prev"):
                raise BadPageToken("invalid page token")
        descending = query.descending if direction == "next" else not query.descending
        select = sa.select(table.c.doc, *key_columns).where(*conditions)
        if key is not None:
            row_key = sa.tuple_(*key_columns)
            select = select.where(row_key < tuple(key) if descending else row_key > tuple(key))
        order = sa.desc if descending else sa.asc
        select = select.order_by(*(order(column) for column in key_columns)).limit(query.limit + 1)
        rows, more = self._fetch(select, query.limit)
        if direction == "prev":
            rows.reverse()
        names = [column.name for column in key_columns]

        def token(towards: str, values: list[Any]) -> str:
            return encode_token(table.name, towards, *values)

        def key_of(row: Any) -> list[Any]:
            return [getattr(row, name) for name in names]

        # Going forward there are rows behind us exactly when we came by token; going back,
        # the rows we came from are ahead.
        ahead = more if direction == "next" else key is not None
        behind = key is not None if direction == "next" else more
        if not rows:
            # Nothing here any more (archived meanwhile): the way back is from where we came.
            back = key if key is not None and direction == "next" else None
            forward = key if key is not None and direction == "prev" else None
            return Page([], None if forward is None else token("next", forward), None if back is None else token("prev", back))
        return Page(
            [row.doc for row in rows],
            token("next", key_of(rows[-1])) if ahead else None,
            token("prev", key_of(rows[0])) if behind else None,
        )

    def _fetch(self, select: sa.Select[Any], limit: int) -> tuple[list[Any], bool]:
        """Up to ``limit`` rows within the byte budget, and whether more rows follow."""
        rows: list[Any] = []
        size = 0
        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=50).execute(select)
            for row in result:
                if len(rows) == limit:
                    return rows, True
                size += len(orjson.dumps(row.doc))
                if rows and size > MAX_PAGE_BYTES:
                    return rows, True
                rows.append(row)
        return rows, False

    @staticmethod
    def _resource_conditions(table: sa.Table, tenant_id: str, query: ListQuery) -> list[Any]:
        conditions = [table.c.tenant_id == tenant_id]
        if not query.include_archived:
            conditions.append(table.c.archived.is_(False))
        for bound, moment in query.created_at.items():
            conditions.append(TIME_BOUNDS[bound](table.c.created_at, moment))
        return conditions

    def _resources(self, table: sa.Table, tenant_id: str, query: ListQuery, *extra: Any) -> Page:
        conditions = self._resource_conditions(table, tenant_id, query) + list(extra)
        return self._page(table, (table.c.created_at, table.c.id), conditions, query)

    def agents(
        self, tenant_id: str, query: ListQuery, department_id: str | None = None, board_id: str | None = None
    ) -> Page:
        table = tables.agents
        extra = []
        if department_id:
            extra.append(table.c.doc["department_id"].as_string() == department_id)
        if board_id:
            extra.append(table.c.doc["primary_board_id"].as_string() == board_id)
        return self._resources(table, tenant_id, query, *extra)

    def agent_versions(self, tenant_id: str, agent_id: str, query: ListQuery) -> Page:
        table = tables.agent_versions
        conditions = [table.c.tenant_id == tenant_id, table.c.agent_id == agent_id]
        return self._page(table, (table.c.version,), conditions, query)

    def environments(self, tenant_id: str, query: ListQuery) -> Page:
        return self._resources(tables.environments, tenant_id, query)

    def environment_keys(self, tenant_id: str, environment_id: str, query: ListQuery) -> Page:
        table = tables.environment_keys
        return self._resources(table, tenant_id, query, table.c.environment_id == environment_id)

    def model_cards(self, tenant_id: str, query: ListQuery, provider: str | None = None) -> Page:
        table = tables.model_cards
        extra = [table.c.provider == provider] if provider else []
        return self._resources(table, tenant_id, query, *extra)

    # -- the model catalogue (GET /v1/models): live agents and model cards as one list -----

    def _catalog(self, tenant_id: str, include_archived: bool = False) -> sa.Subquery:
        """Both tables as one relation: ``id`` (an agent's id, a card's ``model_id``),
        ``created_at``, ``owned_by`` and ``agent`` (whether the row is one). An agent's name is
        not read here: parsing every agent's document (system prompts and all) to sort a
        page would cost far more than reading the names of the page's agents afterwards."""
        agents, cards = tables.agents, tables.model_cards
        listed_agents = sa.select(
            agents.c.id.label("id"),
            agents.c.created_at,
            sa.literal_column(f"'{AGENT_OWNER}'", sa.String).label("owned_by"),
            sa.literal_column("1", sa.Integer).label("agent"),
        ).where(agents.c.tenant_id == tenant_id, *([] if include_archived else [agents.c.archived.is_(False)]))
        listed_cards = sa.select(
            cards.c.doc["model_id"].as_string().label("id"),
            cards.c.created_at,
            cards.c.provider.label("owned_by"),
            sa.literal_column("0", sa.Integer).label("agent"),
        ).where(cards.c.tenant_id == tenant_id)
        return sa.union_all(listed_agents, listed_cards).subquery("catalog")

    def catalog_key(self, tenant_id: str, entry_id: str) -> tuple[str, str] | None:
        """Where ``entry_id`` sorts in the catalogue, for ``after_id`` / ``before_id``. An agent
        archived since it was listed still has its place, so a pager walking past it goes on."""
        catalog = self._catalog(tenant_id, include_archived=True)
        select = sa.select(catalog.c.created_at, catalog.c.id).where(catalog.c.id == entry_id).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(select).first()
        return None if row is None else (row.created_at, row.id)

    def model_catalog(
        self, tenant_id: str, limit: int, after: tuple[str, str] | None = None, before: tuple[str, str] | None = None
    ) -> tuple[list[CatalogEntry], bool]:
        """Up to ``limit`` entries, newest first, strictly between the keys given, and whether
        more follow. With ``before`` the page is the one nearest it (read oldest first, then
        turned), and "more" means newer ones, as the anthropic SDK pages back with ``before_id``."""
        catalog = self._catalog(tenant_id)
        key = sa.tuple_(catalog.c.created_at, catalog.c.id)
        select = sa.select(catalog)
        if after is not None:
            select = select.where(key < sa.tuple_(*after))
        if before is not None:
            select = select.where(key > sa.tuple_(*before))
        order = sa.asc if before is not None else sa.desc
        select = select.order_by(order(catalog.c.created_at), order(catalog.c.id)).limit(limit + 1)
        agents = tables.agents
        with self._engine.connect() as conn:
            rows = conn.execute(select).all()
            more = len(rows) > limit
            rows = rows[:limit]
            agent_ids = [row.id for row in rows if row.agent]
            named = sa.select(agents.c.id, agents.c.doc["name"].as_string().label("name")).where(
                agents.c.tenant_id == tenant_id, agents.c.id.in_(agent_ids)
            )
            names = {row.id: row.name for row in conn.execute(named)} if agent_ids else {}
        entries = [CatalogEntry(row.id, names.get(row.id) or row.id, row.owned_by, row.created_at) for row in rows]
        if before is not None:
            entries.reverse()
        return entries, more

    def agent_ids_named(self, tenant_id: str, name: str, limit: int = 2) -> list[str]:
        """Live agents of the tenant called exactly ``name`` (``agent:<name>``), oldest first."""
        table = tables.agents
        select = (
            sa.select(table.c.id)
            .where(table.c.tenant_id == tenant_id, table.c.archived.is_(False), table.c.doc["name"].as_string() == name)
            .order_by(table.c.created_at, table.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [row.id for row in conn.execute(select)]

    def sessions(
        self,
        tenant_id: str,
        query: ListQuery,
        agent_id: str | None = None,
        agent_version: int | None = None,
        statuses: list[str] | None = None,
    ) -> Page:
        table = tables.sessions
        extra: list[Any] = [table.c.deleted.is_(False)]
        if agent_id:
            extra.append(table.c.agent_id == agent_id)
        if agent_version is not None:
            extra.append(table.c.agent_version == agent_version)
        if statuses:
            extra.append(table.c.status.in_(statuses))
        return self._resources(table, tenant_id, query, *extra)

    # -- tasks, boards, departments ---------------------------------------------------------

    def tasks(self, tenant_id: str, query: ListQuery, filters: TaskFilters) -> Page:
        table = task_tables.tasks
        extra: list[Any] = []
        for column, value in (
            (table.c.board_id, filters.board_id),
            (table.c.assigned_agent_id, filters.assigned_agent_id),
            (table.c.parent_task_id, filters.parent_task_id),
        ):
            if value:
                extra.append(column == value)
        if filters.statuses:
            extra.append(table.c.status.in_(filters.statuses))
        if filters.priorities:
            extra.append(table.c.priority.in_(filters.priorities))
        if filters.archived is not None:
            extra.append(table.c.archived.is_(filters.archived))
        if filters.due_before:
            extra.append(table.c.due_at < filters.due_before)
        if filters.due_after:
            extra.append(table.c.due_at > filters.due_after)
        tags = task_tables.task_tags
        for tag in filters.tags:
            extra.append(sa.exists().where(tags.c.stream_id == table.c.stream_id, tags.c.tag == tag))
        if filters.q:
            pattern = "%" + filters.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            names = task_tables.task_agent_names
            named = sa.select(names.c.agent_id).where(names.c.tenant_id == tenant_id, sa.func.lower(names.c.name).like(pattern, escape="\\"))
            extra.append(
                sa.or_(
                    sa.func.lower(table.c.title).like(pattern, escape="\\"),
                    sa.func.lower(table.c.description).like(pattern, escape="\\"),
                    table.c.assigned_agent_id.in_(named),
                )
            )
        return self._resources(table, tenant_id, query, *extra)

    def task_comments(self, task_id: str, query: ListQuery) -> Page:
        """A task's comments, oldest first (the caller checked the task is theirs)."""
        table = task_tables.task_comments
        conditions = [table.c.task_stream == str(stream_id(task_id))]
        conditions += [TIME_BOUNDS[bound](table.c.created_at, moment) for bound, moment in query.created_at.items()]
        return self._page(table, (table.c.created_at, table.c.id), conditions, query)

    def mentionable(self, tenant_id: str) -> list[Mentionable]:
        """The workspace's members and its live agents, for ``@`` mentions."""
        names, agents = task_tables.task_agent_names, tables.agents
        live_agents = sa.select(names.c.agent_id, names.c.name).join(agents, agents.c.id == names.c.agent_id).where(
            names.c.tenant_id == tenant_id, agents.c.archived.is_(False)
        )
        members, users = people_tables.workspace_members, people_tables.users
        people = sa.select(users.c.id, users.c.email, users.c.doc).join(members, members.c.id == users.c.id).where(
            members.c.workspace_id == tenant_id
        )
        with self._engine.connect() as conn:
            found = [Mentionable("agent", row.agent_id, row.name) for row in conn.execute(live_agents)]
            found += [Mentionable("user", row.id, row.doc.get("name") or "", row.email) for row in conn.execute(people)]
        return found

    def boards(self, tenant_id: str, query: ListQuery, department_id: str | None = None) -> Page:
        table = task_tables.boards
        return self._resources(table, tenant_id, query, *([table.c.department_id == department_id] if department_id else []))

    def departments(self, tenant_id: str, query: ListQuery) -> Page:
        return self._resources(task_tables.departments, tenant_id, query)

    def vaults(self, tenant_id: str, query: ListQuery) -> Page:
        return self._resources(tables.vaults, tenant_id, query)

    def vault_credentials(self, tenant_id: str, vault_id: str, query: ListQuery) -> Page:
        table = tables.vault_credentials
        return self._resources(table, tenant_id, query, table.c.vault_id == vault_id)

    def session_resources(self, session_id: str, query: ListQuery) -> Page:
        """A session's resources in the order attached (the caller checked the session)."""
        table = tables.session_resources
        conditions = [table.c.stream_id == str(stream_id(session_id))]
        return self._page(table, (table.c.position,), conditions, query)

    def running_session_ids(self) -> list[str]:
        """Sessions a runtime was driving (any tenant), between model requests or waiting to
        retry one: candidates to resume after a restart or a dead worker."""
        table = tables.sessions
        select = sa.select(table.c.id).where(
            table.c.status.in_(("running", "rescheduling")), table.c.deleted.is_(False)
        )
        with self._engine.connect() as conn:
            return [row.id for row in conn.execute(select)]

    def work_items(self, tenant_id: str, environment_id: str, query: ListQuery) -> Page:
        table = tables.work_items
        return self._resources(table, tenant_id, query, table.c.environment_id == environment_id)

    def live_work_ids(self, environment_ids: list[str] | None, hosting: str | None = None, limit: int = 200) -> list[str]:
        """Items a poll may have to act on (not stopped): of these environments, or (None)
        of every environment hosted so. Unclaimed ones first, each group oldest first, so
        items that workers hold never crowd a waiting one out of the window."""
        table = tables.work_items
        where = [table.c.state != "stopped"]
        if environment_ids is not None:
            where.append(table.c.environment_id.in_(environment_ids))
        if hosting is not None:
            where.append(table.c.hosting == hosting)
        select = (
            sa.select(table.c.id)
            .where(*where)
            .order_by(sa.case((table.c.claim == 0, 0), else_=1), table.c.created_at, table.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [row.id for row in conn.execute(select)]

    def work_queue_depth(self, environment_id: str) -> tuple[int, int, str | None]:
        """``(depth, pending, oldest_queued_at)`` of an environment's queue: queued items no
        poll claimed, queued items claimed but not acknowledged, the oldest of either."""
        table = tables.work_items
        queued = sa.and_(table.c.environment_id == environment_id, table.c.state == "queued")
        select = sa.select(
            sa.func.count().filter(table.c.claim == 0),
            sa.func.count().filter(table.c.claim > 0),
            sa.func.min(table.c.created_at),
        ).where(queued)
        with self._engine.connect() as conn:
            depth, pending, oldest = conn.execute(select).one()
        return int(depth or 0), int(pending or 0), oldest

    # -- the organization's lists, paged as the anthropic SDK's ``SyncPage`` pages ---------

    def _id_page(
        self, table: sa.Table, conditions: list[Any], limit: int, after_id: str | None, before_id: str | None
    ) -> dict[str, Any]:
        """``{data, has_more, first_id, last_id}``, oldest first, strictly after ``after_id``
        or before ``before_id`` (an id not in the list pages from its start)."""
        key = sa.tuple_(table.c.created_at, table.c.id)
        select = sa.select(table.c.doc).where(*conditions)
        with self._engine.connect() as conn:
            for cursor, towards in ((after_id, key.__gt__), (before_id, key.__lt__)):
                if cursor:
                    row = conn.execute(sa.select(table.c.created_at, table.c.id).where(table.c.id == cursor[:64])).first()
                    if row is not None:
                        select = select.where(towards(sa.tuple_(row.created_at, row.id)))
            backwards = bool(before_id) and not after_id
            order = sa.desc if backwards else sa.asc
            select = select.order_by(order(table.c.created_at), order(table.c.id)).limit(limit + 1)
            docs = [row.doc for row in conn.execute(select)]
        more = len(docs) > limit
        docs = docs[:limit]
        if backwards:
            docs.reverse()
        return {
            "data": docs,
            "has_more": more,
            "first_id": docs[0]["id"] if docs else None,
            "last_id": docs[-1]["id"] if docs else None,
        }

    def workspaces(
        self,
        reachable: frozenset[str] | None,
        limit: int,
        after_id: str | None = None,
        before_id: str | None = None,
        include_archived: bool = False,
        ids: list[str] | None = None,
    ) -> dict[str, Any]:
        table = tables.workspaces
        conditions: list[Any] = []
        if reachable is not None:
            conditions.append(table.c.id.in_(sorted(reachable)))
        if ids:
            conditions.append(table.c.id.in_(ids))
        if not include_archived:
            conditions.append(table.c.archived.is_(False))
        return self._id_page(table, conditions, limit, after_id, before_id)

    def api_keys(
        self,
        reachable: frozenset[str] | None,
        limit: int,
        after_id: str | None = None,
        before_id: str | None = None,
        workspace_id: str | None = None,
        status: str | None = None,
        created_by: str | None = None,
    ) -> dict[str, Any]:
        table = tables.api_keys
        conditions: list[Any] = []
        if reachable is not None:
            conditions.append(table.c.tenant_id.in_(sorted(reachable)))
        if workspace_id:
            conditions.append(table.c.tenant_id == workspace_id)
        if status:
            conditions.append(table.c.status == status)
        if created_by:
            conditions.append(table.c.created_by == created_by)
        return self._id_page(table, conditions, limit, after_id, before_id)

    def api_key_stream(self, key_id: str) -> UUID | None:
        table = tables.api_keys
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(table.c.stream_id).where(table.c.id == key_id)).first()
        return None if row is None else UUID(row.stream_id)
