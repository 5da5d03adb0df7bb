from application.runtime.knowledge import KnowledgeBaseNote, SkillNote
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


def test_skills_and_knowledge_bases_follow_the_mounts_and_are_absent_when_none() -> None:
    assert compose("Be brief.", [], (), ()) == "Be brief."
    prompt = compose(
        "Be brief.",
        [{"type": "file", "file_id": "file_1", "mount_path": "/mnt/session/uploads/file_1"}],
        skills=[SkillNote("pdf", "Reads and fills\nPDF forms"), SkillNote("skill_undescribed")],
        knowledge=[KnowledgeBaseNote("kb_1", "Handbook", "How we work"), KnowledgeBaseNote("kb_2", "Prices")],
    )
    assert prompt is not None
    agent, files, skills, knowledge = prompt.split("\n\n")
    assert (agent, files.splitlines()[0]) == ("Be brief.", "# Files")
    assert skills.splitlines() == [
        "# Skills",
        "Skills are in the skills/ folder of your working directory; read a skill's SKILL.md before using it.",
        "- pdf: Reads and fills PDF forms",
        "- skill_undescribed",
    ]
    assert knowledge.splitlines() == [
        "# Knowledge",
        "Search these knowledge bases with the knowledge_search tool:",
        "- kb_1 Handbook: How we work",
        "- kb_2 Prices",
    ]
    assert compose(None, [], knowledge=[KnowledgeBaseNote("kb_1", "Handbook")]) == (
        "# Knowledge\nSearch these knowledge bases with the knowledge_search tool:\n- kb_1 Handbook"
    )
