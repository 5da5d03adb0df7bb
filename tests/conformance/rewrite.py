"""The one mechanical edit made to the SDK's generated tests before they run against Agentry.

The generated tests were written for a mock server that answers anything: they name objects
by placeholder ids (``agent_011CZkYpogX7uDKUyvBTophP``) and send values no real server accepts
(``version=0``, ``limit=0``, ``page="page"``). This pass replaces exactly those literals and
nothing else, in place, so every other byte — and every line number — stays as the SDK
shipped it:

- a placeholder id of a kind Agentry can create (``PLACEHOLDER``, prefix in ``real_kinds``)
  becomes ``real_id("<the placeholder>")``: a real object created for the running test, the
  same one each time the test names that placeholder;
- an id the tests spell as its own parameter's name (``work_id="work_id"``: the SDK has no
  example id of that kind) is such a placeholder too: ``work_id=real_id("work_id")``; so are
  a model's (``model_id``) and the models list's cursors (``after_id``, ``before_id``), each
  a real model (an agent): ``after_id=real_id("model_after_id")``; and a workspace's
  (``workspace_id``) and an API key's (``api_key_id``, also passed positionally);
- ``version=0`` and ``agent_version=0`` become ``1`` (every agent has a version 1);
- ``limit=0`` becomes ``1`` (list limits run from 1, as the SDK documents for ``models.list``);
- ``desired_ttl_seconds=0`` becomes ``1`` (a lease of no time is none);
- ``expected_last_heartbeat="expected_last_heartbeat"`` becomes ``"NO_HEARTBEAT"``, the value
  the SDK documents for the first heartbeat of a lease (the test's is the first);
- a list of ids the tests fill with ``"string"`` (``PLACEHOLDER_LISTS``: ``vault_ids=["string"]``)
  becomes a list of real objects of that kind: ``vault_ids=[real_id("vlt_vault_ids")]``;
- an ``"expires_at"`` the tests date in the past (``parse_datetime("2019-12-27T…")``, which a
  server that wants a future expiry refuses) moves to the same moment in ``FUTURE_YEAR``;
- an organization's user, invite or workspace named by its parameter's name (``"user_id"``),
  as a keyword or the first positional argument, is a real one; an invite's
  ``email="user@emaildomain.com"`` becomes a fresh address per test, ``real_id("invitee_email")``
  (an email with a pending invite cannot be invited again);
- ``webhook_endpoint_id="webhook_endpoint_id"`` is a real webhook endpoint, and ``url="x"`` an
  https URL (a webhook endpoint's must be http or https);
- ``rate_limit_id="rate_limit_id"`` becomes the workspace's one entry Agentry enforces, and a
  limit's ``"type": "fast_itpmca"`` the type it enforces (``requests_per_minute``);
- a skill's ``skill_id="skill_id"`` is a real skill (with two versions, so deleting ``latest``
  leaves one), ``version="version"`` becomes ``'latest'``, ``source="source"`` ``'custom'``, and
  an upload's ``files=[b"Example data"]`` ``real_skill_files()``: a SKILL.md in a folder named
  as the test's skill (or a fresh name for a new skill);
- ``memory_store_id``, ``memory_id`` and ``memory_version_id`` named by their parameter's name
  are a real store, a memory in it (content ``"content"``) and a version in it that is not its
  memory's current one (the current one cannot be redacted); ``path_prefix="path_prefix"``
  becomes ``"/path_prefix/"`` (a directory), and a delete's ``expected_content_sha256`` and an
  update's precondition ``content_sha256`` the hash of the test memory's content;
- ``page="page"`` becomes ``real_page("<resource>")``: a page token a real listing of that
  resource handed out;
- the client of a call that takes only a worker's credential (``WORKER_ONLY``: the SDK's
  docstring says it rejects an API key) becomes ``worker_client(<client>)``: the same client,
  same mode, carrying the key of the environment the test names instead of the API key.

Placeholders of kinds Agentry does not serve yet (``file_…``, ``wrkspc_…``) stay as they are.
``real_id``, ``real_page`` and ``worker_client`` come from one import appended after the last line.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection
from dataclasses import dataclass

from application.rate_limit_config import WORKSPACE_ENTRY
from tests.conformance.real_objects import MEMORY_CONTENT_SHA256

PLACEHOLDER = re.compile(r"^(?P<kind>[a-z]+)_011[0-9A-Za-z]{20,}$")
# <name>="<name>": ids the tests spell as their parameter's name, and the kind of object each
# stands for (a model: anything GET /v1/models lists; the page cursors of models.list name
# models too). Only these: elsewhere such a value is a filter that is meant to match nothing
# (sessions.list(agent_id="agent_id")).
BARE_PLACEHOLDERS: dict[str, str] = {
    "work_id": "work",
    "model_id": "model",
    "after_id": "model",
    "before_id": "model",
    # organization.rate_limits.list(model=…): the entry covering a model the caller can name.
    "model": "model",
    "workspace_id": "wrkspc",
    "api_key_id": "apikey",
    "webhook_endpoint_id": "whep",
    "skill_id": "skill",
    "memory_store_id": "memstore",
    "memory_id": "mem",
    "memory_version_id": "memver",
    "file_id": "file",
}
# -- people (the organization's users, invites, workspace members) ----------------------------
# Their tests name users and invites by the parameter's name, as keywords and as the first
# positional argument (``users.retrieve("user_id")``); a workspace member to be added is a
# literal id, a user of the organization in no workspace yet (``outsider``).
BARE_PLACEHOLDERS |= {"user_id": "user", "invite_id": "invite"}
LITERAL_PLACEHOLDERS: dict[str, str] = {
    "user_01WxYzAbCdEfGhJkMnPqRsTu": "outsider_user",
    # The all-params calls' ``workspace_id=`` (the ``anthropic-workspace-id`` header): the
    # workspace the test's own objects are in, not a new one.
    "wrkspc_011CZkZaBF1tNoB5wlCeusgy": "home_workspace",
}
# -- end people ----------------------------------------------------------------------------
# Of those, the ones the tests also pass positionally (``api_keys.retrieve("api_key_id")``).
POSITIONAL_PLACEHOLDERS = frozenset({"api_key_id", "user_id", "invite_id", "workspace_id"})
# keyword=<constant> values no real server accepts, and what each becomes.
INVALID_VALUES: dict[str, tuple[object, str]] = {
    "version": (0, "1"),
    "agent_version": (0, "1"),
    "limit": (0, "1"),
    "desired_ttl_seconds": (0, "1"),
    "expected_last_heartbeat": ("expected_last_heartbeat", "'NO_HEARTBEAT'"),
    "email": ("user@emaildomain.com", "real_id('invitee_email')"),  # one pending invite per address
    # A workspace can set only Agentry's one entry (the request rate), as the list shows.
    "rate_limit_id": ("rate_limit_id", f"{WORKSPACE_ENTRY!r}"),
    # A webhook endpoint's URL is an http(s) one (the SDK's all-params update sends "x").
    "url": ("x", "'https://example.com/x'"),
    # A memory list's prefix is a directory (starts and ends with /).
    "path_prefix": ("path_prefix", "'/path_prefix/'"),
    # A delete's expected hash is 64 hex digits: the one of the test's memory's content.
    "expected_content_sha256": ("expected_content_sha256", f"{MEMORY_CONTENT_SHA256!r}"),
}
# keyword=<string> pairs no real server accepts where the keyword's other values are fine: a
# skill version is an id or ``latest``; a skill's source is ``custom`` or ``anthropic``.
INVALID_STRINGS: dict[tuple[str, str], str] = {("version", "version"): "'latest'", ("source", "source"): "'custom'"}
# A skill upload (``files=[b"Example data"]``: one nameless file) becomes a real one, a
# SKILL.md in its folder; a new version names the test's skill, as a version must.
SKILL_UPLOADS = frozenset({"skills.create", "skills.versions.create"})
# {"<key>": <constant>} items no real server accepts, and what each value becomes: a limiter
# type Agentry does not enforce is refused, so the update sets the one it does.
INVALID_ITEMS: dict[tuple[str, object], str] = {
    ("type", "fast_itpmca"): "'requests_per_minute'",
    # A memory update's precondition holds for the test's memory (whose content is known).
    ("content_sha256", "210b9798eb53baa4e69d31c1071cf03d212b8ad0ca30cf321e0ea82e120aac26"): f"{MEMORY_CONTENT_SHA256!r}",
}
PLACEHOLDER_PAGE = "page"
# keyword → the kind of the ids its list names (the tests send ``["string"]``).
PLACEHOLDER_LISTS: dict[str, str] = {"vault_ids": "vlt"}
EXPIRY_KEY = "expires_at"
FUTURE_YEAR = "2099"
RESPONSE_WRAPPERS = frozenset({"with_raw_response", "with_streaming_response"})
# Calls (resource.method) that accept only a worker's credential, never an API key.
WORKER_ONLY = frozenset({"environments.work.list"})
HELPERS_IMPORT = (
    "from tests.conformance.real_objects import real_id, real_page, real_skill_files, worker_client"
    "  # added by tests/conformance/rewrite.py\n"
)


@dataclass(frozen=True)
class Edit:
    line: int  # 1-based
    start: int  # byte offsets within the line
    end: int
    old: str
    new: str
    keyword: str | None = None  # the argument a replaced value belongs to, for the report

    def __str__(self) -> str:
        named = f"{self.keyword}=" if self.keyword else ""
        return f"{self.line}: {named}{self.old} -> {named}{self.new}"


def _method_of(call: ast.Call) -> str:
    """``client.beta.agents.versions.with_raw_response.list`` → ``agents.versions.list``."""
    names: list[str] = []
    node: ast.expr = call.func
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    names.reverse()
    path = names[names.index("beta") + 1 :] if "beta" in names else names
    return ".".join(name for name in path if name not in RESPONSE_WRAPPERS)


def _resource_of(call: ast.Call) -> str:
    """``client.beta.agents.versions.with_raw_response.list`` → ``agents.versions``."""
    return _method_of(call).rpartition(".")[0]


def _client_of(call: ast.Call) -> ast.Name | None:
    """The name a method call starts from (``client`` in ``client.beta.….list(…)``)."""
    node: ast.expr = call.func
    while isinstance(node, ast.Attribute):
        node = node.value
    return node if isinstance(node, ast.Name) and node is not call.func else None


def _edit(node: ast.expr, new: str, lines: list[bytes], keyword: str | None = None) -> Edit:
    assert node.end_lineno == node.lineno and node.end_col_offset is not None
    line = lines[node.lineno - 1]
    old = line[node.col_offset : node.end_col_offset].decode()
    return Edit(node.lineno, node.col_offset, node.end_col_offset, old, new, keyword)


def _is_placeholder(node: ast.Constant, real_kinds: Collection[str]) -> bool:
    match = PLACEHOLDER.match(node.value) if isinstance(node.value, str) else None
    return bool(match and match["kind"] in real_kinds)


def _is_bare_placeholder(keyword: ast.keyword, real_kinds: Collection[str]) -> bool:
    value = keyword.value
    return (
        keyword.arg in BARE_PLACEHOLDERS
        and isinstance(value, ast.Constant)
        and value.value == keyword.arg
        and BARE_PLACEHOLDERS[keyword.arg] in real_kinds
    )


def _bare_placeholder(name: str) -> str:
    """What ``real_id`` is given for ``<name>="<name>"``: its kind comes first (``work_id``,
    ``model_after_id``), as in every placeholder, so one test's two cursors are two objects."""
    kind = BARE_PLACEHOLDERS[name]
    return name if name.startswith(kind + "_") else f"{kind}_{name}"

