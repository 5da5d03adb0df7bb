"""The one shape every use case that changes an aggregate takes: load the caller's own
aggregate → run the command on it → save, re-run on a fresh load when another writer won the
race. A use case then states only its command.

The first attempt runs on the copy this process holds from its own last save of the
aggregate, when it holds one (no read of the store): a copy another process made stale fails
the save's optimistic check, and the re-run loads afresh. A command that records nothing or
refuses decided without that check, so it is re-run on a fresh load, whose outcome stands.

Domain errors raised by a command are not caught here: they reach the HTTP edge, which maps
them to a status once for every context."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.errors import Conflict, Invalid, NotFound
from application.ports import EventStore
from application.retry import Pending, retry_on_race
from application.tenancy import Principal
from domain.ids import looks_like, stream_id

A = TypeVar("A", bound=Aggregate)
View = dict[str, Any]


@dataclass(frozen=True)
class Kind(Generic[A]):
    """What a family of aggregates is called in public ids and error messages."""

    aggregate: type[A]
    prefix: str
    noun: str
    # An aggregate that is gone (a deleted session) is a 404 to commands and reads alike.
    gone: Callable[[A], bool] = field(default=lambda aggregate: False)


@dataclass(frozen=True)
class Alongside:
    """What a command returns when it changed other aggregates that must be saved in the
    same atomic append as the one it was run on (e.g. the claim on a unique name)."""

    aggregates: tuple[Aggregate, ...]


@dataclass(frozen=True)
class Written:
    """A command's result: the aggregate as the API shows it, and the global position of the
    write (``None`` when the command recorded nothing), which read-your-writes waits for."""

    view: View
    position: int | None


def load_as(store: EventStore, aggregate_id: UUID, kind: type[A], current: bool = False) -> A | None:
    """The stream's aggregate if it is a ``kind``; None when there is no such stream or it
    holds something else (no tenant check: for lookups that are not a caller's request).
    ``current``: the copy held from this process's last save when there is one."""
    try:
        aggregate = store.load_current(aggregate_id) if current else store.load(aggregate_id)
    except NotFound:
        return None
    return aggregate if isinstance(aggregate, kind) else None


class Commands(Generic[A]):
    """Load, create and change aggregates of one kind on behalf of a caller."""

    def __init__(self, store: EventStore, kind: Kind[A], render: Callable[[A], View]) -> None:
        self._store = store
        self._kind = kind
        self._render = render

    def load(self, who: Principal, public_id: str, current: bool = False) -> A:
        """The caller's aggregate. Anything else — a malformed id, no such stream, another
        type, another tenant — is the same 404, so ids of other tenants cannot be probed."""
        kind = self._kind
        missing = NotFound(f"{kind.noun} {public_id!r} not found")
        if not looks_like(kind.prefix, public_id):
            raise missing
        aggregate = load_as(self._store, stream_id(public_id), kind.aggregate, current)
        if aggregate is None or getattr(aggregate, "tenant_id", None) != who.tenant_id:
            raise missing
        if kind.gone(aggregate):
            raise missing
        return aggregate

    def check_live(self, who: Principal, public_id: str) -> None:
        """That the caller has this object and it is not archived: for an object another one
        names (a task's board, its agent). Missing is the usual 404; archived is a 400."""
        if getattr(self.load(who, public_id), "archived_at", None) is not None:
            raise Invalid(f"{self._kind.noun} {public_id} is archived")

    def view(self, who: Principal, public_id: str) -> View:
        return self._render(self.load(who, public_id))

    def create(self, aggregate: A, *alongside: Aggregate) -> Written:
        return Written(self._render(aggregate), self._store.save(aggregate, *alongside))

    def change(
        self,
        who: Principal,
        public_id: str,
        command: Callable[[A], object],
        render: Callable[[A], View] | None = None,
    ) -> Written:
        """Runs ``command`` on the caller's aggregate and saves what it recorded (with any
        aggregates it returns ``Alongside``, in one append); a lost race re-runs it on fresh
        state."""
        render = render or self._render
        held = [True]

        def run(current: bool) -> Written | Pending[Written]:
            aggregate = self.load(who, public_id, current)
            outcome = command(aggregate)
            alongside = outcome.aggregates if isinstance(outcome, Alongside) else ()
            view = render(aggregate)
            if not aggregate.pending_events and not any(other.pending_events for other in alongside):
                return Written(view, None)
            pending = self._store.save_pending(aggregate, *alongside)

            def finish() -> Written:
                position = pending.wait()
                # Held only once recorded: the next command on this stream starts from here.
                with suppress(Exception):
                    self._store.hold(aggregate)
                return Written(view, position)

            # Nothing may raise from here to the wait: a queued save nobody waits for would
            # hold up every save queued behind it.
            return Pending(finish)

        def attempt() -> Written | Pending[Written]:
            if not held[0]:
                return run(False)
            held[0] = False  # a retry after a lost race loads afresh
            try:
                outcome = run(True)
            except Exception as error:
                if isinstance(error, Conflict) and error.retryable:
                    raise  # a lost race (the held copy was stale): retried afresh
                return run(False)
            if isinstance(outcome, Written):
                return run(False)  # nothing recorded: decided without the optimistic check
            return outcome

        return retry_on_race(attempt, key=public_id)
