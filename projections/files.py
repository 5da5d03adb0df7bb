"""The file list (``GET /v1/files``): one row per live file, with the scope it lists under
and the key of its bytes (which a delete asks about: may the blob go?)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from application.files import render
from domain.files import File
from projections.queries import ListQuery, Page, ReadModels
from projections.resources import Handler, ResourceProjection, Row
from projections.tables import resource_table

files = resource_table(
    "files",
    sa.Column("scope_id", sa.String(64), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=False),
)
sa.Index("rm_files_by_scope", files.c.tenant_id, files.c.scope_id, files.c.created_at, files.c.id)
sa.Index("rm_files_by_blob", files.c.sha256)


class FilesProjection(ResourceProjection):
    name = "files"
    table = files
    tables = (files,)
    created_event = File.Uploaded

    def handlers(self) -> dict[type, Handler]:
        return {File.Deleted: self._deleted}

    def created(self, conn: sa.Connection, event: Any) -> Row:
        doc = render(_uploaded(event))
        scope = event.scope or {}
        return {"id": event.file_id, "doc": doc, "scope_id": scope.get("id"), "sha256": event.sha256}

    def _deleted(self, conn: sa.Connection, event: Any) -> None:
        conn.execute(sa.delete(files).where(files.c.stream_id == str(event.originator_id)))


def _uploaded(event: Any) -> File:
    """The file as its first event made it, to render the row with the API's own view."""
    file = event.mutate(None)
    assert isinstance(file, File)
    return file


class FileReadModels(ReadModels):
    # The SDK documents at most 100 ids per listing.
    MOST_IDS = 100

    def files(self, tenant_id: str, query: ListQuery, scope_id: str | None = None, ids: list[str] | None = None) -> Page:
        extra = [files.c.scope_id == scope_id] if scope_id else []
        if ids:
            # One page, newest first; ids that name nothing (deleted, another tenant's) drop out.
            unique = list(dict.fromkeys(ids))[: self.MOST_IDS]
            conditions = [*self._resource_conditions(files, tenant_id, ListQuery()), files.c.id.in_(unique), *extra]
            select = sa.select(files.c.doc).where(*conditions).order_by(files.c.created_at.desc(), files.c.id.desc())
            with self._engine.connect() as conn:
                return Page([row.doc for row in conn.execute(select)], None, None)
        return self._resources(files, tenant_id, query, *extra)

    def named_elsewhere(self, sha256: str, file_id: str) -> bool:
        select = sa.select(files.c.id).where(files.c.sha256 == sha256, files.c.id != file_id).limit(1)
        with self._engine.connect() as conn:
            return conn.execute(select).first() is not None
