"""Session resources through the official SDK (``client.beta.sessions.resources``) on a real
server, SQLite and PostgreSQL: add, list (paged), retrieve, token rotation, delete; the
resources a session was created with are the same list; 404s for what is not the caller's;
bad input refused with the error envelope; a repository token never stored or answered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types.beta.sessions import (
    BetaManagedAgentsFileResource,
    BetaManagedAgentsGitHubRepositoryResource,
    BetaManagedAgentsMemoryStoreResource,
)

from application.api_keys import generate_key
from tests.e2e.test_model_cards import _stored_bytes
from tests.support.server import RunningServer

REPOSITORY = "https://github.com/acme/tools.git"
CREATE_TOKEN = "ghp_token-given-at-create-5551212"
ROTATED_TOKEN = "ghp_token-given-on-update-8675309"


def session_with(client: anthropic.Anthropic, resources: list[dict[str, Any]] | None = None) -> str:
    agent = client.beta.agents.create(name="mounter", model="claude-opus-4-7")
    environment = client.beta.environments.create(name="mounts")
    kwargs: dict[str, Any] = {"resources": resources} if resources is not None else {}
    return client.beta.sessions.create(agent=agent.id, environment_id=environment.id, **kwargs).id


def upload(client: anthropic.Anthropic, name: str = "receipt.pdf") -> str:
    """A real file: a session mounts only files its caller has."""
    return client.beta.files.upload(file=(name, b"%PDF-1.7 receipt", "application/pdf")).id


def memory_store(client: anthropic.Anthropic, name: str = "Team notes", description: str = "") -> str:
    """A real store: a session mounts only stores its caller has."""
    return client.beta.memory_stores.create(name=name, description=description).id


def add(http: httpx.Client, session_id: str, body: Any) -> httpx.Response:
    """The kinds the SDK's typed ``add`` does not send (it sends files only) go in plain JSON."""
    return http.post(f"/v1/sessions/{session_id}/resources", json=body)


def assert_refused(response: httpx.Response, status: int = 400) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["message"], body


@pytest.fixture
def stranger(server: RunningServer) -> Iterator[anthropic.Anthropic]:
    key = generate_key()
    server.platform.services.api_keys.issue(key, name="other", tenant_id="other-tenant")
    with anthropic.Anthropic(base_url=server.base_url, api_key=key, max_retries=0, timeout=20) as client:
        yield client


