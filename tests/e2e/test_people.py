"""People on a real server (SQLite and PostgreSQL): the organization's users, invites and
workspace members through the anthropic SDK (``client.beta.organization``), and logging in
with httpx — JSON and form logins, login tokens beside API keys, sign-out, password change,
throttling, the second factor — and that no password, TOTP secret or login token is kept
anywhere or shown again."""

from __future__ import annotations

import logging
import time
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types.organization import AlreadyMemberError, InviteAlreadyExistsError

from application.totp import code_at
from domain.people import MAX_FAILED_LOGINS
from tests.e2e.test_model_cards import _stored_bytes
from tests.support.server import RunningServer

PASSWORD = "correct horse battery 1"
NEW_PASSWORD = "correct horse battery 2"


def as_person(server: RunningServer, token: str, workspace: str | None = None) -> anthropic.Anthropic:
    headers = {"anthropic-workspace-id": workspace} if workspace else None
    return anthropic.Anthropic(
        base_url=server.base_url, api_key=None, auth_token=token, max_retries=0, timeout=20, default_headers=headers
    )


def login(http: httpx.Client, email: str, password: str = PASSWORD, **extra: Any) -> httpx.Response:
    return http.post("/v1/auth/login", json={"email": email, "password": password, **extra}, headers={"x-api-key": ""})


def invited(client: anthropic.Anthropic, http: httpx.Client, email: str, role: str = "user") -> str:
    """An invite accepted: the new user's id."""
    invite = client.beta.organization.invites.create(email=email, role=role)  # type: ignore[arg-type]
    token = invite.model_extra["token"] if invite.model_extra else None
    assert token and token.startswith("agentry-invite-")
    accepted = http.post("/v1/auth/invites/accept", json={"token": token, "password": PASSWORD, "name": email[:3]})
    assert accepted.status_code == 200, accepted.text
    return str(accepted.json()["id"])


def known_workspace(server: RunningServer, workspace_id: str) -> None:
    server.platform.services.workspaces.create_named(workspace_id, workspace_id)


