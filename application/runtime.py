"""The session runtime: takes a session's turn when a user message awaits a reply.

Each session is driven by one worker at a time; a turn that races a concurrent append is
retried on the fresh stream, so no event is lost and none is written twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from application.errors import Conflict, NotFound
from application.ids import new_id
from application.ports import EventStore
from application.retry import retry_on_race
from domain.errors import DomainError
from domain.ids import stream_id
from domain.sessions import AgentMessageSent, Session, UserMessageSent

log = logging.getLogger("agentry.runtime")


class ModelProvider(Protocol):
    name: str

    def reply(self, agent: dict[str, Any], transcript: list[dict[str, Any]]) -> list[dict[str, Any]]: ...


class SessionRuntime:
    def __init__(self, store: EventStore, provider: ModelProvider) -> None:
        self._store = store
        self._provider = provider

    def take_turns(self, session_id: str) -> None:
        """Answers every user message that awaits a reply, one turn at a time."""
        while True:
            session = self._load(session_id)
            if session is None or not session.awaits_reply:
                return
            reply_seq = session.last_user_message_seq
            if session.status != "running" and not self._mark_running(session_id, reply_seq):
                return
            transcript = self._transcript(session_id)
            try:
                # The agent as the session pinned it; only tools and MCP servers change, between turns.
                content = self._provider.reply(session.agent, transcript)
                outcome: list[tuple[str, dict[str, Any]]] = [("agent.message", {"content": content})]
            except Exception as error:  # a provider failure ends the turn, not the worker
                log.warning("model provider %s failed: %s", self._provider.name, type(error).__name__)
                outcome = [
                    (
                        "session.error",
                        {
                            "error": {
                                "type": "model_request_failed_error",
                                "message": f"the model provider failed: {type(error).__name__}",
                                "retry_status": {"type": "terminal"},
                            }
                        },
                    )
                ]
            if not self._answer(session_id, outcome, reply_seq=reply_seq):
                return

    def _mark_running(self, session_id: str, reply_seq: int) -> bool:
        def attempt() -> bool:
            session = self._load(session_id)
            if session is None or not session.awaits_reply or session.answered(reply_seq):
                return False
            session.start_turn(new_id("sevt"))
            self._store.save(session)
            return True

        return self._retry(session_id, attempt)

    def _answer(self, session_id: str, outcome: list[tuple[str, dict[str, Any]]], reply_seq: int) -> bool:
        """Records the turn unless another worker already answered it, so a turn is never
        answered twice."""

        def attempt() -> bool:
            session = self._load(session_id)
            if session is None or session.deleted or session.status == "terminated":
                return False
            events = [(event_type, new_id("sevt"), payload) for event_type, payload in outcome]
            if not session.answer(reply_seq, events, idle_event_id=new_id("sevt")):
                return False
            self._store.save(session)
            return True

        return self._retry(session_id, attempt)

    @staticmethod
    def _retry(session_id: str, attempt: Callable[[], bool]) -> bool:
        try:
            return retry_on_race(attempt, key=session_id)
        except Conflict:
            log.error("gave up appending to session %s: it kept changing under the turn", session_id)
            return False
        except DomainError as refusal:  # archived or terminated mid-turn: nothing to answer
            log.info("session %s no longer takes the turn: %s", session_id, refusal)
            return False

    def _load(self, session_id: str) -> Session | None:
        try:
            session = self._store.load(stream_id(session_id))
        except NotFound:
            return None
        return session if isinstance(session, Session) else None

    def _transcript(self, session_id: str) -> list[dict[str, Any]]:
        turns = []
        for recorded in self._store.read_stream(stream_id(session_id)):
            if isinstance(recorded, (UserMessageSent, AgentMessageSent)):
                role = "user" if isinstance(recorded, UserMessageSent) else "assistant"
                turns.append({"role": role, "content": recorded.payload.get("content", [])})
        return turns


class TurnDispatcher:
    """Runs turns on a small pool; a session already being driven is only marked again."""

    def __init__(self, runtime: SessionRuntime, workers: int = 4) -> None:
        self._runtime = runtime
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agentry-turn")
        self._lock = threading.Lock()
        self._active: dict[str, bool] = {}

    def submit(self, session_id: str) -> None:
        with self._lock:
            if session_id in self._active:
                self._active[session_id] = True
                return
            self._active[session_id] = False
        self._pool.submit(self._drive, session_id)

    def _drive(self, session_id: str) -> None:
        while True:
            try:
                self._runtime.take_turns(session_id)
            except Exception:
                log.exception("session turn failed for %s", session_id)
            with self._lock:
                if not self._active.get(session_id):
                    self._active.pop(session_id, None)
                    return
                self._active[session_id] = False

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