def test_add_list_retrieve_rotate_and_delete(client: anthropic.Anthropic, http: httpx.Client) -> None:
    session_id = session_with(
        client, [{"type": "github_repository", "url": REPOSITORY, "authorization_token": CREATE_TOKEN}]
    )
    resources = client.beta.sessions.resources
    (repository,) = list(resources.list(session_id))
    assert isinstance(repository, BetaManagedAgentsGitHubRepositoryResource)
    assert repository.mount_path == "/workspace/tools" and repository.id.startswith("sesrsc_")

    file_id = upload(client)
    uploaded = resources.add(session_id, file_id=file_id, type="file")
    assert isinstance(uploaded, BetaManagedAgentsFileResource)
    assert uploaded.id.startswith("sesrsc_") and uploaded.mount_path == f"/mnt/session/uploads/{file_id}"
    assert uploaded.created_at == uploaded.updated_at
    receipt = resources.add(session_id, file_id=upload(client), type="file", mount_path="/uploads/receipt.pdf")
    assert receipt.mount_path == "/uploads/receipt.pdf"
    notes = memory_store(client, "Team Notes!", "What the team agreed")
    memory = add(http, session_id, {"type": "memory_store", "memory_store_id": notes, "instructions": "notes"})
    assert memory.status_code == 200, memory.text
    assert memory.json()["access"] == "read_write" and memory.json()["instructions"] == "notes"
    # Name and description are snapshots; the mount path comes from the name.
    assert memory.json()["name"] == "Team Notes!" and memory.json()["description"] == "What the team agreed"
    assert memory.json()["mount_path"] == "/mnt/memory/team-notes"

    # Attachment order, the same whole list with or without paging, the same as the session shows.
    order = [repository.id, uploaded.id, receipt.id, memory.json()["id"]]
    assert [item.id for item in resources.list(session_id)] == order
    first = resources.list(session_id, limit=1)
    assert [item.id for item in first.data] == order[:1] and first.next_page
    assert [item.id for item in resources.list(session_id, limit=3).data] == order[:3]
    assert [item.id for item in resources.list(session_id, limit=1)] == order
    assert [item.id for item in client.beta.sessions.retrieve(session_id).resources] == order
    listed_session = next(item for item in client.beta.sessions.list() if item.id == session_id)
    assert [item.id for item in listed_session.resources] == order
    fetched = resources.retrieve(memory.json()["id"], session_id=session_id)
    assert isinstance(fetched, BetaManagedAgentsMemoryStoreResource) and fetched.memory_store_id == notes
    assert fetched.mount_path == "/mnt/memory/team-notes" and fetched.name == "Team Notes!"
    assert resources.retrieve(uploaded.id, session_id=session_id) == uploaded

    # Rotating a repository's token moves updated_at and shows no token.
    rotated = http.post(f"/v1/sessions/{session_id}/resources/{repository.id}", json={"authorization_token": ROTATED_TOKEN})
    assert rotated.status_code == 200, rotated.text
    assert ROTATED_TOKEN not in rotated.text and "authorization_token" not in rotated.json()
    again = resources.update(repository.id, session_id=session_id, authorization_token=ROTATED_TOKEN + "2")
    assert isinstance(again, BetaManagedAgentsGitHubRepositoryResource)
    assert again.created_at == repository.created_at and again.updated_at > repository.updated_at
    assert again.url == REPOSITORY and again.mount_path == repository.mount_path
    assert resources.retrieve(repository.id, session_id=session_id) == again
    assert [item.updated_at for item in resources.list(session_id) if item.id == repository.id] == [again.updated_at]

    deleted = resources.delete(uploaded.id, session_id=session_id)
    assert deleted.id == uploaded.id and deleted.type == "session_resource_deleted"
    remaining = [repository.id, receipt.id, memory.json()["id"]]
    assert [item.id for item in resources.list(session_id)] == remaining
    assert [item.id for item in client.beta.sessions.retrieve(session_id).resources] == remaining
    with pytest.raises(anthropic.NotFoundError):
        resources.retrieve(uploaded.id, session_id=session_id)
    with pytest.raises(anthropic.NotFoundError):
        resources.delete(uploaded.id, session_id=session_id)
    # Its mount path is free again.
    assert resources.add(session_id, file_id=file_id, type="file").mount_path == uploaded.mount_path