def test_an_admin_manages_users_invites_and_members_through_the_sdk(
    server: RunningServer, client: anthropic.Anthropic, http: httpx.Client
) -> None:
    organization = client.beta.organization
    assert organization.retrieve().type == "organization"

    invite = organization.invites.create(email="Ann@Example.com", role="developer")
    assert (invite.email, invite.role, invite.status, invite.type) == ("ann@example.com", "developer", "pending", "invite")
    assert organization.invites.retrieve(invite.id).model_extra == {}  # the token is shown at creation only
    with pytest.raises(InviteAlreadyExistsError) as duplicate:  # one pending invite per email
        organization.invites.create(email="ann@EXAMPLE.com", role="user")
    assert duplicate.value.status_code == 400 and invite.id in duplicate.value.message
    assert [i.id for i in organization.invites.list(statuses=["pending"]).data] == [invite.id]
    token = invite.model_extra["token"] if invite.model_extra else ""
    assert http.post("/v1/auth/invites/accept", json={"token": token + "x", "password": PASSWORD}).status_code == 401
    assert http.post("/v1/auth/invites/accept", json={"token": invite.id, "password": PASSWORD}).status_code == 401
    ann = http.post("/v1/auth/invites/accept", json={"token": token, "password": PASSWORD, "name": "Ann"}).json()
    assert organization.invites.retrieve(invite.id).status == "accepted"
    assert organization.invites.list(statuses=["pending"]).data == []
    with pytest.raises(AlreadyMemberError) as member:
        organization.invites.create(email="ann@example.com", role="user")
    assert member.value.error_code == "already_member" and ann["id"] in member.value.message
    other = organization.invites.create(email="bob@example.com", role="user")
    assert organization.invites.delete(other.id).type == "invite_deleted"
    with pytest.raises(anthropic.NotFoundError):
        organization.invites.retrieve(other.id)

    user = organization.users.retrieve(ann["id"])
    assert (user.email, user.name, user.role, user.type) == ("ann@example.com", "Ann", "developer", "user")
    assert [u.id for u in organization.users.list(email="ANN@example.com").data] == [ann["id"]]
    assert organization.users.update(ann["id"], role="billing").role == "billing"
    assert [u.id for u in organization.users.list(roles=["billing"]).data] == [ann["id"]]
    assert http.post(f"/v1/organizations/users/{ann['id']}", json={"role": "admin"}).status_code == 400

    members = organization.workspaces.members
    assert [(m.user_id, m.workspace_role) for m in members.list("default").data] == [(ann["id"], "workspace_developer")]
    assert members.update(ann["id"], workspace_id="default", workspace_role="workspace_admin").workspace_role == "workspace_admin"
    assert members.retrieve(ann["id"], workspace_id="default").workspace_role == "workspace_admin"
    with pytest.raises(anthropic.NotFoundError):
        members.list("wrk_team")
    known_workspace(server, "wrk_team")
    added = members.add("wrk_team", user_id=ann["id"], workspace_role="workspace_user")
    assert (added.workspace_id, added.workspace_role) == ("wrk_team", "workspace_user")
    assert members.remove(ann["id"], workspace_id="wrk_team").type == "workspace_member_deleted"
    with pytest.raises(anthropic.NotFoundError):
        members.retrieve(ann["id"], workspace_id="wrk_team")

    # The person works with a login token wherever an API key works.
    session = login(http, "ann@example.com").json()
    assert session["token_type"] == "bearer" and session["access_token"].startswith("eyJ")
    person = as_person(server, session["access_token"])
    agent = person.beta.agents.create(name="ann's", model="claude-sonnet-4-6")
    assert agent.id in [a.id for a in client.beta.agents.list().data]  # the same workspace: default
    assert person.beta.organization.users.retrieve(ann["id"]).email == "ann@example.com"
    with pytest.raises(anthropic.PermissionDeniedError):
        person.beta.organization.users.update(ann["id"], role="user")
    with pytest.raises(anthropic.PermissionDeniedError):
        person.beta.organization.invites.create(email="eve@example.com", role="user")
    with pytest.raises(anthropic.NotFoundError):  # not hers: as if it did not exist
        as_person(server, session["access_token"], "wrk_team").beta.agents.list()

    # Sign-out and removal end every token at once; a removed person cannot log in.
    assert organization.users.sign_out(ann["id"]).id == ann["id"]
    with pytest.raises(anthropic.AuthenticationError):
        person.beta.agents.list()
    again = as_person(server, login(http, "ann@example.com").json()["access_token"])
    assert again.beta.agents.retrieve(agent.id).id == agent.id
    assert organization.users.remove(ann["id"]).type == "user_deleted"
    with pytest.raises(anthropic.AuthenticationError):
        again.beta.agents.list()
    assert login(http, "ann@example.com").status_code == 401
    assert ann["id"] not in [u.id for u in organization.users.list().data]

    # Every step is an event in the log.
    kinds = {n.topic.rsplit(":", 1)[1] for n in server.platform.store.notifications(0, 100_000) if "domain.people" in n.topic}
    assert {"User.Created", "User.RoleChanged", "User.WorkspaceRoleSet", "User.LoggedIn", "User.SignedOut", "User.Removed",
            "Invite.Created", "Invite.Accepted", "Invite.Deleted"} <= kinds  # fmt: skip


