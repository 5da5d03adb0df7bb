"""The task, board and department endpoints in the API description (``api_description.OPERATIONS``
takes them in one line)."""

from __future__ import annotations

from typing import get_args

from interfaces.http import task_schemas as tasks
from interfaces.http.api_description import (
    BODY,
    LIMIT,
    LIST_QUERY,
    ORDER_ASC,
    PAGE,
    WRITE,
    Operation,
    Param,
    created_at,
    path_id,
)

TASK = path_id("task_id", "task")
BOARD = path_id("board_id", "board")
DEPARTMENT = path_id("department_id", "dept")
STATUSES = list(get_args(tasks.Status))
PRIORITIES = list(get_args(tasks.Priority))


def _many(name: str, items: dict[str, object], description: str) -> Param:
    return Param(name, "query", {"type": "array", "items": items, "maxItems": 8}, description)


TASK_FILTERS = (
    Param("board_id", "query", {"type": "string"}, "only tasks on this board"),
    Param("assigned_agent_id", "query", {"type": "string"}, "only tasks assigned to this agent"),
    Param("parent_task_id", "query", {"type": "string"}, "only sub-tasks of this task"),
    _many("status", {"type": "string", "enum": STATUSES}, "only these statuses (repeat it; OR'ed)"),
    _many("priority", {"type": "string", "enum": PRIORITIES}, "only these priorities (repeat it; OR'ed)"),
    _many("tag", {"type": "string"}, "only tasks with every one of these tags (at most 8)"),
    Param("due_before", "query", {"type": "string", "format": "date-time"}, "due strictly before (RFC 3339)"),
    Param("due_after", "query", {"type": "string", "format": "date-time"}, "due strictly after (RFC 3339)"),
    Param("archived", "query", {"type": "boolean"}, "only archived (true) or only live (false) ones"),
    Param("q", "query", {"type": "string", "maxLength": 200}, "search title, description and the assigned agent's name"),
)

