"""Use cases of people: the organization's users, its invites, workspace membership, and
signing in (login, registration, invite acceptance, password, second factor).

Who may change what: an organization admin (a person whose organization role is ``admin``)
manages users, invites and every workspace's members; a workspace admin manages the members
of that workspace. An API key carries no person: it manages people only when it is an
organization admin's key (the bootstrap key, or one an admin made so).

Secrets: passwords are kept only as argon2id hashes, TOTP secrets only sealed under the
user's own data key, invite tokens only as SHA-256 (they carry 256 random bits, so a fast
hash suffices). A login token (``LoginTokens``) is never recorded: a ``LoggedIn`` event
records who and from where.

Throttling: ``MAX_FAILED_LOGINS`` failed logins of one account within the window refuse
further logins of it (429 with ``retry-after``) until the oldest failure ages out; the
failures are events on the user's stream, so every API process sees them. Failures for an
email that is no user are counted in this process only (nothing is recorded for them).

Second factor: a TOTP code signs in once. The login records the code's time step on the
user's stream (``TotpCodeUsed``, so every process sees it), and a code of that step or an
earlier one is then refused exactly as a wrong code is (401, and a failed login). Confirming
or disabling the factor, done from a session already signed in, records no step."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from application.commands import Written, load_as
from application.errors import ApplicationError, Conflict, Forbidden, Invalid, NotFound, Unauthorized
from application.ids import new_id
from application.login_tokens import LoginTokens
from application.ports import EventStore, SecretCipher
from application.retry import retry_on_race
from application.tenancy import ORGANIZATION_ADMIN, Principal, WorkspaceNotFound
from application.totp import matching_step, new_secret, provisioning_uri
from application.totp import verify as verify_code
from application.verified_keys import RecentlyVerified
from application.views import iso
from domain.ids import looks_like, stream_id
from domain.people import (
    ASSIGNABLE_ROLES,
    DEFAULT_WORKSPACE,
    FAILED_LOGIN_WINDOW,
    INVITE_DAYS,
    MAX_FAILED_LOGINS,
    NEW_MEMBER_ROLE,
    AlreadyMember,
    Invite,
    NotAMember,
    TotpCodeReused,
    User,
    normalize_email,
    user_id_for,
)

ORGANIZATION_ID = "org_default"
INVITE_TOKEN_PREFIX = "agentry-invite-"
MIN_PASSWORD = 8
View = dict[str, Any]


class Passwords(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...


WorkspaceExists = Callable[[str], bool]


class PeopleDirectory(Protocol):
    """What the event store cannot list, from the read model. Its answers are candidates:
    each is checked on its own stream before it counts, so a row that lags never decides."""

    def admin_ids(self) -> list[str]:
        """Users whose organization role is (or was lately) ``admin``."""
        ...

    def pending_invite_ids(self, email: str) -> list[str]:
        """Invites of this (normalized) email neither accepted nor deleted (expired ones too)."""
        ...


class InviteRefused(Invalid):
    """An invite the SDK types as a 400 naming its cause in ``error.details.error_code``:
    ``already_member`` (the message names the user), ``invite_already_exists`` (it names
    the invite)."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class LastAdmin(Conflict):
    """The change would leave the organization without an admin (409, not worth retrying)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class Throttled(ApplicationError):
    """Too many failed logins: the HTTP edge answers 429 with ``retry-after``."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def may_manage_people(who: Principal) -> bool:
    return who.organization_admin


def require_organization_admin(who: Principal) -> None:
    if not may_manage_people(who):
        raise Forbidden("this needs the organization's admin role")


def workspace_admin_role(workspace_role: str) -> str:
    """A workspace role as the Principal carries it."""
    return "admin" if workspace_role == "workspace_admin" else "member"


def user_view(user: User) -> View:
    return {
        "id": user.user_id,
        "type": "user",
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "added_at": iso(user.added_at),
    }


def member_view(user_id: str, workspace_id: str, workspace_role: str) -> View:
    return {"type": "workspace_member", "user_id": user_id, "workspace_id": workspace_id, "workspace_role": workspace_role}


