"""The people endpoints in the API description (``api_description.OPERATIONS`` takes them in
one line): the organization's users, invites, workspace members and ``me`` as the SDK calls
them, and ``/v1/auth/*``."""

from __future__ import annotations

from interfaces.http import people_schemas as people
from interfaces.http.api_description import Operation, Param, integer, path_id

USER = path_id("user_id", "user")
INVITE = path_id("invite_id", "invite")
WORKSPACE = Param("workspace_id", "path", {"type": "string", "minLength": 1}, "the workspace's id", required=True)
ID_PAGE = (
    Param("limit", "query", integer(1, 1000), "page size (default 20)"),
    Param("after_id", "query", {"type": "string"}, "the page after this object (its `last_id`)"),
    Param("before_id", "query", {"type": "string"}, "the page before this object (its `first_id`)"),
)
ROLES = Param("roles[]", "query", {"type": "array", "items": {"type": "string"}}, "only these roles (OR'ed)")
EMAIL = Param("email", "query", {"type": "string"}, "only this email (case-insensitive)")
STATUSES = Param(
    "statuses[]", "query", {"type": "array", "items": {"type": "string", "enum": ["accepted", "expired", "pending"]}},
    "only these statuses (OR'ed)",
)  # fmt: skip
BODY = (400, 413, 415)
WRITE = (*BODY, 409)
ADMIN = (403,)

