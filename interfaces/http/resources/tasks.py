"""/v1/tasks, /v1/boards, /v1/departments: the work people hand to agents and where it is filed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import falcon
import falcon.asgi

from application.boards import BoardService, DepartmentService
from application.tasks import TaskService
from domain.tasks import PRIORITIES, STATUSES
from interfaces.http.common import ReadYourWrites, list_params, list_query, normalize_timestamp, parse, principal, run
from interfaces.http.task_schemas import (
    BoardCreate,
    BoardUpdate,
    CommentCreate,
    DepartmentCreate,
    DepartmentUpdate,
    TaskApprove,
    TaskCreate,
    TaskExecute,
    TaskReject,
    TaskUpdate,
)
from projections.queries import ListQuery, Page, ReadModels, TaskFilters

MAX_SEARCH = 200


def _checked(req: falcon.asgi.Request, name: str, choices: tuple[str, ...]) -> list[str]:
    values = list_params(req, name)
    for value in values:
        if value not in choices:
            raise falcon.HTTPBadRequest(description=f"query parameter {name} must be one of {', '.join(choices)}")
    return values


def _moment(req: falcon.asgi.Request, name: str) -> str | None:
    raw = req.get_param(name)
    return normalize_timestamp(raw) if raw else None


def task_filters(req: falcon.asgi.Request) -> TaskFilters:
    q = (req.get_param("q") or "").strip() or None
    if q is not None and len(q) > MAX_SEARCH:
        raise falcon.HTTPBadRequest(description=f"query parameter q may be at most {MAX_SEARCH} characters")
    return TaskFilters(
        board_id=req.get_param("board_id") or None,
        assigned_agent_id=req.get_param("assigned_agent_id") or None,
        parent_task_id=req.get_param("parent_task_id") or None,
        statuses=_checked(req, "status", STATUSES),
        priorities=_checked(req, "priority", PRIORITIES),
        tags=list_params(req, "tag")[:8],
        due_before=_moment(req, "due_before"),
        due_after=_moment(req, "due_after"),
        q=q,
    )


def _archived_query(req: falcon.asgi.Request) -> tuple[ListQuery, bool | None]:
    """Mission Control's ``archived`` (only archived / only live) beside ``include_archived``."""
    query = list_query(req)
    raw = req.get_param("archived")
    if raw is None:
        return query, None
    if raw.lower() not in ("true", "false"):
        raise falcon.HTTPBadRequest(description="query parameter archived must be true or false")
    return dataclasses.replace(query, include_archived=True), raw.lower() == "true"


class TasksResource:
    """Routes: ``/v1/tasks`` and, by suffix, ``/{task_id}`` (item), ``/archive``, ``/execute``,
    ``/approve``, ``/reject``."""

    def __init__(self, tasks: TaskService, lists: ReadModels, written: ReadYourWrites) -> None:
        self._tasks = tasks
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, TaskCreate)
        await self._written.answer(resp, await run(self._tasks.create, principal(req), body.given()))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        query, archived = _archived_query(req)
        filters = dataclasses.replace(task_filters(req), archived=archived)
        page = await run(self._lists.tasks, principal(req).tenant_id, query, filters)
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str) -> None:
        resp.media = await run(self._tasks.retrieve, principal(req), task_id)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str) -> None:
        body = await parse(req, TaskUpdate)
        written = await run(self._tasks.update, principal(req), task_id, body.changes(), body.version)
        await self._written.answer(resp, written)

    on_patch_item = on_post_item  # Mission Control edits with PATCH

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str) -> None:
        await self._written.answer(resp, await run(self._tasks.delete, principal(req), task_id))

    async def on_post_archive(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str) -> None:
        await self._written.answer(resp, await run(self._tasks.archive, principal(req), task_id))

    async def on_post_execute(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str) -> None:
        body = await parse(req, TaskExecute, optional=True)
        await self._written.answer(resp, await run(self._tasks.execute, principal(req), task_id, body.environment_id))

    async def on_post_approve(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str) -> None:
        body = await parse(req, TaskApprove, optional=True)
        await self._written.answer(resp, await run(self._tasks.approve, principal(req), task_id, body.comment))

    async def on_post_reject(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str) -> None:
        body = await parse(req, TaskReject)
        await self._written.answer(resp, await run(self._tasks.reject, principal(req), task_id, body.comment))


class GroupingResource:
    """A board's or a department's routes: the collection and, by suffix, the item and
    ``/archive``. Both are plain definitions; they differ in their service, their request
    models and how their list narrows."""

    def __init__(
        self,
        service: BoardService | DepartmentService,
        create: type[BoardCreate | DepartmentCreate],
        update: type[BoardUpdate | DepartmentUpdate],
        listed: Callable[[falcon.asgi.Request, str], Page],
        written: ReadYourWrites,
    ) -> None:
        self._service = service
        self._create = create
        self._update = update
        self._listed = listed
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, self._create)
        await self._written.answer(resp, await run(self._service.create, principal(req), body.given()))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = (await run(self._listed, req, principal(req).tenant_id)).envelope()

    # The item's id comes as ``board_id`` or ``department_id``: the route's one parameter.

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, **path: str) -> None:
        (item_id,) = path.values()
        resp.media = await run(self._service.retrieve, principal(req), item_id)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, **path: str) -> None:
        (item_id,) = path.values()
        body = await parse(req, self._update)
        await self._written.answer(resp, await run(self._service.update, principal(req), item_id, body.given()))

    on_patch_item = on_post_item  # Mission Control edits with PATCH

    async def on_post_archive(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, **path: str) -> None:
        (item_id,) = path.values()
        await self._written.answer(resp, await run(self._service.archive, principal(req), item_id))


def boards_resource(boards: BoardService, lists: ReadModels, written: ReadYourWrites) -> GroupingResource:
    def listed(req: falcon.asgi.Request, tenant_id: str) -> Page:
        return lists.boards(tenant_id, list_query(req), req.get_param("department_id") or None)

    return GroupingResource(boards, BoardCreate, BoardUpdate, listed, written)


def departments_resource(departments: DepartmentService, lists: ReadModels, written: ReadYourWrites) -> GroupingResource:
    def listed(req: falcon.asgi.Request, tenant_id: str) -> Page:
        return lists.departments(tenant_id, list_query(req))

    return GroupingResource(departments, DepartmentCreate, DepartmentUpdate, listed, written)


class TaskCommentsResource:
    """``/v1/tasks/{task_id}/comments``: the thread, oldest first; a comment with ``@`` mentions."""

    def __init__(self, tasks: TaskService, lists: ReadModels, written: ReadYourWrites) -> None:
        self._tasks = tasks
        self._lists = lists
        self._written = written

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str) -> None:
        await run(self._tasks.retrieve, principal(req), task_id)  # the caller's, or a 404
        page = await run(self._lists.task_comments, task_id, list_query(req, default_order="asc"))
        resp.media = page.envelope()

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str) -> None:
        body = await parse(req, CommentCreate)
        await self._written.answer(resp, await run(self._tasks.comment, principal(req), task_id, body.content))


class MentionsResource:
    """``/v1/mentions/search?q=``: people and agents to ``@`` mention, for autocomplete."""

    def __init__(self, tasks: TaskService) -> None:
        self._tasks = tasks

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        query = req.get_param("q") or ""
        if len(query) > MAX_SEARCH:
            raise falcon.HTTPBadRequest(description=f"query parameter q may be at most {MAX_SEARCH} characters")
        resp.media = {"data": await run(self._tasks.mention_suggestions, principal(req), query)}
