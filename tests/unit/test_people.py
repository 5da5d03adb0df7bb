"""People without HTTP: RFC 6238 codes, login tokens, and the use cases against the real
event store adapter in memory (throttling, token generations, invites, roles)."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from application.errors import Forbidden, Invalid, NotFound, Unauthorized
from application.login_tokens import TOKEN_SECONDS, LoginTokens
from application.people import ORGANIZATION_ID, InviteRefused, LastAdmin, PeopleService, Throttled
from application.tenancy import Principal, WorkspaceNotFound
from application.totp import code_at, hotp, verify
from domain.people import MAX_FAILED_LOGINS, AlreadyMember, Invite, InviteClosed, User, user_id_for
from infra.event_store import AgentryEvents, EventsourcingEventStore
from infra.passwords import Argon2Passwords

# RFC 6238 appendix B: the SHA-1 seed and its 8-digit codes at these times.
RFC6238_SEED = b"12345678901234567890"
RFC6238_SHA1 = {
    59: "94287082",
    1111111109: "07081804",
    1111111111: "14050471",
    1234567890: "89005924",
    2000000000: "69279037",
    20000000000: "65353130",
}


@pytest.mark.parametrize(("unix_time", "expected"), sorted(RFC6238_SHA1.items()))
def test_totp_matches_the_rfc_6238_vectors(unix_time: int, expected: str) -> None:
    assert hotp(RFC6238_SEED, unix_time // 30, digits=8) == expected


def test_a_six_digit_code_verifies_within_one_step_and_not_beyond() -> None:
    secret = base64.b32encode(RFC6238_SEED).decode()
    assert code_at(secret, 59) == RFC6238_SHA1[59][-6:]
    assert verify(secret, code_at(secret, 1000), 1000 + 30)
    assert not verify(secret, code_at(secret, 1000), 1000 + 90)
    assert not verify(secret, "12345", 1000)


def test_a_login_token_verifies_until_it_expires_and_not_under_another_secret() -> None:
    tokens = LoginTokens("s" * 32)
    token = tokens.issue("user_abc", 3, now=1000)
    assert token.startswith("eyJ")
    claims = tokens.verify(token, now=1000 + TOKEN_SECONDS - 1)
    assert (claims.user_id, claims.generation) == ("user_abc", 3)
    with pytest.raises(Unauthorized):
        tokens.verify(token, now=1000 + TOKEN_SECONDS)
    with pytest.raises(Unauthorized):
        LoginTokens("t" * 32).verify(token, now=1000)
    header, claims_part, signature = token.split(".")
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    with pytest.raises(Unauthorized):
        tokens.verify(f"{unsigned}.{claims_part}.", now=1000)


class FakeCipher:
    def __init__(self) -> None:
        self.shredded: set[str] = set()

    def seal(self, owner: str, plaintext: str) -> str:
        return "sealed:" + base64.b64encode(plaintext.encode()[::-1]).decode()

    def open(self, owner: str, sealed: str) -> str:
        assert owner not in self.shredded
        return base64.b64decode(sealed.removeprefix("sealed:")).decode()[::-1]

    def shred(self, owner: str) -> None:
        self.shredded.add(owner)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()  # events are stamped by the wall clock

    def __call__(self) -> float:
        return self.now


ADMIN_KEY = Principal("default", "apikey_admin", organization_role="admin")


class Directory:
    """The read model's candidates, read off the log: every user and every invite ever
    created (a superset, as a lagging read model's may be; the service checks each on its
    stream)."""

    def __init__(self, store: EventsourcingEventStore) -> None:
        self._store = store

    def _events(self) -> list[Any]:
        return [self._store.decode(n) for n in self._store.notifications(0, 100_000)]

    def admin_ids(self) -> list[str]:
        return [event.user_id for event in self._events() if isinstance(event, User.Created)]

    def pending_invite_ids(self, email: str) -> list[str]:
        return [event.invite_id for event in self._events() if isinstance(event, Invite.Created)]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def people(store: EventsourcingEventStore, clock: Clock) -> PeopleService:
    return PeopleService(
        store, Argon2Passwords(), FakeCipher(), LoginTokens("x" * 32), lambda workspace: workspace in ("default", "wrk_b"),
        Directory(store), allow_registration=True, clock=clock,
    )  # fmt: skip


def test_one_user_per_email_whatever_its_case(people: PeopleService) -> None:
    people.create_user("Ann@Example.com", "password-1")
    with pytest.raises(AlreadyMember):
        people.register("ann@example.COM ", "password-2")


def test_a_login_token_stops_working_after_sign_out_and_after_a_password_change(people: PeopleService) -> None:
    ann = people.create_user("ann@example.com", "password-1").view
    token = people.login("ann@example.com", "password-1", None, "test")["access_token"]
    who = people.authenticate(token, None)
    assert (who.tenant_id, who.user_id, who.role, who.workspaces) == ("default", ann["id"], "member", frozenset({"default"}))
    people.sign_out_user(ADMIN_KEY, ann["id"])
    with pytest.raises(Unauthorized):
        people.authenticate(token, None)
    token = people.login("ann@example.com", "password-1", None, "test")["access_token"]
    people.change_password(people.authenticate(token, None), "password-1", "password-2")
    with pytest.raises(Unauthorized):
        people.authenticate(token, None)
    with pytest.raises(Unauthorized):
        people.login("ann@example.com", "password-1", None, "test")


def test_failed_logins_throttle_the_account_even_for_the_right_password_until_the_window_passes(
    people: PeopleService, store: EventsourcingEventStore, clock: Clock
) -> None:
    people.create_user("bob@example.com", "password-1")
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(Unauthorized):
            people.login("bob@example.com", "wrong-password", None, "test")
    with pytest.raises(Throttled) as throttled:
        people.login("bob@example.com", "password-1", None, "test")
    assert 0 < throttled.value.retry_after <= 15 * 60 + 30  # the test clock stands still
    user = store.load(User.create_id(user_id_for("bob@example.com")))
    assert isinstance(user, User) and len(user.failed_logins) == MAX_FAILED_LOGINS
    clock.now += 15 * 60 + 60
    assert people.login("bob@example.com", "password-1", None, "test")["token_type"] == "bearer"


def test_unknown_emails_are_throttled_too(people: PeopleService) -> None:
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(Unauthorized):
            people.login("nobody@example.com", "whatever-1", None, "test")
    with pytest.raises(Throttled):
        people.login("nobody@example.com", "whatever-1", None, "test")


def test_a_second_factor_is_needed_once_confirmed(people: PeopleService, clock: Clock) -> None:
    people.create_user("cy@example.com", "password-1")
    who = people.authenticate(people.login("cy@example.com", "password-1", None, "t")["access_token"], None)
    secret = people.start_totp(who)["secret"]
    with pytest.raises(Invalid):
        people.confirm_totp(who, "000000" if code_at(secret, clock.now) != "000000" else "111111")
    people.confirm_totp(who, code_at(secret, clock.now))
    with pytest.raises(Unauthorized):
        people.authenticate(people.login("cy@example.com", "password-1", None, "t")["access_token"], None)
    with pytest.raises(Unauthorized, match="totp_code"):
        people.login("cy@example.com", "password-1", None, "t")
    token = people.login("cy@example.com", "password-1", code_at(secret, clock.now), "t")["access_token"]
    assert people.authenticate(token, None).user_id == user_id_for("cy@example.com")


def test_a_totp_code_signs_in_once_and_no_earlier_code_after_it(
    people: PeopleService, store: EventsourcingEventStore, clock: Clock
) -> None:
    people.create_user("cy@example.com", "password-1")
    who = people.authenticate(people.login("cy@example.com", "password-1", None, "t")["access_token"], None)
    secret = people.start_totp(who)["secret"]
    people.confirm_totp(who, code_at(secret, clock.now))
    wrong = next(code for code in ("000000", "111111", "222222") if not verify(secret, code, clock.now))
    with pytest.raises(Unauthorized) as wrong_code:
        people.login("cy@example.com", "password-1", wrong, "t")
    code = code_at(secret, clock.now)
    assert people.login("cy@example.com", "password-1", code, "t")["token_type"] == "bearer"
    with pytest.raises(Unauthorized) as replayed:
        people.login("cy@example.com", "password-1", code, "t")
    assert str(replayed.value) == str(wrong_code.value)  # the same answer as a wrong code
    with pytest.raises(Unauthorized):  # a code of an earlier step, though within the drift
        people.login("cy@example.com", "password-1", code_at(secret, clock.now - 30), "t")
    later = code_at(secret, clock.now + 30)
    assert people.login("cy@example.com", "password-1", later, "t")["token_type"] == "bearer"
    # The step is on the user's stream: another process (service) refuses the code too.
    other = PeopleService(
        store, Argon2Passwords(), FakeCipher(), LoginTokens("x" * 32), lambda workspace: True, Directory(store),
        clock=clock,
    )  # fmt: skip
    with pytest.raises(Unauthorized):
        other.login("cy@example.com", "password-1", later, "t")
    user = store.load(User.create_id(user_id_for("cy@example.com")))
    assert isinstance(user, User) and user.totp_step_used == int(clock.now + 30) // 30
    assert len(user.failed_logins) == 1  # the refused replay counts as a failed login


def test_a_user_with_many_logins_loads_from_a_snapshot(store: EventsourcingEventStore) -> None:
    interval = AgentryEvents.snapshotting_intervals.get(User, 100)
    user_id = user_id_for("many@example.com")
    user = User(
        user_id=user_id, tenant_id=ORGANIZATION_ID, email="many@example.com", name="m", role="user",
        password_hash="h", memberships={"default": "workspace_developer"},
    )  # fmt: skip
    store.save(user)
    for _ in range(interval + 5):
        user.logged_in("t", second_factor=False)  # what each login records
        store.save(user)
    assert store.app.snapshots is not None
    taken = [snapshot.originator_version for snapshot in store.app.snapshots.get(user.id)]
    assert taken == [interval], "a load replays at most the events after the last snapshot"
    replayed: Any = None
    for event in store.app.events.get(user.id):
        replayed = event.mutate(replayed)
    assert vars(store.load(user.id)) == vars(replayed)


def test_an_invite_is_accepted_with_its_token_only_once(people: PeopleService) -> None:
    invite = people.invite(ADMIN_KEY, "dee@example.com", "developer").view
    with pytest.raises(Unauthorized):
        people.accept_invite(invite["token"] + "x", "password-1")
    user = people.accept_invite(invite["token"], "password-1", "Dee").view
    assert (user["email"], user["role"], user["name"]) == ("dee@example.com", "developer", "Dee")
    assert people.retrieve_invite(ADMIN_KEY, invite["id"])["status"] == "accepted"
    with pytest.raises(InviteClosed):
        people.accept_invite(invite["token"], "password-1")
    with pytest.raises(InviteRefused) as member:
        people.invite(ADMIN_KEY, "DEE@example.com", "user")
    assert member.value.error_code == "already_member" and user["id"] in str(member.value)


def test_one_pending_invite_per_email(people: PeopleService, clock: Clock) -> None:
    first = people.invite(ADMIN_KEY, "eve@example.com", "developer").view
    with pytest.raises(InviteRefused) as pending:
        people.invite(ADMIN_KEY, "EVE@example.com ", "user")
    assert pending.value.error_code == "invite_already_exists" and first["id"] in str(pending.value)
    other = people.invite(ADMIN_KEY, "fay@example.com", "user").view  # another email is no duplicate
    people.delete_invite(ADMIN_KEY, first["id"])
    second = people.invite(ADMIN_KEY, "eve@example.com", "user").view  # the deleted one no longer counts
    clock.now += 22 * 24 * 3600
    assert people.retrieve_invite(ADMIN_KEY, second["id"])["status"] == "expired"
    assert people.invite(ADMIN_KEY, "eve@example.com", "user").view["status"] == "pending"  # nor an expired one
    assert other["status"] == "pending"


def test_members_need_an_admin_to_change_anything(people: PeopleService) -> None:
    ann = people.create_user("ann@example.com", "password-1").view
    who = people.authenticate(people.login("ann@example.com", "password-1", None, "t")["access_token"], None)
    with pytest.raises(Forbidden):
        people.update_user_role(who, ann["id"], "developer")
    with pytest.raises(Forbidden):
        people.invite(who, "x@example.com", "user")
    with pytest.raises(Forbidden):
        people.update_member(who, "default", ann["id"], "workspace_admin")
    with pytest.raises(WorkspaceNotFound):  # not hers: the same 404 as no such workspace
        people.authenticate(people.login("ann@example.com", "password-1", None, "t")["access_token"], "wrk_b")
    people.add_member(ADMIN_KEY, "wrk_b", ann["id"], "workspace_admin")
    in_b = people.authenticate(people.login("ann@example.com", "password-1", None, "t")["access_token"], "wrk_b")
    assert (in_b.tenant_id, in_b.role) == ("wrk_b", "admin")
    with pytest.raises(NotFound):
        people.retrieve_member(ADMIN_KEY, "wrk_nope", ann["id"])


def test_an_organization_admin_reaches_every_workspace(people: PeopleService) -> None:
    people.create_user("root@example.com", "password-1", role="admin")
    token = people.login("root@example.com", "password-1", None, "t")["access_token"]
    who = people.authenticate(token, "wrk_b")
    assert (who.tenant_id, who.role, who.organization_role, who.workspaces) == ("wrk_b", "admin", "admin", None)
    assert who.organization_admin and ORGANIZATION_ID == people.organization()["id"]


def test_the_last_admin_person_is_neither_demoted_nor_removed(people: PeopleService) -> None:
    root = people.create_user("root@example.com", "password-1", role="admin").view
    ann = people.create_user("ann@example.com", "password-1").view
    with pytest.raises(LastAdmin) as refused:
        people.update_user_role(ADMIN_KEY, root["id"], "developer")
    assert refused.value.retryable is False
    with pytest.raises(LastAdmin):
        people.remove_user(ADMIN_KEY, root["id"])
    assert people.retrieve_user(ADMIN_KEY, root["id"])["role"] == "admin"
    people.sign_out_user(ADMIN_KEY, root["id"])  # signing out keeps the role
    assert people.update_user_role(ADMIN_KEY, ann["id"], "billing").view["role"] == "billing"
    sue = people.create_user("sue@example.com", "password-1", role="admin").view
    assert people.update_user_role(ADMIN_KEY, root["id"], "developer").view["role"] == "developer"
    with pytest.raises(LastAdmin):  # root was an admin candidate; her stream says no more
        people.remove_user(ADMIN_KEY, sue["id"])
    people.remove_user(ADMIN_KEY, root["id"])


def test_registration_only_when_the_setting_opens_it(store: EventsourcingEventStore, clock: Clock) -> None:
    def service(open_: bool) -> PeopleService:
        return PeopleService(
            store, Argon2Passwords(), FakeCipher(), LoginTokens("x" * 32), lambda workspace: True,
            Directory(store), allow_registration=open_, clock=clock,
        )  # fmt: skip

    with pytest.raises(Forbidden):
        service(False).register("eve@example.com", "password-1")
    user = service(True).register("eve@example.com", "password-1", "Eve").view
    assert (user["email"], user["role"], user["name"]) == ("eve@example.com", "user", "Eve")
    with pytest.raises(Invalid):
        service(True).register("fay@example.com", "short")


def test_only_an_organization_admins_key_changes_people(people: PeopleService) -> None:
    ann = people.create_user("ann@example.com", "password-1").view
    member_key = Principal("default", "apikey_member", role="member")
    workspace_admin_key = Principal("default", "apikey_workspace_admin", role="admin")
    for key in (member_key, workspace_admin_key):
        with pytest.raises(Forbidden):
            people.remove_user(key, ann["id"])
        with pytest.raises(Forbidden):
            people.sign_out_user(key, ann["id"])
    assert people.retrieve_user(member_key, ann["id"])["email"] == "ann@example.com"


def test_emails_with_control_characters_and_deeply_nested_token_headers_are_refused() -> None:
    from pydantic import ValidationError

    from interfaces.http.people_schemas import InviteCreate, Register

    for email in ("a\x00b@x.io", "a@x\x1f.io", "a@x.io\x7f"):
        with pytest.raises(ValidationError):
            Register.model_validate({"email": email, "password": "password-1"})
        with pytest.raises(ValidationError):
            InviteCreate.model_validate({"email": email, "role": "user"})
    nested = base64.urlsafe_b64encode(b'{"a":' + b"[" * 100_000).decode().rstrip("=")
    with pytest.raises(Unauthorized):
        LoginTokens("s" * 32).verify(nested + ".e30.AAAA", now=1000)