PEOPLE_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get", "/v1/organizations/me", "getOrganization", "The organization the caller belongs to", "organization",
        people.Organization,
    ),
    Operation(
        "get", "/v1/organizations/users", "listUsers", "The organization's users, oldest first", "organization",
        people.OrganizationUserPage, params=(*ID_PAGE, EMAIL, ROLES), errors=(400,),
    ),
    Operation(
        "get", "/v1/organizations/users/{user_id}", "getUser", "Retrieve a user", "organization",
        people.OrganizationUser, params=(USER,), errors=(404,),
    ),
    Operation(
        "post", "/v1/organizations/users/{user_id}", "updateUser", "Change a user's organization role (admin)",
        "organization", people.OrganizationUser, request=people.UserUpdate, params=(USER,), errors=(*WRITE, *ADMIN, 404),
        description="The organization's last admin cannot be demoted: 409, `x-should-retry: false`.",
    ),
    Operation(
        "delete", "/v1/organizations/users/{user_id}", "removeUser",
        "Remove a user from the organization (admin); their login tokens stop working", "organization",
        people.UserDeleted, params=(USER,), errors=(400, *ADMIN, 404, 409),
        description="The organization's last admin cannot be removed: 409, `x-should-retry: false`.",
    ),
    Operation(
        "post", "/v1/organizations/users/{user_id}/sign_out", "signOutUser",
        "End every login of a user (admin); they may log in again", "organization", people.OrganizationUser,
        request_optional=True, params=(USER,), errors=(400, *ADMIN, 404),
    ),
    Operation(
        "post", "/v1/organizations/invites", "createInvite", "Invite a person by email (admin)", "organization",
        people.CreatedInvite, request=people.InviteCreate, errors=(*WRITE, *ADMIN),
        description=(
            "The response carries the invite's `token` once; the person accepts with it at `/v1/auth/invites/accept`. "
            "An email of a member, or with a pending invite, is a 400 whose `error.details.error_code` is "
            "`already_member` or `invite_already_exists` (the SDK's `AlreadyMemberError`, `InviteAlreadyExistsError`)."
        ),
    ),
    Operation(
        "get", "/v1/organizations/invites", "listInvites", "The organization's invites, oldest first (admin)",
        "organization", people.OrganizationInvitePage, params=(*ID_PAGE, EMAIL, ROLES, STATUSES), errors=(400, *ADMIN),
    ),
    Operation(
        "get", "/v1/organizations/invites/{invite_id}", "getInvite", "Retrieve an invite (admin)", "organization",
        people.OrganizationInvite, params=(INVITE,), errors=(*ADMIN, 404),
    ),
    Operation(
        "delete", "/v1/organizations/invites/{invite_id}", "deleteInvite", "Delete a pending invite (admin)",
        "organization", people.InviteDeleted, params=(INVITE,), errors=(400, *ADMIN, 404),
    ),
    Operation(
        "get", "/v1/organizations/workspaces/{workspace_id}/members", "listWorkspaceMembers",
        "A workspace's members, oldest first", "organization", people.WorkspaceMemberPage,
        params=(WORKSPACE, *ID_PAGE), errors=(400, 404),
    ),
    Operation(
        "post", "/v1/organizations/workspaces/{workspace_id}/members", "addWorkspaceMember",
        "Add a user to a workspace (admin)", "organization", people.WorkspaceMember, request=people.MemberAdd,
        params=(WORKSPACE,), errors=(*WRITE, *ADMIN, 404),
    ),
    Operation(
        "get", "/v1/organizations/workspaces/{workspace_id}/members/{user_id}", "getWorkspaceMember",
        "Retrieve a workspace member", "organization", people.WorkspaceMember, params=(WORKSPACE, USER), errors=(404,),
    ),
    Operation(
        "post", "/v1/organizations/workspaces/{workspace_id}/members/{user_id}", "updateWorkspaceMember",
        "Change a member's workspace role (admin)", "organization", people.WorkspaceMember,
        request=people.MemberUpdate, params=(WORKSPACE, USER), errors=(*BODY, *ADMIN, 404),
    ),
    Operation(
        "delete", "/v1/organizations/workspaces/{workspace_id}/members/{user_id}", "removeWorkspaceMember",
        "Remove a user from a workspace (admin)", "organization", people.WorkspaceMemberDeleted,
        params=(WORKSPACE, USER), errors=(*ADMIN, 404),
    ),
    # -- /v1/auth --------------------------------------------------------------------------
    Operation(
        "post", "/v1/auth/login", "login", "Log in: a login token for `Authorization: Bearer`", "auth",
        people.LoginToken, request=people.Login, errors=(*BODY, 401, 429), public=True,
        description=(
            "JSON (`email`, `password`, `totp_code`) or a form (`application/x-www-form-urlencoded`: "
            "`username`, `password`). Five failed logins of an account within 15 minutes refuse its "
            "logins with 429 and `retry-after`."
        ),
    ),
    Operation(
        "post", "/v1/auth/register", "register", "Create an account (only when AGENTRY_REGISTRATION=open)", "auth",
        people.OrganizationUser, request=people.Register, errors=(*WRITE, 403), public=True,
    ),
    Operation(
        "post", "/v1/auth/invites/accept", "acceptInvite", "Accept an invite with its token: creates the account",
        "auth", people.OrganizationUser, request=people.InviteAccept, errors=(*WRITE, 401), public=True,
    ),
    Operation("get", "/v1/auth/me", "getMe", "The logged-in person's account", "auth", people.Me, errors=(403,)),
    Operation(
        "post", "/v1/auth/me", "updateMe", "Change the logged-in person's name", "auth", people.Me,
        request=people.MeUpdate, errors=(*BODY, 403),
    ),
    Operation(
        "post", "/v1/auth/password", "changePassword",
        "Change the password (every login token of the person stops working)", "auth", people.OrganizationUser,
        request=people.PasswordChange, errors=(*BODY, 401, 403),
    ),
    Operation(
        "post", "/v1/auth/totp", "startTotp", "Start a second factor: a TOTP secret, shown once", "auth",
        people.TotpSetup, request_optional=True, errors=(400, 403),
    ),
    Operation(
        "post", "/v1/auth/totp/confirm", "confirmTotp", "Enable the second factor with a current code", "auth",
        people.TotpState, request=people.TotpCode, errors=(*BODY, 403),
    ),
    Operation(
        "post", "/v1/auth/totp/disable", "disableTotp", "Disable the second factor with a current code", "auth",
        people.TotpState, request=people.TotpCode, errors=(*BODY, 403),
    ),
)