def test_what_is_not_the_callers_is_a_404(
    client: anthropic.Anthropic, stranger: anthropic.Anthropic, http: httpx.Client
) -> None:
    session_id = session_with(client, [{"type": "file", "file_id": upload(client)}])
    other_session = session_with(client, [{"type": "github_repository", "url": REPOSITORY}])
    (mine,) = client.beta.sessions.resources.list(session_id)
    (theirs,) = client.beta.sessions.resources.list(other_session)
    stranger_resources = stranger.beta.sessions.resources

    calls = [
        lambda resources: resources.list(session_id),
        lambda resources: resources.add(session_id, file_id="file_x", type="file"),
        lambda resources: resources.retrieve(mine.id, session_id=session_id),
        lambda resources: resources.update(theirs.id, session_id=other_session, authorization_token="ghp_x"),
        lambda resources: resources.delete(mine.id, session_id=session_id),
    ]
    for call in calls:
        with pytest.raises(anthropic.NotFoundError):
            call(stranger_resources)
    # Nothing the stranger did changed anything.
    assert [item.id for item in client.beta.sessions.resources.list(session_id)] == [mine.id]
    assert client.beta.sessions.resources.retrieve(theirs.id, session_id=other_session) == theirs

    resources = client.beta.sessions.resources
    for unknown in ("sesn_000000000000000000000000", "nope"):
        with pytest.raises(anthropic.NotFoundError):
            resources.list(unknown)
        with pytest.raises(anthropic.NotFoundError):
            resources.add(unknown, file_id="file_x", type="file")
        with pytest.raises(anthropic.NotFoundError):
            resources.retrieve(mine.id, session_id=unknown)
    # A resource is found only through its own session.
    for resource_id in ("sesrsc_000000000000000000000000", "nope", theirs.id):
        with pytest.raises(anthropic.NotFoundError):
            resources.retrieve(resource_id, session_id=session_id)
        with pytest.raises(anthropic.NotFoundError):
            resources.update(resource_id, session_id=session_id, authorization_token="ghp_x")
        with pytest.raises(anthropic.NotFoundError):
            resources.delete(resource_id, session_id=session_id)
    # A deleted session's resources are gone with it.
    assert http.delete(f"/v1/sessions/{session_id}").status_code == 200
    with pytest.raises(anthropic.NotFoundError):
        resources.list(session_id)
    with pytest.raises(anthropic.NotFoundError):
        resources.retrieve(mine.id, session_id=session_id)
    with pytest.raises(anthropic.NotFoundError):
        resources.add(session_id, file_id="file_y", type="file")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"type": "folder", "file_id": "f"},
        {"type": "file"},
        {"type": "file", "file_id": ""},
        {"type": "file", "file_id": 7},
        {"type": "file", "file_id": "f", "mount_path": "uploads/relative"},
        {"type": "file", "file_id": "f", "mount_path": "/"},
        {"type": "file", "file_id": "f", "mount_path": "/a/../etc/passwd"},
        {"type": "file", "file_id": "f", "mount_path": "/a//b"},
        {"type": "file", "file_id": "f", "mount_path": "/a/\nb"},
        {"type": "file", "file_id": "f", "surprise": True},
        {"type": "github_repository"},
        {"type": "github_repository", "url": "ftp://example.com/r.git"},
        {"type": "github_repository", "url": REPOSITORY, "authorization_token": ""},
        {"type": "github_repository", "url": REPOSITORY, "authorization_token": "has space"},
        {"type": "github_repository", "url": REPOSITORY, "checkout": {"type": "tag", "name": "v1"}},
        {"type": "github_repository", "url": REPOSITORY, "checkout": {"type": "commit", "sha": "abc"}},
        {"type": "memory_store"},
        {"type": "memory_store", "memory_store_id": "memstore_1", "access": "write_only"},
        {"type": "memory_store", "memory_store_id": "memstore_1", "instructions": "x" * 4097},
        {"type": "memory_store", "memory_store_id": "memstore_1", "mount_path": "/mnt/memory/mine"},
        [],
        "file",
    ],
)
def test_a_malformed_resource_is_refused(client: anthropic.Anthropic, http: httpx.Client, body: Any) -> None:
    session_id = session_with(client)
    assert_refused(add(http, session_id, body))
    assert http.get(f"/v1/sessions/{session_id}/resources").json()["data"] == []


def test_resources_that_cannot_live_together_are_refused(client: anthropic.Anthropic, http: httpx.Client) -> None:
    store = memory_store(client)
    session_id = session_with(
        client,
        [
            {"type": "github_repository", "url": REPOSITORY, "checkout": {"type": "branch", "name": "main"}},
            {"type": "memory_store", "memory_store_id": store, "access": "read_only"},
        ],
    )
    resources = client.beta.sessions.resources
    (repository, memory) = resources.list(session_id)
    # The repository's default mount path is taken; so is the memory store (with or without a slash).
    for body in (
        {"type": "file", "file_id": "f", "mount_path": "/workspace/tools"},
        {"type": "file", "file_id": "f", "mount_path": "/workspace/tools/"},
        {"type": "github_repository", "url": "https://github.com/other/tools"},
        {"type": "memory_store", "memory_store_id": store},
    ):
        assert_refused(add(http, session_id, body))
    # Only a repository has a token to rotate; the body holds the token and nothing else.
    assert_refused(http.post(f"/v1/sessions/{session_id}/resources/{memory.id}", json={"authorization_token": "ghp_x"}))
    for body in ({}, {"authorization_token": ""}, {"authorization_token": 7}, {"authorization_token": "t", "url": "x"}):
        assert_refused(http.post(f"/v1/sessions/{session_id}/resources/{repository.id}", json=body))
    for params in ({"limit": "0"}, {"limit": "x"}, {"page": "nonsense"}):
        assert_refused(http.get(f"/v1/sessions/{session_id}/resources", params=params))
    assert [item.id for item in resources.list(session_id)] == [repository.id, memory.id]
    assert resources.retrieve(repository.id, session_id=session_id) == repository

    # A session is created under the same rules.
    with pytest.raises(anthropic.BadRequestError):
        session_with(client, [{"type": "file", "file_id": "a", "mount_path": "/x"}, {"type": "file", "file_id": "b", "mount_path": "/x"}])
    with pytest.raises(anthropic.BadRequestError):
        session_with(client, [{"type": "memory_store", "memory_store_id": memory_store(client, f"s{n}")} for n in range(9)])

    # An archived session's resources no longer change.
    assert http.post(f"/v1/sessions/{session_id}/archive").status_code == 200
    assert_refused(add(http, session_id, {"type": "file", "file_id": "late"}))
    assert_refused(http.delete(f"/v1/sessions/{session_id}/resources/{memory.id}"))
    assert_refused(http.post(f"/v1/sessions/{session_id}/resources/{repository.id}", json={"authorization_token": "t"}))
    assert [item.id for item in resources.list(session_id)] == [repository.id, memory.id]