def _past_expiry(key: ast.expr | None, value: ast.expr) -> ast.Constant | None:
    """The date string of ``"expires_at": parse_datetime("<a past year>…")``, else None."""
    if not (isinstance(key, ast.Constant) and key.value == EXPIRY_KEY and isinstance(value, ast.Call)):
        return None
    if not (isinstance(value.func, ast.Name) and value.func.id == "parse_datetime" and len(value.args) == 1):
        return None
    moment = value.args[0]
    if isinstance(moment, ast.Constant) and isinstance(moment.value, str) and moment.value[:4] < FUTURE_YEAR:
        return moment
    return None


def find_edits(source: str, real_kinds: Collection[str]) -> list[Edit]:
    tree = ast.parse(source)
    lines = source.encode().splitlines(keepends=True)
    edits: dict[tuple[int, int], Edit] = {}

    def add(edit: Edit) -> None:
        edits[(edit.line, edit.start)] = edit

    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and _is_placeholder(node, real_kinds) and node.value not in LITERAL_PLACEHOLDERS:
            add(_edit(node, f"real_id({node.value!r})", lines))
        literal = LITERAL_PLACEHOLDERS.get(node.value) if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
        if literal is not None and literal.split("_", 1)[0] in real_kinds:
            add(_edit(node, f"real_id({literal!r})", lines))
        if isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            if (
                isinstance(first, ast.Constant)
                and first.value in POSITIONAL_PLACEHOLDERS
                and BARE_PLACEHOLDERS[str(first.value)] in real_kinds
            ):
                add(_edit(first, f"real_id({_bare_placeholder(str(first.value))!r})", lines))
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                    replacement = INVALID_ITEMS.get((str(key.value), value.value))
                    if replacement is not None:
                        add(_edit(value, replacement, lines, str(key.value)))
                past = _past_expiry(key, value)
                if past is not None:
                    add(_edit(past, repr(FUTURE_YEAR + str(past.value)[4:]), lines, EXPIRY_KEY))
        if not isinstance(node, ast.Call):
            continue
        names_real = False
        first = node.args[0] if node.args else None
        if (
            isinstance(first, ast.Constant)
            and first.value in POSITIONAL_PLACEHOLDERS
            and BARE_PLACEHOLDERS[str(first.value)] in real_kinds
        ):
            names_real = True
            add(_edit(first, f"real_id({_bare_placeholder(str(first.value))!r})", lines))
        for keyword in node.keywords:
            value = keyword.value
            kind = PLACEHOLDER_LISTS.get(keyword.arg or "")
            if kind in real_kinds and isinstance(value, ast.List):
                for item in value.elts:
                    if isinstance(item, ast.Constant) and item.value == "string":
                        add(_edit(item, f"real_id({kind + '_' + str(keyword.arg)!r})", lines, keyword.arg))
            if keyword.arg == "files" and _method_of(node) in SKILL_UPLOADS and isinstance(value, ast.List):
                add(_edit(value, "real_skill_files()", lines, keyword.arg))
            if not isinstance(value, ast.Constant) or keyword.arg is None:
                continue
            invalid = INVALID_VALUES.get(keyword.arg)
            if _is_placeholder(value, real_kinds):
                names_real = True  # replaced above, with the other constants
            elif _is_bare_placeholder(keyword, real_kinds):
                names_real = True
                add(_edit(value, f"real_id({_bare_placeholder(keyword.arg)!r})", lines, keyword.arg))
            elif invalid and type(value.value) is type(invalid[0]) and value.value == invalid[0]:
                add(_edit(value, invalid[1], lines, keyword.arg))
            elif isinstance(value.value, str) and (keyword.arg, value.value) in INVALID_STRINGS:
                add(_edit(value, INVALID_STRINGS[(keyword.arg, value.value)], lines, keyword.arg))
            elif keyword.arg == "page" and value.value == PLACEHOLDER_PAGE:
                add(_edit(value, f"real_page({_resource_of(node)!r})", lines, keyword.arg))
        # Only a call that reaches the server (it names a real object: not one the SDK refuses
        # before sending, as with environment_id="") needs the worker's credential.
        client = _client_of(node)
        if names_real and client is not None and _method_of(node) in WORKER_ONLY:
            add(_edit(client, f"worker_client({client.id})", lines))
    return sorted(edits.values(), key=lambda edit: (edit.line, edit.start))


def rewrite(source: str, real_kinds: Collection[str]) -> tuple[str, list[Edit]]:
    """The rewritten source and the edits made, in source order."""
    edits = find_edits(source, real_kinds)
    lines = source.encode().splitlines(keepends=True)
    # Right to left within a line, so earlier offsets stay valid.
    for edit in sorted(edits, key=lambda edit: (edit.line, -edit.start)):
        line = lines[edit.line - 1]
        lines[edit.line - 1] = line[: edit.start] + edit.new.encode() + line[edit.end :]
    text = b"".join(lines).decode()
    if edits:
        text += ("" if text.endswith("\n") else "\n") + HELPERS_IMPORT
    return text, edits
