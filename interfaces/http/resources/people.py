"""People over HTTP: ``/v1/organizations/users``, ``/invites``, ``/workspaces/{id}/members`` and
``/me`` as ``client.beta.organization`` calls them, and ``/v1/auth/*`` (login, registration,
invite acceptance, the person's own account, password, second factor)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

import falcon
import falcon.asgi

from application.people import PeopleService
from interfaces.http.common import ReadYourWrites, int_param, list_params, parse, principal, read_json, run
from interfaces.http.limits import MAX_BODY_BYTES
from interfaces.http.people_schemas import (
    InviteAccept,
    InviteCreate,
    Login,
    MemberAdd,
    MemberUpdate,
    MeUpdate,
    PasswordChange,
    Register,
    TotpCode,
    UserUpdate,
)
from projections.people import IdQuery, PeopleReadModels

INVITE_STATUSES = ("accepted", "expired", "pending")


def id_query(req: falcon.asgi.Request) -> IdQuery:
    """``limit`` (1–1000, default 20), ``after_id``, ``before_id``: the organization lists' paging."""
    return IdQuery(
        limit=int_param(req, "limit", 20, 1, 1000) or 20,
        after_id=req.get_param("after_id") or None,
        before_id=req.get_param("before_id") or None,
    )


class OrganizationResource:
    """Route: ``/v1/organizations/me`` (the organization the caller belongs to)."""

    def __init__(self, people: PeopleService) -> None:
        self._people = people

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        principal(req)
        resp.media = self._people.organization()


class UsersResource:
    """Routes: ``/v1/organizations/users`` and, by suffix, ``/{user_id}`` (item), ``/sign_out``."""

    def __init__(self, people: PeopleService, lists: PeopleReadModels, written: ReadYourWrites) -> None:
        self._people = people
        self._lists = lists
        self._written = written

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        principal(req)
        roles = list_params(req, "roles")
        page = await run(self._lists.users, id_query(req), req.get_param("email") or None, roles or None)
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, user_id: str) -> None:
        resp.media = await run(self._people.retrieve_user, principal(req), user_id)

    async def on_post_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, user_id: str) -> None:
        body = await parse(req, UserUpdate)
        await self._written.answer(resp, await run(self._people.update_user_role, principal(req), user_id, body.role))

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, user_id: str) -> None:
        await self._written.answer(resp, await run(self._people.remove_user, principal(req), user_id))

    async def on_post_sign_out(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, user_id: str) -> None:
        await self._written.answer(resp, await run(self._people.sign_out_user, principal(req), user_id))


class InvitesResource:
    """Routes: ``/v1/organizations/invites`` and, by suffix, ``/{invite_id}`` (item)."""

    def __init__(self, people: PeopleService, lists: PeopleReadModels, written: ReadYourWrites) -> None:
        self._people = people
        self._lists = lists
        self._written = written

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, InviteCreate)
        await self._written.answer(resp, await run(self._people.invite, principal(req), body.email, body.role))

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        who = principal(req)
        await run(self._people.check_admin, who)
        statuses = list_params(req, "statuses")
        unknown = [status for status in statuses if status not in INVITE_STATUSES]
        if unknown:
            raise falcon.HTTPBadRequest(description=f"query parameter statuses must be among {', '.join(INVITE_STATUSES)}")
        page = await run(
            self._lists.invites, id_query(req), datetime.now(UTC), req.get_param("email") or None,
            list_params(req, "roles") or None, statuses or None,
        )  # fmt: skip
        resp.media = page.envelope()

    async def on_get_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, invite_id: str) -> None:
        resp.media = await run(self._people.retrieve_invite, principal(req), invite_id)

    async def on_delete_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, invite_id: str) -> None:
        await self._written.answer(resp, await run(self._people.delete_invite, principal(req), invite_id))


