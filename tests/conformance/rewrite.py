"""The one mechanical edit made to the SDK's generated tests before they run against Agentry.

The generated tests were written for a mock server that answers anything: they name objects
by placeholder ids (``agent_011CZkYpogX7uDKUyvBTophP``) and send values no real server accepts
(``version=0``, ``limit=0``, ``page="page"``). This pass replaces exactly those literals and
nothing else, in place, so every other byte — and every line number — stays as the SDK
shipped it:

- a placeholder id of a kind Agentry can create (``PLACEHOLDER``, prefix in ``real_kinds``)
  becomes ``real_id("<the placeholder>")``: a real object created for the running test, the
  same one each time the test names that placeholder;
- ``version=0`` and ``agent_version=0`` become ``1`` (every agent has a version 1);
- ``limit=0`` becomes ``1`` (list limits run from 1, as the SDK documents for ``models.list``);
- ``page="page"`` becomes ``real_page("<resource>")``: a page token a real listing of that
  resource handed out.

Placeholders of kinds Agentry does not serve yet (``file_…``, ``wrkspc_…``) stay as they are.
``real_id`` and ``real_page`` come from one import appended after the last line.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection
from dataclasses import dataclass

PLACEHOLDER = re.compile(r"^(?P<kind>[a-z]+)_011[0-9A-Za-z]{20,}$")
# keyword=<constant> values no real server accepts, and what each becomes.
INVALID_NUMBERS = {"version": (0, "1"), "agent_version": (0, "1"), "limit": (0, "1")}
PLACEHOLDER_PAGE = "page"
RESPONSE_WRAPPERS = frozenset({"with_raw_response", "with_streaming_response"})
HELPERS_IMPORT = "from tests.conformance.real_objects import real_id, real_page  # added by tests/conformance/rewrite.py\n"


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


def _resource_of(call: ast.Call) -> str:
    """``client.beta.agents.versions.with_raw_response.list`` → ``agents.versions``."""
    names: list[str] = []
    node: ast.expr = call.func
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    names.reverse()
    path = names[names.index("beta") + 1 : -1] if "beta" in names else names[:-1]
    return ".".join(name for name in path if name not in RESPONSE_WRAPPERS)


def _edit(node: ast.expr, new: str, lines: list[bytes], keyword: str | None = None) -> Edit:
    assert node.end_lineno == node.lineno and node.end_col_offset is not None
    line = lines[node.lineno - 1]
    old = line[node.col_offset : node.end_col_offset].decode()
    return Edit(node.lineno, node.col_offset, node.end_col_offset, old, new, keyword)


def find_edits(source: str, real_kinds: Collection[str]) -> list[Edit]:
    tree = ast.parse(source)
    lines = source.encode().splitlines(keepends=True)
    edits: dict[tuple[int, int], Edit] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = PLACEHOLDER.match(node.value)
            if match and match["kind"] in real_kinds:
                edit = _edit(node, f"real_id({node.value!r})", lines)
                edits[(edit.line, edit.start)] = edit
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                value = keyword.value
                if not isinstance(value, ast.Constant) or keyword.arg is None:
                    continue
                invalid = INVALID_NUMBERS.get(keyword.arg)
                if invalid and type(value.value) is int and value.value == invalid[0]:
                    edit = _edit(value, invalid[1], lines, keyword.arg)
                elif keyword.arg == "page" and value.value == PLACEHOLDER_PAGE:
                    edit = _edit(value, f"real_page({_resource_of(node)!r})", lines, keyword.arg)
                else:
                    continue
                edits[(edit.line, edit.start)] = edit
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