def invite_view(invite: Invite, now: datetime) -> View:
    return {
        "id": invite.invite_id,
        "type": "invite",
        "email": invite.email,
        "role": invite.role,
        "status": invite.status(now),
        "invited_at": iso(invite.created_on),
        "expires_at": iso(invite.expires_at),
        "accepted_at": iso(invite.accepted_at),
        "rbac_group_ids": [],
    }


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"password: at least {MIN_PASSWORD} characters")


@dataclass(frozen=True)
class _Person:
    """What a login token verified as, kept a few seconds (``verified_keys``)."""

    user_id: str
    role: str
    memberships: dict[str, str]


class _UnknownEmailFailures:
    """Failed logins of emails that are no user, per process (nothing recorded for them)."""

    def __init__(self) -> None:
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def throttled(self, email: str, now: float) -> float | None:
        window = FAILED_LOGIN_WINDOW.total_seconds()
        with self._lock:
            recent = [moment for moment in self._failures.get(email, []) if now - moment < window]
            self._failures[email] = recent
        return recent[-MAX_FAILED_LOGINS] + window if len(recent) >= MAX_FAILED_LOGINS else None

    def failed(self, email: str, now: float) -> None:
        with self._lock:
            if len(self._failures) > 100_000:
                self._failures.clear()
            self._failures.setdefault(email, []).append(now)