class WorkspaceMembersResource:
    """Routes: ``/v1/organizations/workspaces/{workspace_id}/members`` and ``/{user_id}`` (item)."""

    def __init__(self, people: PeopleService, lists: PeopleReadModels, written: ReadYourWrites) -> None:
        self._people = people
        self._lists = lists
        self._written = written

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, workspace_id: str) -> None:
        await run(self._people.check_workspace, principal(req), workspace_id)
        resp.media = (await run(self._lists.workspace_members, workspace_id, id_query(req))).envelope()

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, workspace_id: str) -> None:
        body = await parse(req, MemberAdd)
        written = await run(self._people.add_member, principal(req), workspace_id, body.user_id, body.workspace_role)
        await self._written.answer(resp, written)

    async def on_get_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, workspace_id: str, user_id: str
    ) -> None:
        resp.media = await run(self._people.retrieve_member, principal(req), workspace_id, user_id)

    async def on_post_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, workspace_id: str, user_id: str
    ) -> None:
        body = await parse(req, MemberUpdate)
        written = await run(self._people.update_member, principal(req), workspace_id, user_id, body.workspace_role)
        await self._written.answer(resp, written)

    async def on_delete_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, workspace_id: str, user_id: str
    ) -> None:
        await self._written.answer(resp, await run(self._people.remove_member, principal(req), workspace_id, user_id))


async def _login_body(req: falcon.asgi.Request) -> Login:
    """JSON, or a form (``username=…&password=…``, the OAuth2 password flow)."""
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return Login.model_validate(await read_json(req))
    raw = await req.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise falcon.HTTPContentTooLarge(description="request body is larger than 8 MiB")
    try:
        fields = parse_qs(raw.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise falcon.HTTPBadRequest(description="the form is not UTF-8") from None
    known = {"username", "email", "password", "totp_code"}
    return Login.model_validate({name: values[-1] for name, values in fields.items() if name in known})


class AuthResource:
    """Routes under ``/v1/auth``: ``/login``, ``/register``, ``/invites/accept`` (public),
    ``/me``, ``/password``, ``/totp``, ``/totp/confirm``, ``/totp/disable``."""

    def __init__(self, people: PeopleService, written: ReadYourWrites) -> None:
        self._people = people
        self._written = written

    async def on_post_login(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await _login_body(req)
        email = body.email or body.username
        if email is None:
            raise falcon.HTTPBadRequest(description="email (or username): the account's email is required")
        resp.media = await run(self._people.login, email, body.password, body.totp_code, req.remote_addr or "")
        resp.set_header("cache-control", "no-store")

    async def on_post_register(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, Register)
        await self._written.answer(resp, await run(self._people.register, body.email, body.password, body.name or ""))

    async def on_post_accept(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, InviteAccept)
        written = await run(self._people.accept_invite, body.token, body.password, body.name or "")
        await self._written.answer(resp, written)

    async def on_get_me(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = await run(self._people.me, principal(req))

    async def on_post_me(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, MeUpdate)
        resp.media = (await run(self._people.update_me, principal(req), body.name)).view

    async def on_post_password(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, PasswordChange)
        written = await run(self._people.change_password, principal(req), body.current_password, body.new_password)
        resp.media = written.view

    async def on_post_totp(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = await run(self._people.start_totp, principal(req))
        resp.set_header("cache-control", "no-store")

    async def on_post_totp_confirm(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, TotpCode)
        resp.media = await run(self._people.confirm_totp, principal(req), body.code)

    async def on_post_totp_disable(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await parse(req, TotpCode)
        resp.media = await run(self._people.disable_totp, principal(req), body.code)


def add_people_routes(app: falcon.asgi.App, people: PeopleService, lists: PeopleReadModels, written: ReadYourWrites) -> None:
    app.add_route("/v1/organizations/me", OrganizationResource(people))
    users = UsersResource(people, lists, written)
    app.add_route("/v1/organizations/users", users)
    app.add_route("/v1/organizations/users/{user_id}", users, suffix="item")
    app.add_route("/v1/organizations/users/{user_id}/sign_out", users, suffix="sign_out")
    invites = InvitesResource(people, lists, written)
    app.add_route("/v1/organizations/invites", invites)
    app.add_route("/v1/organizations/invites/{invite_id}", invites, suffix="item")
    members = WorkspaceMembersResource(people, lists, written)
    app.add_route("/v1/organizations/workspaces/{workspace_id}/members", members)
    app.add_route("/v1/organizations/workspaces/{workspace_id}/members/{user_id}", members, suffix="item")
    auth = AuthResource(people, written)
    for action in ("login", "register", "me", "password", "totp"):
        app.add_route(f"/v1/auth/{action}", auth, suffix=action)
    app.add_route("/v1/auth/invites/accept", auth, suffix="accept")
    app.add_route("/v1/auth/totp/confirm", auth, suffix="totp_confirm")
    app.add_route("/v1/auth/totp/disable", auth, suffix="totp_disable")


PUBLIC_AUTH_PATHS = frozenset({"/v1/auth/login", "/v1/auth/register", "/v1/auth/invites/accept"})
