"""The MemoryStore aggregate's rules: path syntax, one memory per path, preconditions,
archived stores, and which versions can be redacted."""

from __future__ import annotations

import pytest

from domain.errors import Archived, InvalidState
from domain.memory import (
    HeadVersion,
    MemoryPathConflict,
    MemoryPreconditionFailed,
    MemoryStore,
    mount_slug,
    path_problem,
)


def store() -> MemoryStore:
    return MemoryStore(memory_store_id="memstore_abcdefgh", tenant_id="t", name="n", description="", metadata={})


@pytest.mark.parametrize(
    "path",
    ["/a", "/a/b.md", "/ü/ñ", "/" + "/".join(["s"] * 20), "/" + "x" * 1023, "/a b/c-d_e.f", "/CaSe"],
)
def test_good_paths(path: str) -> None:
    assert path_problem(path) is None


@pytest.mark.parametrize(
    "path",
    ["", "a", "/", "/a/", "//a", "/a/./b", "/a/../b", "/a\x00", "/a\u200b", "/a\u2028", "/e\u0301",
     "/" + "/".join(["s"] * 21), "/" + "é" * 512],
)  # fmt: skip
def test_bad_paths(path: str) -> None:
    assert path_problem(path) is not None


def test_paths_are_unique_and_freed_by_rename_and_delete() -> None:
    memories = store()
    memories.create_memory("mem_a", "memver_1", "/x", "s1", "h1", 1, None)
    with pytest.raises(MemoryPathConflict):
        memories.create_memory("mem_b", "memver_2", "/x", "s2", "h2", 1, None)
    assert memories.modify_memory("mem_a", "memver_3", "/y", "s3", "h1", 1, None, None)
    memories.create_memory("mem_b", "memver_4", "/x", "s4", "h4", 1, None)
    with pytest.raises(MemoryPathConflict):
        memories.modify_memory("mem_b", "memver_5", "/y", "s5", "h4", 1, None, None)
    memories.delete_memory("mem_a", "memver_6", None, None)
    memories.modify_memory("mem_b", "memver_7", "/y", "s7", "h4", 1, None, None)
    assert memories.paths == {"/y": "mem_b"}


def test_preconditions_unchanged_writes_and_archived_stores() -> None:
    memories = store()
    memories.create_memory("mem_a", "memver_1", "/x", "s1", "h1", 1, None)
    with pytest.raises(MemoryPreconditionFailed):
        memories.modify_memory("mem_a", "memver_2", "/x", "s2", "h2", 1, None, "other")
    with pytest.raises(MemoryPreconditionFailed):
        memories.delete_memory("mem_a", "memver_2", None, "other")
    assert not memories.modify_memory("mem_a", "memver_2", "/x", "s2", "h1", 1, None, "h1")  # nothing changed
    memories.archive()
    with pytest.raises(Archived):
        memories.create_memory("mem_b", "memver_3", "/z", "s3", "h3", 1, None)
    with pytest.raises(Archived):
        memories.update("m", "", {})
    with pytest.raises(InvalidState):
        memories.redact_version("memver_1", None)  # the head
    memories.delete_memory("mem_a", "memver_4", None, "h1")  # allowed when archived
    assert memories.redact_version("memver_1", None) and not memories.redact_version("memver_1", None)


def test_the_head_version_cannot_be_redacted_older_ones_can() -> None:
    memories = store()
    memories.create_memory("mem_a", "memver_1", "/x", "s1", "h1", 1, None)
    memories.modify_memory("mem_a", "memver_2", "/x", "s2", "h2", 1, None, None)
    with pytest.raises(HeadVersion):
        memories.redact_version("memver_2", None)
    assert memories.redact_version("memver_1", {"type": "api_actor", "api_key_id": "k"})
    replayed = None
    for event in memories.collect_events():
        replayed = event.mutate(replayed)
    assert isinstance(replayed, MemoryStore) and replayed.versions["memver_1"].redacted


def test_the_mount_slug_of_a_name() -> None:
    assert mount_slug("Team Notes (2026)") == "team-notes-2026-"
    assert mount_slug("ünï  code__x") == "-n-code-x"
