"""The system prompt a turn sends: the agent's own ``system``, then a note on each thing the
session has mounted or attached (spec §D.1: "a note describing each mount is added to the
system prompt"). A section appears only when something is there, so a session without
resources sends exactly the agent's text. The wording is Agentry's own (the docs publish
none); what a test relies on is the mount path, the description and the instructions.

Pure: the session's resources carry what the notes need (a memory store's name, description
and mount path are copied into the resource when it is attached), so a replayed turn builds
the same prompt. The skills' and knowledge bases' notes are read by the runtime (once per turn)
and handed in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from application.runtime.knowledge import TOOL_NAME, KnowledgeBaseNote, SkillNote

MEMORY_HEADER = (
    "# Memory\n"
    "Memory stores are mounted as directories. Read the relevant ones with your file tools before you "
    "start; save what later sessions should know as files in them (text files, one topic per file). "
    "Changes are saved to the store automatically."
)
FILES_HEADER = "# Files\nFiles attached to this session (read-only):"
SKILLS_HEADER = (
    "# Skills\n"
    "Skills are in the skills/ folder of your working directory; read a skill's SKILL.md before using it."
)
KNOWLEDGE_HEADER = f"# Knowledge\nSearch these knowledge bases with the {TOOL_NAME} tool:"


def _memory_line(resource: dict[str, Any]) -> str:
    access = resource.get("access") or "read_write"
    where = resource.get("mount_path") or f"(memory store {resource.get('memory_store_id')})"
    line = f"- {where.rstrip('/')}/ ({access.replace('_', '-')})"
    if resource.get("description"):
        line += f": {resource['description']}"
    if resource.get("instructions"):
        line += "\n  " + "\n  ".join(str(resource["instructions"]).splitlines())
    return line


def _described(head: str, description: str | None) -> str:
    return f"- {head}: {' '.join(description.split())}" if description else f"- {head}"


def compose(
    agent_system: str | None,
    resources: Sequence[dict[str, Any]],
    skills: Sequence[SkillNote] = (),
    knowledge: Sequence[KnowledgeBaseNote] = (),
) -> str | None:
    sections = [agent_system] if agent_system else []
    memories = [_memory_line(held) for held in resources if held.get("type") == "memory_store"]
    if memories:
        sections.append("\n".join([MEMORY_HEADER, *memories]))
    files = [f"- {held['mount_path']}" for held in resources if held.get("type") == "file" and held.get("mount_path")]
    if files:
        sections.append("\n".join([FILES_HEADER, *files]))
    if skills:
        sections.append("\n".join([SKILLS_HEADER, *(_described(skill.name, skill.description) for skill in skills)]))
    if knowledge:
        bases = (_described(f"{base.knowledge_base_id} {base.name}", base.description) for base in knowledge)
        sections.append("\n".join([KNOWLEDGE_HEADER, *bases]))
    return "\n\n".join(sections) if sections else None
