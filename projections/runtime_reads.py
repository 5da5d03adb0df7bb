"""What the session runtime reads of the read models: the knowledge bases an agent searches
with its ``knowledge_search`` tool, and the name and description of its skills for the system
prompt (the runtime's ports are in ``application.runtime.knowledge``).

Every read is scoped to the session's tenant: an agent's ``knowledge_bases`` were checked when
it was written, but a base may since have been deleted, and an id alone never reaches another
tenant's rows."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from application.runtime.knowledge import KnowledgeBaseNote, KnowledgeHit, SkillNote
from projections.knowledge_search import KnowledgeSearch
from projections.knowledge_tables import knowledge_bases
from projections.skill_tables import skill_versions


class AgentKnowledge:
    """``KnowledgeSearcher`` over the knowledge read models: hybrid search where the vector
    index is at hand, keywords alone where it is not."""

    def __init__(self, search: KnowledgeSearch, engine: sa.Engine) -> None:
        self._search = search
        self._engine = engine

    def bases(self, tenant_id: str, knowledge_base_ids: Sequence[str]) -> dict[str, KnowledgeBaseNote]:
        if not knowledge_base_ids:
            return {}
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(knowledge_bases.c.id, knowledge_bases.c.doc).where(
                    knowledge_bases.c.tenant_id == tenant_id, knowledge_bases.c.id.in_(list(knowledge_base_ids))
                )
            ).all()
        return {row.id: KnowledgeBaseNote(row.id, row.doc.get("name") or row.id, row.doc.get("description")) for row in rows}

    def search(self, tenant_id: str, knowledge_base_ids: Sequence[str], query: str, limit: int) -> list[KnowledgeHit]:
        """One search per base, merged by fused score (each base's scores are reciprocal
        ranks, so they compare across bases)."""
        mode = self._search.effective("hybrid") or "keyword"
        hits = [
            KnowledgeHit(
                knowledge_base_id, chunk.document_id, chunk.title, chunk.chunk_index, chunk.text, score,
                chunk.start, chunk.end, chunk.page, chunk.heading,
            )  # fmt: skip
            for knowledge_base_id in knowledge_base_ids
            for chunk, score, _ in self._search.passages(tenant_id, knowledge_base_id, query, limit, mode)
        ]
        hits.sort(key=lambda hit: (-hit.score, hit.knowledge_base_id, hit.document_id, hit.chunk_index))
        return hits[:limit]


class SkillNotes:
    """``SkillCatalogue`` over the skills read model: a version's name and description."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def describe(self, tenant_id: str, skill_id: str, version: str | None) -> SkillNote | None:
        select = sa.select(skill_versions.c.doc).where(
            skill_versions.c.tenant_id == tenant_id, skill_versions.c.skill_id == skill_id
        )
        if version and version != "latest":
            select = select.where(skill_versions.c.id == version)
        else:
            select = select.order_by(skill_versions.c.created_at.desc(), skill_versions.c.id.desc())
        with self._engine.connect() as conn:
            row = conn.execute(select.limit(1)).first()
        if row is None:
            return None
        return SkillNote(str(row.doc.get("name") or skill_id), row.doc.get("description"))
