"""The read model behind a session's resource list (SQLite and PostgreSQL): the resources a
session started with and those attached later, in attachment order, rotations and removals
applied, a deleted session's rows gone, and a rebuild giving the same rows."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from application.session_resources import stamp, stamp_all
from domain.sessions import Session
from projections import tables
from projections.queries import ListQuery, ReadModels
from projections.resources import all_projections
from projections.runner import ReadModelRunner

MOMENT = datetime(2026, 11, 30, 12, tzinfo=UTC)


def session(session_id: str, *sent: dict) -> Session:
    resources = [entry.resource for entry in stamp_all(list(sent), MOMENT)]
    return Session(
        session_id=session_id, tenant_id="t", agent={"id": "agent_1", "version": 1}, environment_id="env_1",
        details={"resources": resources} if resources else {},
    )


def listed(engine: sa.Engine, session_id: str, limit: int = 1000) -> list[dict]:
    return ReadModels(engine).session_resources(session_id, ListQuery(limit=limit, descending=False)).data


def test_the_list_follows_the_sessions_resource_events_and_survives_a_rebuild(backend) -> None:  # noqa: ANN001
    store, engine = backend
    kept = session("sesn_projected00001", {"type": "file", "file_id": "file_a"}, {"type": "github_repository", "url": "https://github.com/acme/tools"})
    store.save(kept)
    first, repository = kept.resources
    added = stamp({"type": "memory_store", "memory_store_id": "memstore_1"}, MOMENT).resource
    kept.add_resource(added)
    kept.rotate_resource_token(repository["id"])
    kept.remove_resource(first["id"])
    later = stamp({"type": "file", "file_id": "file_b"}, MOMENT).resource
    kept.add_resource(later)
    store.save(kept)
    gone = session("sesn_projected00002", {"type": "file", "file_id": "file_c"})
    gone.add_resource(stamp({"type": "file", "file_id": "file_d"}, MOMENT).resource)
    gone.delete("sevt_gone")
    store.save(gone)
    empty = session("sesn_projected00003")
    store.save(empty)

    runner = ReadModelRunner(engine, store, all_projections())
    runner.setup()
    runner.catch_up()
    rows = listed(engine, kept.session_id)
    assert rows == kept.resources  # the aggregate's own list, in order, the rotation included
    assert [row["id"] for row in rows] == [repository["id"], added["id"], later["id"]]
    assert rows[0]["updated_at"] > rows[0]["created_at"]
    assert listed(engine, gone.session_id) == [] and listed(engine, empty.session_id) == []
    # The sessions list shows the same resources.
    with engine.connect() as conn:
        doc = conn.execute(sa.select(tables.sessions.c.doc).where(tables.sessions.c.id == kept.session_id)).scalar_one()
    assert doc["resources"] == kept.resources

    # Paging walks the same list.
    page = ReadModels(engine).session_resources(kept.session_id, ListQuery(limit=2, descending=False))
    assert page.data == rows[:2] and page.next_page and page.prev_page is None
    rest = ReadModels(engine).session_resources(kept.session_id, ListQuery(limit=2, page=page.next_page, descending=False))
    assert rest.data == rows[2:] and rest.next_page is None

    with engine.begin() as conn:  # vandalise the read model
        conn.execute(sa.update(tables.session_resources).values(doc={"id": "wrong"}))
    runner.rebuild("session_resources")
    assert listed(engine, kept.session_id) == rows
