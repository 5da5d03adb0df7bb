"""The rules an upload must meet to be a skill, and the Skill aggregate's invariants (no I/O)."""

from __future__ import annotations

import pytest

from domain.errors import InvalidState
from domain.skills import (
    MAX_FILES,
    MAX_TOTAL_BYTES,
    BadUpload,
    FrontMatter,
    Skill,
    SkillName,
    SkillNameTaken,
    UnknownVersion,
    check_display_name,
    check_paths,
    check_sizes,
    parse_front_matter,
    skill_name,
)


class TestPaths:
    def test_one_folder_with_skill_md_at_its_root(self) -> None:
        assert check_paths(["pdf/SKILL.md", "pdf/scripts/fill.py", "pdf/a b.txt"]) == "pdf"

    @pytest.mark.parametrize(
        ("paths", "says"),
        [
            ([], "files[] is required"),
            ([""], "no filename"),
            (["SKILL.md"], "top-level folder"),
            (["/pdf/SKILL.md"], "relative"),
            (["C:/pdf/SKILL.md"], "relative"),
            (["pdf/../SKILL.md"], "'..'"),
            (["pdf//SKILL.md"], "empty segments"),
            (["pdf/./SKILL.md"], "'.'"),
            (["pdf\\SKILL.md"], "control characters or any of"),
            (["pdf/SKILL.md", "pdf/SKILL.md"], "sent twice"),
            (["pdf/SKILL.md", "other/x"], "one top-level folder"),
            (["pdf/sub/SKILL.md"], "pdf/SKILL.md is missing"),
            ([f"pdf/{n}" for n in range(MAX_FILES)] + ["pdf/SKILL.md"], f"at most {MAX_FILES} files"),
            (["pdf/" + "x" * 600], "at most 512 characters"),
        ],
    )
    def test_refusals_name_the_file_and_the_rule(self, paths: list[str], says: str) -> None:
        with pytest.raises(BadUpload, match=None) as refused:
            check_paths(paths)
        assert says in str(refused.value)

    def test_sizes(self) -> None:
        check_sizes({"a/SKILL.md": 10, "a/b": MAX_TOTAL_BYTES - 10})
        with pytest.raises(BadUpload, match="total"):
            check_sizes({"a/SKILL.md": 10, "a/b": MAX_TOTAL_BYTES})


class TestFrontMatter:
    def test_flat_quoted_and_block_values(self) -> None:
        text = '---\nname: "pdf-tools"\n# a comment\ndescription: >\n  Fills forms\n  and merges them.\nlicense: MIT\n---\nbody'
        assert parse_front_matter(text) == FrontMatter("pdf-tools", "Fills forms and merges them.")
        assert parse_front_matter("\ufeff---\ndescription: 'd'\n---\n") == FrontMatter(None, "d")

    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ("# Title", "must open with YAML front matter"),
            ("---\nname: a\n", "not closed"),
            ("---\nname: a\n---\n", "needs a description"),
            ("---\njust words\n---\n", "not 'key: value'"),
            ("---\ndescription: " + "x" * 1025 + "\n---\n", "at most 1024"),
        ],
    )
    def test_refusals(self, text: str, says: str) -> None:
        with pytest.raises(BadUpload) as refused:
            parse_front_matter(text)
        assert says in str(refused.value)

    def test_the_name_is_a_kebab_slug_else_the_folder(self) -> None:
        assert skill_name(FrontMatter(None, "d"), "my-skill") == "my-skill"
        assert skill_name(FrontMatter("pdf-2", "d"), "folder") == "pdf-2"
        for bad in ("PDF", "pdf_tools", "-pdf", "pdf--tools", "x" * 65):
            with pytest.raises(BadUpload, match="kebab-case"):
                skill_name(FrontMatter(bad, "d"), "folder")

    def test_display_names(self) -> None:
        assert check_display_name("  PDF tools ") == "PDF tools"
        for bad in ("", "   ", "two\nlines", "nul\x00", "x" * 256):
            with pytest.raises(BadUpload):
                check_display_name(bad)


MANIFEST = [{"path": "pdf/SKILL.md", "blob": "0" * 64, "size": 10}]


def _skill() -> Skill:
    skill = Skill(skill_id="skill_1", tenant_id="t", display_name="PDF", name="pdf", source="custom")
    skill.add_version("skillver_1", "pdf", "first", "pdf", MANIFEST)
    return skill


class TestSkill:
    def test_latest_follows_versions(self) -> None:
        skill = _skill()
        skill.add_version("skillver_2", "pdf", "second", "pdf", MANIFEST)
        assert skill.latest_version_id == "skillver_2"
        assert skill.find_version("latest").description == "second"
        assert skill.delete_version("latest") == "skillver_2"
        assert skill.latest_version_id == "skillver_1"
        with pytest.raises(UnknownVersion):
            skill.find_version("skillver_2")

    def test_the_name_is_fixed_and_one_version_stays(self) -> None:
        skill = _skill()
        with pytest.raises(BadUpload, match="'pdf'"):
            skill.add_version("skillver_2", "other", "d", "other", MANIFEST)
        with pytest.raises(InvalidState, match="only version"):
            skill.delete_version("skillver_1")
        assert skill.delete() and not skill.delete()
        with pytest.raises(InvalidState):
            skill.add_version("skillver_3", "pdf", "d", "pdf", MANIFEST)

    def test_a_name_is_held_by_one_live_skill(self) -> None:
        claim = SkillName(tenant_id="t", name="pdf", skill_id="skill_1")
        with pytest.raises(SkillNameTaken) as taken:
            claim.claim("skill_2")
        assert taken.value.error_code == "skill_name_taken"
        assert claim.release("skill_1") and not claim.release("skill_1")
        claim.claim("skill_2")
        assert claim.holder == "skill_2"
