"""/v1/activity (the audit trail, filtered as Mission Control names its filters) and
/v1/dashboard/activity (its most recent entries)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import falcon
import falcon.asgi

from application.activity import readable_tenants
from application.views import iso
from interfaces.http.common import choice_param, limit_param, normalize_timestamp, principal, run, time_bounds
from projections.activity import ActivityFilter, ActivityReadModels
from projections.queries import ListQuery

FILTERS = ("entity_type", "entity_id", "action", "agent_id", "user_id")
MAX_FILTER = 128
DASHBOARD_ENTRIES = 20
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def activity_filter(req: falcon.asgi.Request) -> ActivityFilter:
    values: dict[str, str | None] = {}
    for name in FILTERS:
        raw = req.get_param(name) or None
        if raw is not None and len(raw) > MAX_FILTER:
            raise falcon.HTTPBadRequest(description=f"query parameter {name} is longer than {MAX_FILTER} characters")
        values[name] = raw
    times: list[tuple[str, str]] = []
    date_from, date_to = req.get_param("date_from"), req.get_param("date_to")
    if date_from:
        times.append(("gte", _moment("date_from", date_from)))
    if date_to and not _DATE.match(date_to):
        times.append(("lte", _moment("date_to", date_to)))
    elif date_to:
        # A date alone means the whole of that day (UTC): up to the next day's start.
        day = _day("date_to", date_to)
        if day < date.max:
            times.append(("lt", _stamp(day + timedelta(days=1))))
    return ActivityFilter(**values, times=tuple(times))


def _moment(name: str, raw: str) -> str:
    """A date (its start, UTC) or an RFC 3339 timestamp, as the fixed-width UTC string."""
    return _stamp(_day(name, raw)) if _DATE.match(raw) else normalize_timestamp(raw)


def _day(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise falcon.HTTPBadRequest(description=f"query parameter {name} is not a usable date") from None


def _stamp(day: date) -> str:
    stamp = iso(datetime(day.year, day.month, day.day, tzinfo=UTC))
    assert stamp is not None
    return stamp


class ActivityResource:
    """Routes: ``/v1/activity`` and, by suffix ``dashboard``, ``/v1/dashboard/activity``.
    A caller reads its workspace's entries (an organization admin also the organization's
    own: users and invites); never another workspace's."""

    def __init__(self, activity: ActivityReadModels) -> None:
        self._activity = activity

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        who = principal(req)
        query = ListQuery(
            limit=limit_param(req),
            page=req.get_param("page") or None,
            created_at=time_bounds(req),
            descending=choice_param(req, "order", ("asc", "desc"), "desc") == "desc",
        )
        page = await run(self._activity.activity, readable_tenants(who), query, activity_filter(req))
        resp.media = page.envelope()

    async def on_get_dashboard(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        query = ListQuery(limit=DASHBOARD_ENTRIES, page=req.get_param("page") or None)
        page = await run(self._activity.activity, readable_tenants(principal(req)), query, ActivityFilter())
        resp.media = page.envelope()


def add_activity_routes(app: falcon.asgi.App, activity: ActivityReadModels) -> None:
    resource = ActivityResource(activity)
    app.add_route("/v1/activity", resource)
    app.add_route("/v1/dashboard/activity", resource, suffix="dashboard")