class PeopleService:
    def __init__(
        self,
        store: EventStore,
        passwords: Passwords,
        cipher: SecretCipher,
        tokens: LoginTokens,
        workspace_exists: WorkspaceExists,
        directory: PeopleDirectory,
        allow_registration: bool = False,
        organization_name: str = "Agentry",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._cipher = cipher
        self._tokens = tokens
        self.workspace_exists = workspace_exists
        self._directory = directory
        self._allow_registration = allow_registration
        self._organization_name = organization_name
        self._clock = clock
        self._verified: RecentlyVerified[_Person] = RecentlyVerified()
        self._unknown = _UnknownEmailFailures()
        # An argon2 hash to verify against when the email is no user, so such a login takes
        # as long as a wrong password does (the timing does not tell which emails exist).
        self._decoy = passwords.hash(secrets.token_urlsafe(16))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- loading -------------------------------------------------------------------------------

    def _user(self, user_id: str, present: bool = True) -> User:
        missing = NotFound(f"user {user_id!r} not found")
        if not looks_like("user", user_id):
            raise missing
        user = load_as(self._store, stream_id(user_id), User)
        if user is None or (present and user.removed):
            raise missing
        return user

    def _user_by_email(self, email: str) -> User | None:
        user = load_as(self._store, stream_id(user_id_for(email)), User)
        return None if user is None or user.removed else user

    def _invite(self, invite_id: str) -> Invite:
        missing = NotFound(f"invite {invite_id!r} not found")
        if not looks_like("invite", invite_id):
            raise missing
        invite = load_as(self._store, stream_id(invite_id), Invite)
        if invite is None or invite.deleted:
            raise missing
        return invite

    def _change_user(self, user_id: str, command: Callable[[User], object]) -> Written:
        def attempt() -> Written:
            user = self._user(user_id)
            command(user)
            position = self._store.save(user)
            self._forget(user_id)
            return Written(user_view(user), position)

        return retry_on_race(attempt, key=user_id)

    def _forget(self, user_id: str) -> None:
        """Tokens of this user verified moments ago are checked afresh (this process at once,
        others within ``verified_keys.SECONDS``)."""
        self._verified.forget(lambda person: person.user_id == user_id)

    # -- the organization ----------------------------------------------------------------------

    def organization(self) -> View:
        return {"id": ORGANIZATION_ID, "type": "organization", "name": self._organization_name}

    # -- users ---------------------------------------------------------------------------------

    def create_user(
        self, email: str, password: str, name: str = "", role: str = "user", workspace_role: str = NEW_MEMBER_ROLE
    ) -> Written:
        """A new person of the organization (the CLI's first admin, and registration)."""
        _check_password(password)
        normalized = normalize_email(email)
        memberships = {DEFAULT_WORKSPACE: workspace_role}
        password_hash = self._passwords.hash(password)

        def attempt() -> Written:
            existing = load_as(self._store, stream_id(user_id_for(normalized)), User)
            if existing is None:
                user = User(
                    user_id=user_id_for(normalized), tenant_id=ORGANIZATION_ID, email=normalized,
                    name=name or normalized.split("@")[0], role=role, password_hash=password_hash,
                    memberships=memberships,
                )  # fmt: skip
            else:
                existing.rejoin(name or normalized.split("@")[0], role, password_hash, memberships)
                user = existing
            return Written(user_view(user), self._store.save(user))

        return retry_on_race(attempt, key=normalized)

    def retrieve_user(self, who: Principal, user_id: str) -> View:
        return user_view(self._user(user_id))

    def update_user_role(self, who: Principal, user_id: str, role: str) -> Written:
        require_organization_admin(who)
        if role not in ASSIGNABLE_ROLES:
            raise Invalid(f"role must be one of {', '.join(ASSIGNABLE_ROLES)} (admin cannot be assigned through the API)")
        if user_id == who.user_id:
            raise Invalid("you cannot change your own role")

        def demote(user: User) -> None:
            self._keep_an_admin(user, "demoted")
            user.change_role(role)

        return self._change_user(user_id, demote)

    def remove_user(self, who: Principal, user_id: str) -> Written:
        require_organization_admin(who)
        if user_id == who.user_id:
            raise Invalid("you cannot remove yourself from the organization")

        def remove(user: User) -> None:
            self._keep_an_admin(user, "removed")
            user.remove()

        written = self._change_user(user_id, remove)
        return Written({"id": user_id, "type": "user_deleted"}, written.position)

    def _keep_an_admin(self, user: User, change: str) -> None:
        """The organization's last admin person stays one: ``admin`` cannot be given through
        the API, so an organization that lost its last one could not get one back there.
        (Two admins demoting each other at the same moment can still both succeed: the
        check reads other users' streams, which the change does not lock.)"""
        if user.role != ORGANIZATION_ADMIN:
            return
        for candidate in self._directory.admin_ids():
            other = load_as(self._store, stream_id(candidate), User) if candidate != user.user_id else None
            if other is not None and not other.removed and other.role == ORGANIZATION_ADMIN:
                return
        raise LastAdmin(
            f"user {user.user_id} is the organization's last admin and cannot be {change}: "
            "make another person an admin first (agentry users create --admin)"
        )

    def sign_out_user(self, who: Principal, user_id: str) -> Written:
        require_organization_admin(who)
        if user_id == who.user_id:
            raise Invalid("you cannot sign yourself out this way: your own token would stop working mid-request")
        return self._change_user(user_id, lambda user: user.sign_out())

    # -- workspace members ---------------------------------------------------------------------

    def _check_workspace(self, who: Principal, workspace_id: str, change: bool) -> None:
        may_reach = who.workspaces is None or workspace_id in who.workspaces or may_manage_people(who)
        if not self.workspace_exists(workspace_id) or not may_reach:
            raise NotFound(f"workspace {workspace_id!r} not found")
        if change and not (may_manage_people(who) or (who.tenant_id == workspace_id and who.role == "admin")):
            raise Forbidden("changing a workspace's members needs the organization's or that workspace's admin role")

    def check_admin(self, who: Principal) -> None:
        require_organization_admin(who)

    def check_workspace(self, who: Principal, workspace_id: str) -> None:
        self._check_workspace(who, workspace_id, change=False)

    def retrieve_member(self, who: Principal, workspace_id: str, user_id: str) -> View:
        self._check_workspace(who, workspace_id, change=False)
        user = self._user(user_id)
        role = user.memberships.get(workspace_id)
        if role is None:
            raise NotFound(f"user {user_id!r} is not a member of workspace {workspace_id!r}")
        return member_view(user_id, workspace_id, role)

    def _change_member(
        self, who: Principal, workspace_id: str, user_id: str, command: Callable[[User], object]
    ) -> Written:
        self._check_workspace(who, workspace_id, change=True)
        try:
            written = self._change_user(user_id, command)
        except NotAMember as error:
            raise NotFound(str(error)) from None
        user = self._user(user_id)
        role = user.memberships.get(workspace_id)
        view = member_view(user_id, workspace_id, role) if role else {}
        return Written(view, written.position)

    def add_member(self, who: Principal, workspace_id: str, user_id: str, workspace_role: str) -> Written:
        return self._change_member(who, workspace_id, user_id, lambda user: user.add_to_workspace(workspace_id, workspace_role))

    def update_member(self, who: Principal, workspace_id: str, user_id: str, workspace_role: str) -> Written:
        return self._change_member(
            who, workspace_id, user_id, lambda user: user.change_workspace_role(workspace_id, workspace_role)
        )

    def remove_member(self, who: Principal, workspace_id: str, user_id: str) -> Written:
        written = self._change_member(who, workspace_id, user_id, lambda user: user.remove_from_workspace(workspace_id))
        return Written(
            {"type": "workspace_member_deleted", "user_id": user_id, "workspace_id": workspace_id}, written.position
        )

    # -- invites -------------------------------------------------------------------------------

    def invite(self, who: Principal, email: str, role: str) -> Written:
        """The view carries ``token`` once: the invited person accepts with it (the invite's
        id alone, which every admin can list, does not suffice).

        One pending invite per email, and none for a member: both are the SDK's 400s
        (``InviteRefused``). Pending invites are found through the read model and checked
        on their streams, so two invites of one email made at the same moment (or within
        the read model's lag, from another process) can still both be recorded."""
        require_organization_admin(who)
        if role not in ASSIGNABLE_ROLES:
            raise Invalid(f"role must be one of {', '.join(ASSIGNABLE_ROLES)} (admin cannot be assigned through the API)")
        normalized = normalize_email(email)
        member = self._user_by_email(normalized)
        if member is not None:
            raise InviteRefused(f"{normalized} is already a member of the organization: {member.user_id}", "already_member")
        now = self._now()
        for candidate in self._directory.pending_invite_ids(normalized):
            pending = load_as(self._store, stream_id(candidate), Invite)
            if pending is not None and pending.email == normalized and pending.status(now) == "pending":
                raise InviteRefused(
                    f"{normalized} has a pending invite already: {pending.invite_id} (delete it to invite again)",
                    "invite_already_exists",
                )
        invite_id = new_id("invite")
        token = f"{INVITE_TOKEN_PREFIX}{invite_id}.{secrets.token_urlsafe(32)}"
        invite = Invite(
            invite_id=invite_id, tenant_id=ORGANIZATION_ID, email=normalized, role=role,
            token_hash=_token_hash(token), expires_at=now + timedelta(days=INVITE_DAYS),
        )  # fmt: skip
        position = self._store.save(invite)
        return Written({**invite_view(invite, now), "token": token}, position)

    def retrieve_invite(self, who: Principal, invite_id: str) -> View:
        require_organization_admin(who)
        return invite_view(self._invite(invite_id), self._now())

    def delete_invite(self, who: Principal, invite_id: str) -> Written:
        require_organization_admin(who)

        def attempt() -> Written:
            invite = self._invite(invite_id)
            invite.delete(self._now())
            return Written({"id": invite_id, "type": "invite_deleted"}, self._store.save(invite))

        return retry_on_race(attempt, key=invite_id)

    def accept_invite(self, token: str, password: str, name: str = "") -> Written:
        _check_password(password)
        invalid = Unauthorized("invalid invite token")
        if not token.startswith(INVITE_TOKEN_PREFIX) or "." not in token:
            raise invalid
        invite_id = token[len(INVITE_TOKEN_PREFIX) :].split(".", 1)[0]
        try:
            invite = self._invite(invite_id)
        except NotFound:
            raise invalid from None
        if not hmac.compare_digest(invite.token_hash, _token_hash(token)):
            raise invalid
        password_hash = self._passwords.hash(password)

        def attempt() -> Written:
            current = self._invite(invite_id)
            email = current.email
            user_id = user_id_for(email)
            current.accept(self._now(), user_id)
            memberships = {DEFAULT_WORKSPACE: NEW_MEMBER_ROLE}
            existing = load_as(self._store, stream_id(user_id), User)
            display = name or email.split("@")[0]
            if existing is None:
                user = User(
                    user_id=user_id, tenant_id=ORGANIZATION_ID, email=email, name=display, role=current.role,
                    password_hash=password_hash, memberships=memberships,
                )  # fmt: skip
            else:
                existing.rejoin(display, current.role, password_hash, memberships)
                user = existing
            return Written(user_view(user), self._store.save(user, current))

        return retry_on_race(attempt, key=invite_id)

    # -- registration, login -------------------------------------------------------------------

    def register(self, email: str, password: str, name: str = "") -> Written:
        if not self._allow_registration:
            raise Forbidden("registration is closed: ask an admin for an invite (AGENTRY_REGISTRATION=open opens it)")
        if self._user_by_email(email) is not None:
            raise AlreadyMember(f"{normalize_email(email)} is already registered")
        return self.create_user(email, password, name)

    def login(self, email: str, password: str, totp_code: str | None, client: str) -> View:
        normalized = normalize_email(email)
        now = self._clock()
        user = self._user_by_email(normalized)
        if user is None:
            until = self._unknown.throttled(normalized, now)
            if until is not None:
                raise Throttled("too many failed logins: try again later", max(1, int(until - now) + 1))
            self._passwords.verify(self._decoy, password)
            self._unknown.failed(normalized, now)
            raise Unauthorized("invalid email or password")
        throttled_until = user.throttled(self._now())
        if throttled_until is not None:
            raise Throttled(
                "too many failed logins: try again later", max(1, int(throttled_until.timestamp() - now) + 1)
            )
        reason = None
        step = None
        if not self._passwords.verify(user.password_hash, password):
            reason = "password"
        elif user.totp_enabled and not totp_code:
            raise Unauthorized("this account has a second factor: send totp_code")
        elif user.totp_enabled:
            step = matching_step(self._totp_secret(user), totp_code or "", now)
            if step is None:
                reason = "totp_code"
            elif not user.totp_step_fresh(step):
                reason = "totp_code_reused"  # answered as a wrong code
        if reason is not None:
            self._record_failure(user.user_id, reason, client)
            raise Unauthorized("invalid email or password" if reason == "password" else "invalid totp_code")

        def record() -> User:
            fresh = self._user(user.user_id)
            if step is not None:
                fresh.use_totp_step(step)  # a racing login with the same code lost
            fresh.logged_in(client, second_factor=fresh.totp_enabled)
            self._store.save(fresh)
            return fresh

        try:
            fresh = retry_on_race(record, key=user.user_id)
        except TotpCodeReused:
            self._record_failure(user.user_id, "totp_code_reused", client)
            raise Unauthorized("invalid totp_code") from None
        token = self._tokens.issue(fresh.user_id, fresh.token_generation, int(now))
        return {"access_token": token, "token_type": "bearer", "user": user_view(fresh)}

    def _record_failure(self, user_id: str, reason: str, client: str) -> None:
        def attempt() -> None:
            user = self._user(user_id)
            user.login_failed(reason, client)
            until = user.throttled(self._now())
            if until is not None:
                user.note_throttled(until, client)
            self._store.save(user)

        retry_on_race(attempt, key=user_id)

    # -- login tokens → principals -------------------------------------------------------------

    def authenticate(self, token: str, workspace: str | None) -> Principal:
        """The principal of a login token, acting in ``workspace`` (the
        ``anthropic-workspace-id`` header) or, without one, in ``default`` when the person
        may reach it, else in the first of their workspaces (by id)."""
        claims = self._tokens.verify(token, int(self._clock()))
        key = _token_hash(token)
        person = self._verified.get(key)
        if person is None:
            user = load_as(self._store, stream_id(claims.user_id), User)
            if user is None or user.removed or user.token_generation != claims.generation:
                raise Unauthorized("invalid or expired login token: log in again")
            person = _Person(user.user_id, user.role, dict(user.memberships))
            self._verified.keep(key, person)
        return self._principal(person, workspace)

    def _principal(self, user: _Person, workspace: str | None) -> Principal:
        organization_admin = user.role == ORGANIZATION_ADMIN
        reachable = None if organization_admin else frozenset(user.memberships)
        if workspace is None:
            if reachable is None or DEFAULT_WORKSPACE in reachable:
                workspace = DEFAULT_WORKSPACE
            elif live := [found for found in sorted(reachable) if self.workspace_exists(found)]:
                workspace = live[0]
            else:
                raise Forbidden("you are a member of no workspace: ask an admin to add you to one")
        elif reachable is not None and workspace not in reachable:
            raise WorkspaceNotFound(workspace)  # the same 404 as a workspace that does not exist
        if not self.workspace_exists(workspace):
            raise WorkspaceNotFound(workspace)  # archived, or never was
        if organization_admin:
            role = "admin"
        else:
            role = workspace_admin_role(user.memberships[workspace])
        return Principal(
            tenant_id=workspace,
            key_id=f"user:{user.user_id}",
            role=role,
            user_id=user.user_id,
            organization_role=ORGANIZATION_ADMIN if organization_admin else None,
            workspaces=reachable,
        )

    # -- the person's own account --------------------------------------------------------------

    def _me(self, who: Principal) -> str:
        if who.user_id is None:
            raise Forbidden("this is a person's own account: log in (an API key has none)")
        return who.user_id

    def me(self, who: Principal) -> View:
        user = self._user(self._me(who))
        return {**user_view(user), "totp_enabled": user.totp_enabled, "workspaces": dict(user.memberships)}

    def update_me(self, who: Principal, name: str) -> Written:
        user_id = self._me(who)
        self._change_user(user_id, lambda user: user.update_profile(name))
        return Written(self.me(who), None)

    def change_password(self, who: Principal, current: str, new: str) -> Written:
        user_id = self._me(who)
        _check_password(new)
        user = self._user(user_id)
        if not self._passwords.verify(user.password_hash, current):
            raise Unauthorized("current_password is wrong")
        new_hash = self._passwords.hash(new)
        return self._change_user(user_id, lambda fresh: fresh.change_password(new_hash))

    def start_totp(self, who: Principal) -> View:
        """A new TOTP secret, shown once; it is enabled by confirming a code from it."""
        user_id = self._me(who)
        secret = new_secret()
        sealed = self._cipher.seal(_totp_owner(user_id), secret)
        written = self._change_user(user_id, lambda user: user.begin_totp(sealed))
        return {"secret": secret, "otpauth_uri": provisioning_uri(secret, written.view["email"])}

    def confirm_totp(self, who: Principal, code: str) -> View:
        user_id = self._me(who)
        user = self._user(user_id)
        if user.totp_sealed is None or user.totp_enabled:
            raise Invalid("no second factor is waiting to be confirmed: start one first")
        if not verify_code(self._totp_secret(user), code, self._clock()):
            raise Invalid("code: not the current code of the secret")
        self._change_user(user_id, lambda fresh: fresh.enable_totp())
        return {"totp_enabled": True}

    def disable_totp(self, who: Principal, code: str) -> View:
        user_id = self._me(who)
        user = self._user(user_id)
        if not user.totp_enabled:
            raise Invalid("no second factor is enabled")
        if not verify_code(self._totp_secret(user), code, self._clock()):
            raise Invalid("code: not the current code of the second factor")
        self._change_user(user_id, lambda fresh: fresh.disable_totp())
        self._cipher.shred(_totp_owner(user_id))
        return {"totp_enabled": False}

    def _totp_secret(self, user: User) -> str:
        assert user.totp_sealed is not None
        return self._cipher.open(_totp_owner(user.user_id), user.totp_sealed)


def _totp_owner(user_id: str) -> str:
    return f"totp:{user_id}"