def test_the_organization_keeps_its_last_admin_person(
    server: RunningServer, client: anthropic.Anthropic, http: httpx.Client
) -> None:
    users = client.beta.organization.users
    root = server.platform.services.people.create_user("root@example.com", PASSWORD, role="admin").view["id"]
    for refused in (
        http.post(f"/v1/organizations/users/{root}", json={"role": "developer"}),
        http.delete(f"/v1/organizations/users/{root}"),
    ):
        assert refused.status_code == 409 and refused.headers["x-should-retry"] == "false", refused.text
        assert refused.json()["error"]["type"] == "conflict_error" and "last admin" in refused.json()["error"]["message"]
    assert users.retrieve(root).role == "admin"
    assert users.sign_out(root).id == root  # signing out keeps the role
    # With a second admin, either may be demoted — not both.
    made = server.platform.services.people.create_user("sue@example.com", PASSWORD, role="admin")
    assert server.platform.services.wait_for_projections(made.position, 10)  # made behind the API's back
    second = made.view["id"]
    assert users.update(root, role="developer").role == "developer"
    with pytest.raises(anthropic.ConflictError):
        users.remove(second)
    assert users.remove(root).type == "user_deleted"


def test_logins_by_form_throttling_password_change_and_a_second_factor(
    server: RunningServer, client: anthropic.Anthropic, http: httpx.Client
) -> None:
    anonymous = httpx.Client(base_url=server.base_url, timeout=20)
    invited(client, http, "cy@example.com")
    form = anonymous.post("/v1/auth/login", data={"username": "cy@example.com", "password": PASSWORD})
    assert form.status_code == 200, form.text
    token = form.json()["access_token"]
    me = anonymous.get("/v1/auth/me", headers={"authorization": f"Bearer {token}"})
    assert me.json()["email"] == "cy@example.com" and me.json()["workspaces"] == {"default": "workspace_developer"}
    bearer = {"authorization": f"Bearer {token}"}
    assert anonymous.post("/v1/auth/me", json={"name": "Cy"}, headers=bearer).json()["name"] == "Cy"
    assert http.get("/v1/auth/me").status_code == 403  # an API key is no person

    # Registration is closed by default.
    assert anonymous.post("/v1/auth/register", json={"email": "z@example.com", "password": PASSWORD}).status_code == 403

    # A second factor: started, confirmed, then needed at every login.
    setup = anonymous.post("/v1/auth/totp", headers=bearer).json()
    secret = setup["secret"]
    assert setup["otpauth_uri"].startswith("otpauth://totp/")
    assert anonymous.post("/v1/auth/totp/confirm", json={"code": "abcdef"}, headers=bearer).status_code == 400
    confirmed = anonymous.post("/v1/auth/totp/confirm", json={"code": code_at(secret, time.time())}, headers=bearer)
    assert confirmed.json() == {"totp_enabled": True}
    assert anonymous.get("/v1/auth/me", headers=bearer).status_code == 401  # tokens before it are ended
    assert "totp_code" in login(anonymous, "cy@example.com").json()["error"]["message"]
    token = login(anonymous, "cy@example.com", totp_code=code_at(secret, time.time())).json()["access_token"]
    bearer = {"authorization": f"Bearer {token}"}

    # A password change ends every token; the old password stops working.
    changed = anonymous.post(
        "/v1/auth/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=bearer
    )
    assert changed.status_code == 200, changed.text
    assert anonymous.get("/v1/auth/me", headers=bearer).status_code == 401

    # Failed logins throttle the account, the right password and code too, with retry-after.
    for _ in range(MAX_FAILED_LOGINS):
        assert login(anonymous, "cy@example.com", "wrong password!").status_code == 401
    throttled = login(anonymous, "cy@example.com", NEW_PASSWORD, totp_code=code_at(secret, time.time()))
    assert throttled.status_code == 429 and throttled.json()["error"]["type"] == "rate_limit_error"
    assert 0 < int(throttled.headers["retry-after"]) <= 15 * 60
    kinds = [n.topic.rsplit(":", 1)[1] for n in server.platform.store.notifications(0, 100_000) if "domain.people" in n.topic]
    assert kinds.count("User.LoginFailed") == MAX_FAILED_LOGINS and "User.LoginThrottled" in kinds
    assert {"User.TotpStarted", "User.TotpEnabled", "User.PasswordChanged"} <= set(kinds)
    anonymous.close()


