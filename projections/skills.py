"""The skills list and each skill's versions list. Versions live in their skill's stream, so
one projection keeps both: a version's row takes its tenant and skill id from the skill's
row, which this same projection wrote first, and the skill's ``latest_version_id`` follows
its versions' rows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from application.views import iso
from domain.skills import Skill
from projections.queries import ListQuery, Page, ReadModels
from projections.resources import Handler, ResourceProjection, Row
from projections.skill_tables import skill_versions, skills


class SkillsProjection(ResourceProjection):
    name = "skills"
    table = skills
    tables = (skills, skill_versions)
    created_event = Skill.Created

    def handlers(self) -> dict[type, Handler]:
        return {
            Skill.VersionCreated: self._version_created,
            Skill.VersionDeleted: self._version_deleted,
            Skill.Deleted: self._deleted,
        }

    def created(self, conn: sa.Connection, event: Any) -> Row:
        stamp = iso(event.timestamp)
        doc = {
            "type": "skill",
            "id": event.skill_id,
            "display_name": event.display_name,
            "latest_version_id": None,  # set by the version recorded with it
            "source": {"type": event.source},
            "created_at": stamp,
            "updated_at": stamp,
        }
        return {"id": event.skill_id, "doc": doc, "source": event.source}

    def _version_created(self, conn: sa.Connection, event: Any) -> None:
        skill = conn.execute(
            sa.select(self.table.c.id, self.table.c.tenant_id).where(self.table.c.stream_id == str(event.originator_id))
        ).first()
        if skill is None:
            return
        stamp = iso(event.timestamp)
        doc = {
            "type": "skill_version",
            "id": event.version_id,
            "skill_id": skill.id,
            "name": event.name,
            "description": event.description,
            "created_at": stamp,
        }
        conn.execute(
            sa.insert(skill_versions).values(
                id=event.version_id, stream_id=str(event.originator_id), tenant_id=skill.tenant_id,
                skill_id=skill.id, created_at=stamp, archived=False, doc=doc,
            )  # fmt: skip
        )
        self.patch(conn, event, lambda row: row | {"latest_version_id": event.version_id, "updated_at": stamp})

    def _version_deleted(self, conn: sa.Connection, event: Any) -> None:
        conn.execute(sa.delete(skill_versions).where(skill_versions.c.id == event.version_id))
        newest = conn.execute(
            sa.select(skill_versions.c.id)
            .where(skill_versions.c.stream_id == str(event.originator_id))
            .order_by(skill_versions.c.created_at.desc(), skill_versions.c.id.desc())
            .limit(1)
        ).first()
        latest = newest.id if newest else None
        stamp = iso(event.timestamp)
        self.patch(conn, event, lambda row: row | {"latest_version_id": latest, "updated_at": stamp})

    def _deleted(self, conn: sa.Connection, event: Any) -> None:
        stream = str(event.originator_id)
        conn.execute(sa.delete(skill_versions).where(skill_versions.c.stream_id == stream))
        conn.execute(sa.delete(self.table).where(self.table.c.stream_id == stream))


class SkillReadModels(ReadModels):
    def skills(self, tenant_id: str, query: ListQuery, source: str | None = None) -> Page:
        extra = [skills.c.source == source] if source else []
        return self._resources(skills, tenant_id, query, *extra)

    def skill_versions(self, tenant_id: str, skill_id: str, query: ListQuery) -> Page:
        return self._resources(skill_versions, tenant_id, query, skill_versions.c.skill_id == skill_id)
