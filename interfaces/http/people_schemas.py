"""Request and response bodies of the people endpoints: the organization's users, invites,
workspace members (as ``client.beta.organization`` sends and reads them) and ``/v1/auth/*``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from domain.people import ADDABLE_WORKSPACE_ROLES, ASSIGNABLE_ROLES, ORGANIZATION_ROLES, WORKSPACE_ROLES
from interfaces.http.responses import Described
from interfaces.http.schemas import Strict

# No control characters: a NUL reaches the read models' text columns (PostgreSQL refuses it).
Email = Annotated[
    str, Field(min_length=3, max_length=320, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$")
]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
Name = Annotated[str, Field(min_length=1, max_length=256)]
Code = Annotated[str, Field(min_length=1, max_length=16)]
AssignableRole = Literal[ASSIGNABLE_ROLES]  # type: ignore[valid-type]
WorkspaceRole = Literal[WORKSPACE_ROLES]  # type: ignore[valid-type]
AddableWorkspaceRole = Literal[ADDABLE_WORKSPACE_ROLES]  # type: ignore[valid-type]
OrganizationRole = Literal[ORGANIZATION_ROLES]  # type: ignore[valid-type]

# -- requests ------------------------------------------------------------------------------


class UserUpdate(Strict):
    role: AssignableRole


class InviteCreate(Strict):
    email: Email
    role: AssignableRole
    rbac_group_ids: list[Annotated[str, Field(max_length=128)]] | None = Field(
        default=None, max_length=100, description="accepted for the SDK's sake; Agentry has no RBAC groups"
    )


class MemberAdd(Strict):
    user_id: Annotated[str, Field(min_length=1, max_length=128)]
    workspace_role: AddableWorkspaceRole


class MemberUpdate(Strict):
    workspace_role: WorkspaceRole


class Login(Strict):
    email: Email | None = Field(default=None, description="or `username` (the form-encoded OAuth2 password flow)")
    username: Email | None = None
    password: Password
    totp_code: Code | None = Field(default=None, description="required once a second factor is enabled")


class Register(Strict):
    email: Email
    password: Password
    name: Name | None = None


class InviteAccept(Strict):
    token: Annotated[str, Field(min_length=1, max_length=512)]
    password: Password
    name: Name | None = None


class MeUpdate(Strict):
    name: Name


class PasswordChange(Strict):
    current_password: Password
    new_password: Password


class TotpCode(Strict):
    code: Code


# -- responses -----------------------------------------------------------------------------


class OrganizationUser(Described):
    id: str
    type: Literal["user"]
    email: str
    name: str
    role: OrganizationRole
    added_at: datetime


class IdPaged(Described):
    has_more: bool
    first_id: str | None
    last_id: str | None


class OrganizationUserPage(IdPaged):
    data: list[OrganizationUser]


class UserDeleted(Described):
    id: str
    type: Literal["user_deleted"]


class OrganizationInvite(Described):
    id: str
    type: Literal["invite"]
    email: str
    role: OrganizationRole
    status: Literal["accepted", "deleted", "expired", "pending"]
    invited_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    rbac_group_ids: list[str]


class CreatedInvite(OrganizationInvite):
    token: str = Field(description="shown once: the invited person accepts with it (POST /v1/auth/invites/accept)")


class OrganizationInvitePage(IdPaged):
    data: list[OrganizationInvite]


class InviteDeleted(Described):
    id: str
    type: Literal["invite_deleted"]


class WorkspaceMember(Described):
    type: Literal["workspace_member"]
    user_id: str
    workspace_id: str
    workspace_role: WorkspaceRole


class WorkspaceMemberPage(IdPaged):
    data: list[WorkspaceMember]


class WorkspaceMemberDeleted(Described):
    type: Literal["workspace_member_deleted"]
    user_id: str
    workspace_id: str


class Organization(Described):
    id: str
    type: Literal["organization"]
    name: str


class LoginToken(Described):
    access_token: str = Field(description="a JWT (HS256), valid 24 h: send it as `Authorization: Bearer`")
    token_type: Literal["bearer"]
    user: OrganizationUser


class Me(OrganizationUser):
    totp_enabled: bool
    workspaces: dict[str, WorkspaceRole] = Field(description="workspace id → the person's role in it")


class TotpSetup(Described):
    secret: str = Field(description="base32, shown once; enabled by confirming a code from it")
    otpauth_uri: str


class TotpState(Described):
    totp_enabled: bool