def test_memory_stores_mount_by_name_and_must_be_the_callers_and_live(
    client: anthropic.Anthropic, stranger: anthropic.Anthropic, http: httpx.Client
) -> None:
    first, second, third = (memory_store(client, name) for name in ("User prefs", "user_prefs", "  !!  "))
    session_id = session_with(client, [{"type": "memory_store", "memory_store_id": first}])
    added = [add(http, session_id, {"type": "memory_store", "memory_store_id": store}) for store in (second, third)]
    assert [response.status_code for response in added] == [200, 200], [response.text for response in added]
    paths = [resource.mount_path for resource in client.beta.sessions.resources.list(session_id)]
    # One slug, two stores: the later one gets a suffix; a name with no letters mounts by its id.
    assert paths == ["/mnt/memory/user-prefs", "/mnt/memory/user-prefs-2", f"/mnt/memory/{third.replace('_', '-').lower()}"]
    # Created with two stores of one slug, too.
    both = client.beta.sessions.retrieve(
        session_with(client, [{"type": "memory_store", "memory_store_id": store} for store in (second, first)])
    )
    assert [resource.mount_path for resource in both.resources] == ["/mnt/memory/user-prefs", "/mnt/memory/user-prefs-2"]
    # Later edits to the store do not change an attached resource.
    client.beta.memory_stores.update(first, name="Renamed", description="new")
    (kept, *_rest) = client.beta.sessions.resources.list(session_id)
    assert kept.name == "User prefs" and kept.description == "" and kept.mount_path == "/mnt/memory/user-prefs"

    theirs = stranger.beta.memory_stores.create(name="theirs").id
    for unknown in (theirs, "memstore_000000000000000000000000"):
        assert_refused(add(http, session_id, {"type": "memory_store", "memory_store_id": unknown}), 404)
        with pytest.raises(anthropic.NotFoundError):
            session_with(client, [{"type": "memory_store", "memory_store_id": unknown}])
    archived = memory_store(client, "old")
    client.beta.memory_stores.archive(archived)
    assert_refused(add(http, session_id, {"type": "memory_store", "memory_store_id": archived}))
    with pytest.raises(anthropic.BadRequestError):
        session_with(client, [{"type": "memory_store", "memory_store_id": archived}])
    assert len(client.beta.sessions.resources.list(session_id).data) == 3


def test_a_repository_token_is_never_stored_or_answered(
    server: RunningServer, client: anthropic.Anthropic, http: httpx.Client
) -> None:
    session_id = session_with(
        client, [{"type": "github_repository", "url": REPOSITORY, "authorization_token": CREATE_TOKEN}]
    )
    added = add(
        http, session_id, {"type": "github_repository", "url": "https://github.com/acme/more", "authorization_token": CREATE_TOKEN + "b"}
    )
    assert added.status_code == 200, added.text
    rotated = client.beta.sessions.resources.update(added.json()["id"], session_id=session_id, authorization_token=ROTATED_TOKEN)
    answers = [
        added.text,
        rotated.model_dump_json(),
        http.get(f"/v1/sessions/{session_id}/resources").text,
        http.get(f"/v1/sessions/{session_id}").text,
        http.get("/v1/sessions").text,
    ]
    stored = _stored_bytes(server)
    assert b"acme/more" in stored  # the check reads the stores the resources went to
    for token in (CREATE_TOKEN, CREATE_TOKEN + "b", ROTATED_TOKEN):
        assert all(token not in answer for answer in answers)
        assert token.encode() not in stored
