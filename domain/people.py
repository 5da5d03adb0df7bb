"""People: the organization's users and the invites that bring them in.

A User's public id is derived from its normalized email (``user_id_for``), and its stream id
from that id, so "one user per email in the organization" is the event store's own
uniqueness: two racing registrations of one email create the same stream and the second
fails its append. A removed user's stream stays; inviting the email again re-opens it
(``Rejoined``) with the same id.

What a user record holds that is secret never leaves it in clear: the password only as an
argon2id hash (``password_hash``), the TOTP secret only sealed (``totp_sealed``, ciphertext
under the user's own data key). Both field names are on the relay's list of fields it
never publishes. Tokens are never recorded: a login records who and when, not what was
handed out; ``token_generation`` is what makes every earlier token stop working (sign-out,
password change, removal).

Roles: the organization role follows the SDK's ``BetaOrganizationRole`` (``admin`` is the
organization admin); workspace roles follow ``BetaWorkspaceRole``.

Every login is an event on the user's stream, so the event store snapshots users: a new
attribute of ``User`` needs a ``class_version`` and an upcast giving snapshots taken before
it a value (as ``Session`` does)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, InvalidState, Taken
from domain.ids import stream_id
from domain.stamps import Stamped

ORGANIZATION_ROLES = ("admin", "billing", "claude_code_user", "developer", "managed", "user")
# What an admin may give through the API (the SDK: ``admin`` cannot be assigned there).
ASSIGNABLE_ROLES = ("billing", "claude_code_user", "developer", "managed", "user")
WORKSPACE_ROLES = (
    "workspace_admin", "workspace_billing", "workspace_developer", "workspace_restricted_developer", "workspace_user"
)  # fmt: skip
ADDABLE_WORKSPACE_ROLES = tuple(role for role in WORKSPACE_ROLES if role != "workspace_billing")
DEFAULT_WORKSPACE = "default"
# Where a new person starts: the default workspace, as a developer.
NEW_MEMBER_ROLE = "workspace_developer"

# Failed logins that throttle an account, and the window they are counted in.
MAX_FAILED_LOGINS = 5
FAILED_LOGIN_WINDOW = timedelta(minutes=15)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def user_id_for(email: str) -> str:
    return "user_" + hashlib.sha256(("user:" + normalize_email(email)).encode()).hexdigest()[:32]


class UserRemoved(DomainError):
    """The user was removed from the organization."""


class AlreadyMember(Taken):
    """The email already belongs to a member of the organization."""


class NotAMember(DomainError):
    """The user is not a member of that workspace (the application answers 404)."""


class TotpCodeReused(DomainError):
    """The code's time step, or a later one, was accepted already (the application answers
    as for a wrong code)."""


class User(Aggregate):
    @staticmethod
    def create_id(user_id: str, **_: Any) -> UUID:
        return stream_id(user_id)

    class Created(Aggregate.Created):
        user_id: str
        tenant_id: str  # the organization's
        email: str
        name: str
        role: str
        password_hash: str
        memberships: dict[str, str]

    @event(Created)
    def __init__(
        self, user_id: str, tenant_id: str, email: str, name: str, role: str, password_hash: str,
        memberships: dict[str, str],
    ) -> None:  # fmt: skip
        self.user_id = user_id
        self.tenant_id = tenant_id
        self._join(email, name, role, password_hash, memberships)

    def _join(self, email: str, name: str, role: str, password_hash: str, memberships: dict[str, str]) -> None:
        self.email = email
        self.name = name
        self.role = role
        self.password_hash = password_hash
        self.memberships = dict(memberships)
        self.removed = False
        self.token_generation = getattr(self, "token_generation", 0) + 1
        self.totp_sealed: str | None = None
        self.totp_enabled = False
        self.totp_step_used: int | None = None  # the time step of the last code a login accepted
        self.failed_logins: list[datetime] = []
        self.added_at: datetime = self.modified_on

    # -- membership of the organization ------------------------------------------------------

    def check_present(self) -> None:
        if self.removed:
            raise UserRemoved(f"user {self.user_id} was removed from the organization")

    def rejoin(self, name: str, role: str, password_hash: str, memberships: dict[str, str]) -> None:
        if not self.removed:
            raise AlreadyMember(f"{self.email} is already a member of the organization")
        self._rejoined(name=name, role=role, password_hash=password_hash, memberships=memberships)

    class Rejoined(Stamped):
        stamp = "added_at"

    @event(Rejoined)
    def _rejoined(self, name: str, role: str, password_hash: str, memberships: dict[str, str]) -> None:
        self._join(self.email, name, role, password_hash, memberships)

    def remove(self) -> None:
        self.check_present()
        self._removed()

    @event("Removed")
    def _removed(self) -> None:
        self.removed = True
        self.memberships = {}
        self.token_generation += 1

    def change_role(self, role: str) -> bool:
        self.check_present()
        if role == self.role:
            return False
        self._role_changed(role=role, previous=self.role)
        return True

    @event("RoleChanged")
    def _role_changed(self, role: str, previous: str) -> None:
        self.role = role

    def update_profile(self, name: str) -> None:
        self.check_present()
        if name != self.name:
            self._profile_updated(name=name)

    @event("ProfileUpdated")
    def _profile_updated(self, name: str) -> None:
        self.name = name

    # -- workspaces ----------------------------------------------------------------------------

    def add_to_workspace(self, workspace_id: str, workspace_role: str) -> None:
        self.check_present()
        if workspace_id in self.memberships:
            raise Taken(f"user {self.user_id} is already a member of workspace {workspace_id}")
        self._membership_set(workspace_id=workspace_id, workspace_role=workspace_role, previous=None)

    def change_workspace_role(self, workspace_id: str, workspace_role: str) -> None:
        self.check_present()
        previous = self._membership(workspace_id)
        if previous != workspace_role:
            self._membership_set(workspace_id=workspace_id, workspace_role=workspace_role, previous=previous)

    @event("WorkspaceRoleSet")
    def _membership_set(self, workspace_id: str, workspace_role: str, previous: str | None) -> None:
        self.memberships[workspace_id] = workspace_role

    def remove_from_workspace(self, workspace_id: str) -> None:
        self.check_present()
        self._membership(workspace_id)
        self._membership_removed(workspace_id=workspace_id)

    @event("WorkspaceMembershipRemoved")
    def _membership_removed(self, workspace_id: str) -> None:
        del self.memberships[workspace_id]

    def _membership(self, workspace_id: str) -> str:
        role = self.memberships.get(workspace_id) if not self.removed else None
        if role is None:
            raise NotAMember(f"user {self.user_id} is not a member of workspace {workspace_id}")
        return role

    # -- signing in ----------------------------------------------------------------------------

    def throttled(self, now: datetime) -> datetime | None:
        """Until when logins are refused, or None: ``MAX_FAILED_LOGINS`` failures within the
        window refuse every login (a right password too) until the oldest of them ages out."""
        recent = [moment for moment in self.failed_logins if now - moment < FAILED_LOGIN_WINDOW]
        if len(recent) < MAX_FAILED_LOGINS:
            return None
        return recent[-MAX_FAILED_LOGINS] + FAILED_LOGIN_WINDOW

    def login_failed(self, reason: str, client: str) -> None:
        self._login_failed(reason=reason, client=client)

    class LoginFailed(Aggregate.Event):
        """Keeps its own time among the user's last failures (after the body, on every load)."""

        reason: str
        client: str

        def apply(self, aggregate: Any) -> None:
            aggregate.failed_logins = [*aggregate.failed_logins[-(MAX_FAILED_LOGINS - 1) :], self.timestamp]
            super().apply(aggregate)

    @event(LoginFailed)
    def _login_failed(self, reason: str, client: str) -> None:
        pass

    def logged_in(self, client: str, second_factor: bool) -> None:
        self.check_present()
        self._logged_in(client=client, second_factor=second_factor)

    @event("LoggedIn")
    def _logged_in(self, client: str, second_factor: bool) -> None:
        self.failed_logins = []

    def note_throttled(self, until: datetime, client: str) -> None:
        self._throttled(until=until, client=client)

    @event("LoginThrottled")
    def _throttled(self, until: datetime, client: str) -> None:
        pass

    def sign_out(self) -> None:
        self.check_present()
        self._signed_out()

    @event("SignedOut")
    def _signed_out(self) -> None:
        self.token_generation += 1

    def change_password(self, password_hash: str) -> None:
        self.check_present()
        self._password_changed(password_hash=password_hash)

    @event("PasswordChanged")
    def _password_changed(self, password_hash: str) -> None:
        self.password_hash = password_hash
        self.token_generation += 1

    # -- the second factor ---------------------------------------------------------------------

    def begin_totp(self, totp_sealed: str) -> None:
        self.check_present()
        if self.totp_enabled:
            raise InvalidState("a second factor is already enabled: disable it first")
        self._totp_started(totp_sealed=totp_sealed)

    @event("TotpStarted")
    def _totp_started(self, totp_sealed: str) -> None:
        self.totp_sealed = totp_sealed

    def enable_totp(self) -> None:
        self.check_present()
        if self.totp_sealed is None or self.totp_enabled:
            raise InvalidState("no second factor is waiting to be confirmed: start one first")
        self._totp_enabled()

    @event("TotpEnabled")
    def _totp_enabled(self) -> None:
        self.totp_enabled = True
        self.token_generation += 1

    def disable_totp(self) -> None:
        self.check_present()
        if not self.totp_enabled:
            raise InvalidState("no second factor is enabled")
        self._totp_disabled()

    @event("TotpDisabled")
    def _totp_disabled(self) -> None:
        self.totp_enabled = False
        self.totp_sealed = None

    def totp_step_fresh(self, step: int) -> bool:
        return self.totp_step_used is None or step > self.totp_step_used

    def use_totp_step(self, step: int) -> None:
        """A code is good once (RFC 6238 §5.2): after it, its time step and every earlier one
        are refused — in every process, since the step is recorded here."""
        if not self.totp_step_fresh(step):
            raise TotpCodeReused(f"the code of time step {step} was used already")
        self._totp_code_used(step=step)

    @event("TotpCodeUsed")
    def _totp_code_used(self, step: int) -> None:
        self.totp_step_used = step


