"""The notification and dashboard endpoints in the API description
(``api_description.OPERATIONS`` takes them in one line)."""

from __future__ import annotations

from interfaces.http import notification_schemas as schemas
from interfaces.http.api_description import LIST_QUERY, Operation, Param, integer, path_id

NOTIFICATION = path_id("notification_id", "ntf")
# The list query without include_archived (nothing here is archived).
NOTIFICATION_QUERY = tuple(param for param in LIST_QUERY if param.name != "include_archived")
BODY = (400, 413, 415)

WHO_SEES = (
    "A mention is addressed to the person mentioned; approvals awaited, tasks done and session "
    "errors to the whole workspace. A person (a login token) sees the workspace's notifications and "
    "their own; an API key sees the workspace's. Each caller has read marks of their own."
)

# One frame of the stream.
NOTIFICATION_FRAME = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "const": "notification"},
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "the notification's `position`"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/Notification"},
        },
    },
    "required": ["event", "id", "data"],
}

NOTIFICATION_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get", "/v1/notifications", "listNotifications", "List the caller's notifications, newest first",
        "notifications", schemas.NotificationPage,
        params=(
            *NOTIFICATION_QUERY,
            Param("read", "query", {"type": "boolean"}, "only read (true) or only unread (false) ones"),
        ),
        errors=(400,),
        description=(
            f"Kinds: `mention` (a comment on a task mentioned you), `approval_awaited` (a task is in "
            f"review), `task_done`, `session_error` (a session's turn failed). {WHO_SEES}"
        ),
    ),  # fmt: skip
    Operation(
        "get", "/v1/notifications/unread_count", "countUnreadNotifications", "How many of the caller's notifications are unread",
        "notifications", schemas.UnreadCount,
    ),
    Operation(
        "get", "/v1/notifications/{notification_id}", "getNotification", "Retrieve a notification", "notifications",
        schemas.Notification, params=(NOTIFICATION,), errors=(404,),
    ),
    Operation(
        "post", "/v1/notifications/{notification_id}/read", "readNotification", "Mark a notification read",
        "notifications", schemas.Notification, params=(NOTIFICATION,), errors=(404,),
        description="For the caller only; marking one already read changes nothing.",
    ),
    Operation(
        "patch", "/v1/notifications/{notification_id}/read", "patchReadNotification",
        "Mark a notification read (as POST; Mission Control's verb)", "notifications", schemas.Notification,
        params=(NOTIFICATION,), errors=(404,),
    ),
    Operation(
        "post", "/v1/notifications/read_all", "readAllNotifications", "Mark every notification read", "notifications",
        schemas.NotificationsRead, request=schemas.ReadAll, request_optional=True, errors=BODY,
        description="Every notification the caller sees, up to `up_to` or the newest one; for the caller only.",
    ),
    Operation(
        "get", "/v1/notifications/stream", "streamNotifications", "Follow the caller's notifications (Server-Sent Events)",
        "notifications", None,
        params=(
            Param(
                "Last-Event-ID", "header", {"type": "string", "pattern": "^[0-9]{1,18}$"},
                "resume after this position (wins over `after`)",
            ),
            Param("after", "query", integer(0, 2**62), "send the notifications after this position first"),
            Param(
                "max_seconds", "query", integer(0, 86_400),
                "end the stream after this long (reconnect with Last-Event-ID); 0: send what is there and end",
            ),
        ),
        errors=(400,),
        content={"text/event-stream": NOTIFICATION_FRAME},
        description=(
            "Each frame is `event: notification`, `id: <position>`, `data: <the notification as JSON>`. "
            "Starts live unless `Last-Event-ID` or `after` asks for the ones after a position; then sends "
            "each new notification as it is made, in position order, with no gap and no duplicate, and a "
            f"keep-alive comment while idle. {WHO_SEES}"
        ),
    ),  # fmt: skip
    Operation(
        "get", "/v1/dashboard/stats", "getDashboardStats", "The workspace's numbers at a glance", "dashboard",
        schemas.DashboardStats,
        description=(
            "Agents (all, live, archived), tasks by status with the completion rate (done or approved over "
            "every task not cancelled), and sessions by status."
        ),
    ),
)
