"""Grading a turn's work against a defined outcome (spec §A.7).

The grader is a separate model request on the session's own provider: it sees the rubric
and the agent's work since the outcome was defined (not the description, not the rest of
the conversation) and answers with a JSON verdict."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from application.ports import ModelRequest

GRADER_SYSTEM = (
    "You grade an AI agent's work against a rubric. Judge only whether the work meets the "
    "rubric. Answer with one JSON object and nothing else: "
    '{"result": "satisfied" | "needs_revision" | "failed", "explanation": "<one or two sentences>"}. '
    'Use "failed" only when the rubric cannot apply to this work at all.'
)
VERDICTS = ("satisfied", "needs_revision", "failed")
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class Verdict:
    result: str
    explanation: str


def rubric_text(rubric: dict[str, Any] | None) -> str:
    rubric = rubric or {}
    if rubric.get("type") == "text":
        return str(rubric.get("content") or "")
    # Files arrive with the files API; until then a file rubric cannot be read.
    return f"[rubric file {rubric.get('file_id')} is not available on this server]"


def grading_request(rubric: dict[str, Any] | None, work: str) -> ModelRequest:
    text = f"Rubric:\n{rubric_text(rubric)}\n\nThe agent's work:\n{work or '(the agent wrote nothing)'}"
    return ModelRequest(
        system=GRADER_SYSTEM,
        messages=[{"role": "user", "content": [{"type": "text", "text": text}]}],
        tools=[],
        max_tokens=1024,
    )


def read_verdict(content: list[dict[str, Any]]) -> Verdict:
    """The grader's JSON verdict; an answer that is not one is a ``failed`` evaluation."""
    answer = "".join(block.get("text", "") for block in content if block.get("type") == "text")
    found = _JSON_OBJECT.search(answer)
    try:
        parsed = orjson.loads(found.group(0)) if found else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or parsed.get("result") not in VERDICTS:
        return Verdict("failed", "the grader's answer was not a verdict: " + answer[:200])
    return Verdict(str(parsed["result"]), str(parsed.get("explanation") or ""))
