"""Responses of skills and their versions, as the SDK's ``BetaSkill`` / ``BetaSkillVersion``
types read them. Uploads are multipart forms, described in ``skill_description``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from interfaces.http.responses import Described, Paged


class SkillSource(Described):
    type: Literal["custom", "anthropic", "anthropic_example", "plugin"]


class Skill(Described):
    type: Literal["skill"]
    id: str
    display_name: str = Field(description="defaults to the SKILL.md front matter's `name`; not unique")
    latest_version_id: str = Field(description="what `latest` resolves to")
    source: SkillSource
    created_at: datetime
    updated_at: datetime


class SkillPage(Paged):
    data: list[Skill]


class SkillDeleted(Described):
    id: str
    type: Literal["skill_deleted"]


class SkillVersion(Described):
    type: Literal["skill_version"]
    id: str
    skill_id: str
    name: str = Field(description="the skill's kebab-case slug, fixed by its first upload; its folder name")
    description: str = Field(description="from the SKILL.md front matter")
    created_at: datetime


class SkillVersionPage(Paged):
    data: list[SkillVersion]


class SkillVersionDeleted(Described):
    id: str
    type: Literal["skill_version_deleted"]
