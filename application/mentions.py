"""``@Name`` in a comment, resolved to the workspace's people and agents.

A handle is a name without its spaces (``@JaneSmith``), its first word (``@Jane``), or a
person's email before the ``@`` (``@jane.smith``), in any case. A handle several match
mentions each of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9][A-Za-z0-9._-]{0,63})")
MAX_SUGGESTIONS = 20


@dataclass(frozen=True)
class Mentionable:
    type: str  # "user" or "agent"
    id: str
    name: str
    email: str | None = None

    @property
    def handles(self) -> frozenset[str]:
        words = self.name.split()
        found = {"".join(words).lower()} if words else set()
        if words:
            found.add(words[0].lower())
        if self.email:
            found.add(self.email.split("@", 1)[0].lower())
        return frozenset(found)

    @property
    def handle(self) -> str:
        """What autocomplete inserts after the ``@``."""
        return "".join(self.name.split()) or (self.email or self.id).split("@", 1)[0]

    def view(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "name": self.name}


class MentionDirectory(Protocol):
    def mentionable(self, tenant_id: str) -> list[Mentionable]:
        """The workspace's members and its live agents."""
        ...


def mentioned_handles(content: str) -> list[str]:
    """The handles ``content`` mentions, lower-cased, first mention first, once each."""
    seen: dict[str, None] = {}
    for match in MENTION.finditer(content):
        seen.setdefault(match.group(1).rstrip("._-").lower(), None)
    return [handle for handle in seen if handle]


def resolve(content: str, candidates: list[Mentionable]) -> list[Mentionable]:
    by_handle: dict[str, list[Mentionable]] = {}
    for candidate in candidates:
        for handle in candidate.handles:
            by_handle.setdefault(handle, []).append(candidate)
    resolved: dict[tuple[str, str], Mentionable] = {}
    for handle in mentioned_handles(content):
        for candidate in by_handle.get(handle, ()):
            resolved.setdefault((candidate.type, candidate.id), candidate)
    return list(resolved.values())


def suggest(query: str, candidates: list[Mentionable], limit: int = MAX_SUGGESTIONS) -> list[Mentionable]:
    """Autocomplete: candidates a handle or the name of which starts with ``query`` first,
    then those that contain it; each group by name."""
    wanted = query.lstrip("@").strip().lower()

    def starts(candidate: Mentionable) -> bool:
        return candidate.name.lower().startswith(wanted) or any(handle.startswith(wanted) for handle in candidate.handles)

    def contains(candidate: Mentionable) -> bool:
        return wanted in candidate.name.lower() or any(wanted in handle for handle in candidate.handles)

    by_name = sorted(candidates, key=lambda candidate: (candidate.name.lower(), candidate.id))
    first = [candidate for candidate in by_name if starts(candidate)]
    then = [candidate for candidate in by_name if not starts(candidate) and contains(candidate)]
    return (first + then)[:limit]