def test_a_totp_code_signs_in_once(server: RunningServer, client: anthropic.Anthropic, http: httpx.Client) -> None:
    invited(client, http, "eli@example.com")
    anonymous = httpx.Client(base_url=server.base_url, timeout=20)
    bearer = {"authorization": f"Bearer {login(anonymous, 'eli@example.com').json()['access_token']}"}
    secret = anonymous.post("/v1/auth/totp", headers=bearer).json()["secret"]
    confirmed = anonymous.post("/v1/auth/totp/confirm", json={"code": code_at(secret, time.time())}, headers=bearer)
    assert confirmed.status_code == 200, confirmed.text
    code = code_at(secret, time.time())
    assert login(anonymous, "eli@example.com", totp_code=code).status_code == 200
    replayed = login(anonymous, "eli@example.com", totp_code=code)
    now = time.time()
    valid = {code_at(secret, now + drift) for drift in (-30, 0, 30)}
    wrong = login(anonymous, "eli@example.com", totp_code=next(c for c in ("000000", "111111", "222222") if c not in valid))
    assert replayed.status_code == wrong.status_code == 401
    assert replayed.json()["error"] == wrong.json()["error"], "a replayed code is answered as a wrong one"
    assert login(anonymous, "eli@example.com", totp_code=code_at(secret, time.time() + 30)).status_code == 200
    anonymous.close()
    kinds = [n.topic.rsplit(":", 1)[1] for n in server.platform.store.notifications(0, 100_000) if "domain.people" in n.topic]
    assert kinds.count("User.TotpCodeUsed") == 2 and kinds.count("User.LoginFailed") == 2


def test_no_password_totp_secret_or_login_token_is_kept_or_shown_again(
    server: RunningServer,
    client: anthropic.Anthropic,
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    user_id = invited(client, http, "dee@example.com")
    anonymous = httpx.Client(base_url=server.base_url, timeout=20)
    issued = login(anonymous, "dee@example.com")
    token = issued.json()["access_token"]
    bearer = {"authorization": f"Bearer {token}"}
    secret = anonymous.post("/v1/auth/totp", headers=bearer).json()["secret"]
    anonymous.post("/v1/auth/totp/confirm", json={"code": code_at(secret, time.time())}, headers=bearer)
    second = login(anonymous, "dee@example.com", totp_code=code_at(secret, time.time())).json()["access_token"]
    anonymous.post(
        "/v1/auth/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"authorization": f"Bearer {second}"},
    )  # fmt: skip
    login(anonymous, "dee@example.com", "a wrong password")
    # The next step's code (within the drift): the current one signed in already.
    third = login(anonymous, "dee@example.com", NEW_PASSWORD, totp_code=code_at(secret, time.time() + 30)).json()["access_token"]
    client.beta.organization.users.update(user_id, role="developer")

    later = [
        http.get("/v1/organizations/users").text,
        http.get(f"/v1/organizations/users/{user_id}").text,
        http.get("/v1/organizations/invites").text,
        http.get("/v1/organizations/workspaces/default/members").text,
        anonymous.get("/v1/auth/me", headers={"authorization": f"Bearer {third}"}).text,
        http.get("/openapi.json").text,
    ]
    anonymous.close()
    assert user_id in later[0] and "dee@example.com" in later[4]
    stored = _stored_bytes(server)
    logs = "\n".join(record.getMessage() for record in caplog.records) + "\n".join(capfd.readouterr())
    for name, value in {
        "password": PASSWORD, "new password": NEW_PASSWORD, "totp secret": secret,
        "first token": token, "second token": second, "third token": third,
        "a token's signature": token.rsplit(".", 1)[1],
    }.items():  # fmt: skip
        assert all(value not in text for text in later), f"the {name} in a later response"
        assert value.encode() not in stored, f"the {name} in the stores"
        assert value not in logs, f"the {name} in the logs"
