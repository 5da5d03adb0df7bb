from application.runtime.system_prompt import compose


def test_a_session_without_mounts_sends_the_agents_text_unchanged() -> None:
    assert compose("Be brief.", []) == "Be brief."
    assert compose(None, []) is None
    github = {"type": "github_repository", "url": "https://github.com/a/b", "mount_path": "/workspace/b"}
    assert compose("Be brief.", [github]) == "Be brief."


def test_memory_stores_and_files_are_described_after_the_agents_text() -> None:
    prompt = compose(
        "Be brief.",
        [
            {
                "type": "memory_store", "memory_store_id": "memstore_1", "access": "read_only",
                "mount_path": "/mnt/memory/team-handbook", "description": "How we work",
                "instructions": "Check here first.\nNever guess.",
            },
            {"type": "memory_store", "memory_store_id": "memstore_2", "mount_path": "/mnt/memory/prefs/"},
            {"type": "file", "file_id": "file_1", "mount_path": "/mnt/session/uploads/file_1"},
        ],
    )
    assert prompt is not None
    agent, memory, files = prompt.split("\n\n")
    assert agent == "Be brief."
    assert memory.startswith("# Memory\n")
    assert "- /mnt/memory/team-handbook/ (read-only): How we work\n  Check here first.\n  Never guess." in memory
    assert memory.endswith("- /mnt/memory/prefs/ (read-write)")
    assert files == "# Files\nFiles attached to this session (read-only):\n- /mnt/session/uploads/file_1"