TASK_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post", "/v1/tasks", "createTask", "Create a task", "tasks", tasks.Task, request=tasks.TaskCreate,
        errors=(*WRITE, 404),
        description="A board, agent or parent task it names must be the caller's (404) and live (an archived one: 400).",
    ),
    Operation(
        "get", "/v1/tasks", "listTasks", "List tasks, newest first", "tasks", tasks.TaskPage,
        params=(*LIST_QUERY, *TASK_FILTERS), errors=(400,),
    ),
    Operation("get", "/v1/tasks/{task_id}", "getTask", "Retrieve a task", "tasks", tasks.Task, params=(TASK,), errors=(404,)),
    Operation(
        "post", "/v1/tasks/{task_id}", "updateTask", "Update a task (only the fields sent)", "tasks", tasks.Task,
        request=tasks.TaskUpdate, params=(TASK,), errors=(*WRITE, 404),
        description=(
            "With `version`, the update applies only to that version: another is a 409. An archived task "
            "refuses changes (400). A task cannot become its own ancestor (400)."
        ),
    ),
    Operation(
        "patch", "/v1/tasks/{task_id}", "patchTask", "Update a task (as POST; Mission Control's verb)", "tasks",
        tasks.Task, request=tasks.TaskUpdate, params=(TASK,), errors=(*WRITE, 404),
    ),
    Operation(
        "post", "/v1/tasks/{task_id}/archive", "archiveTask", "Archive a task", "tasks", tasks.Task,
        params=(TASK,), errors=(404,),
    ),
    Operation(
        "delete", "/v1/tasks/{task_id}", "deleteTask", "Delete a task (its history stays in the log)", "tasks",
        tasks.TaskDeleted, params=(TASK,), errors=(404,),
    ),
    Operation(
        "post", "/v1/tasks/{task_id}/execute", "executeTask", "Run a task on its assigned agent", "tasks", tasks.Task,
        request=tasks.TaskExecute, request_optional=True, params=(TASK,), errors=(*BODY, 404),
        description=(
            "Starts a session on the assigned agent (in `environment_id`, else the workspace's default "
            "environment, made on first use) with the task's title and description as its first message; "
            "the task is `in_progress`. When the session ends its turn, the last agent message becomes the "
            "task's `result` and the task moves to `review` if it requires approval, else `done`. A task "
            "with no agent, already running, or archived: 400."
        ),
    ),
    Operation(
        "post", "/v1/tasks/{task_id}/approve", "approveTask", "Approve a task in review", "tasks", tasks.Task,
        request=tasks.TaskApprove, request_optional=True, params=(TASK,), errors=(*BODY, 403, 404),
        description="Needs the workspace's admin role (403 otherwise); a task not in review: 400.",
    ),
    Operation(
        "post", "/v1/tasks/{task_id}/reject", "rejectTask", "Reject a task in review, with feedback", "tasks",
        tasks.Task, request=tasks.TaskReject, params=(TASK,), errors=(*BODY, 403, 404),
        description=(
            "The comment goes to the run's session as a user message and the task is `in_progress` again "
            "(a task never run becomes `rejected`). Needs the workspace's admin role (403 otherwise)."
        ),
    ),
    Operation(
        "get", "/v1/tasks/{task_id}/comments", "listTaskComments", "A task's comments, oldest first", "tasks",
        tasks.TaskCommentPage, params=(TASK, LIMIT, PAGE, ORDER_ASC, *created_at("gt", "gte", "lt", "lte")), errors=(400, 404),
    ),
    Operation(
        "post", "/v1/tasks/{task_id}/comments", "createTaskComment", "Comment on a task", "tasks", tasks.TaskComment,
        request=tasks.CommentCreate, params=(TASK,), errors=(*WRITE, 404),
        description=(
            "`@Name` mentions resolve to the workspace's members and live agents (a name without its "
            "spaces, its first word, or an email's local part, in any case). Each agent mentioned (up to 3) "
            "is asked, in a session of its own in the workspace's default environment, to reply; its reply "
            "is posted as a comment by the agent with `reply_to` this comment."
        ),
    ),
    Operation(
        "get", "/v1/mentions/search", "searchMentions", "People and agents to mention, for autocomplete", "tasks",
        tasks.MentionSuggestions,
        params=(Param("q", "query", {"type": "string", "maxLength": 200}, "what was typed after the `@`"),),
        errors=(400,),
    ),
    # boards
    Operation(
        "post", "/v1/boards", "createBoard", "Create a board", "boards", tasks.Board, request=tasks.BoardCreate,
        errors=(*BODY, 404),
    ),
    Operation(
        "get", "/v1/boards", "listBoards", "List boards, newest first", "boards", tasks.BoardPage,
        params=(*LIST_QUERY, Param("department_id", "query", {"type": "string"}, "only this department's boards")),
        errors=(400,),
    ),
    Operation("get", "/v1/boards/{board_id}", "getBoard", "Retrieve a board", "boards", tasks.Board, params=(BOARD,), errors=(404,)),
    Operation(
        "post", "/v1/boards/{board_id}", "updateBoard", "Update a board", "boards", tasks.Board,
        request=tasks.BoardUpdate, params=(BOARD,), errors=(*WRITE, 404),
    ),
    Operation(
        "patch", "/v1/boards/{board_id}", "patchBoard", "Update a board (as POST)", "boards", tasks.Board,
        request=tasks.BoardUpdate, params=(BOARD,), errors=(*WRITE, 404),
    ),
    Operation(
        "post", "/v1/boards/{board_id}/archive", "archiveBoard", "Archive a board", "boards", tasks.Board,
        params=(BOARD,), errors=(404,),
    ),
    # departments
    Operation(
        "post", "/v1/departments", "createDepartment", "Create a department", "departments", tasks.Department,
        request=tasks.DepartmentCreate, errors=BODY,
    ),
    Operation(
        "get", "/v1/departments", "listDepartments", "List departments, newest first", "departments",
        tasks.DepartmentPage, params=LIST_QUERY, errors=(400,),
    ),
    Operation(
        "get", "/v1/departments/{department_id}", "getDepartment", "Retrieve a department", "departments",
        tasks.Department, params=(DEPARTMENT,), errors=(404,),
    ),
    Operation(
        "post", "/v1/departments/{department_id}", "updateDepartment", "Update a department", "departments",
        tasks.Department, request=tasks.DepartmentUpdate, params=(DEPARTMENT,), errors=(*WRITE, 404),
    ),
    Operation(
        "patch", "/v1/departments/{department_id}", "patchDepartment", "Update a department (as POST)", "departments",
        tasks.Department, request=tasks.DepartmentUpdate, params=(DEPARTMENT,), errors=(*WRITE, 404),
    ),
    Operation(
        "post", "/v1/departments/{department_id}/archive", "archiveDepartment", "Archive a department", "departments",
        tasks.Department, params=(DEPARTMENT,), errors=(404,),
    ),
)