INVITE_DAYS = 21


class InviteClosed(InvalidState):
    """The invite was accepted, deleted or has expired."""


class Invite(Aggregate):
    @staticmethod
    def create_id(invite_id: str, **_: Any) -> UUID:
        return stream_id(invite_id)

    class Created(Aggregate.Created):
        invite_id: str
        tenant_id: str
        email: str
        role: str
        token_hash: str
        expires_at: datetime

    @event(Created)
    def __init__(
        self, invite_id: str, tenant_id: str, email: str, role: str, token_hash: str, expires_at: datetime
    ) -> None:
        self.invite_id = invite_id
        self.tenant_id = tenant_id
        self.email = email
        self.role = role
        self.token_hash = token_hash
        self.expires_at = expires_at
        self.accepted_at: datetime | None = None
        self.deleted = False

    def status(self, now: datetime) -> str:
        if self.deleted:
            return "deleted"
        if self.accepted_at is not None:
            return "accepted"
        return "expired" if now >= self.expires_at else "pending"

    def accept(self, now: datetime, user_id: str) -> None:
        if self.status(now) != "pending":
            raise InviteClosed(f"invite {self.invite_id} is {self.status(now)}")
        self._accepted(user_id=user_id)

    class Accepted(Aggregate.Event):
        user_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.accepted_at = self.timestamp
            super().apply(aggregate)

    @event(Accepted)
    def _accepted(self, user_id: str) -> None:
        pass

    def delete(self, now: datetime) -> None:
        if self.status(now) not in ("pending", "expired"):
            raise InviteClosed(f"invite {self.invite_id} is {self.status(now)}: only a pending invite can be deleted")
        self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True
