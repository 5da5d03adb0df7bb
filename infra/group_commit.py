"""Group commit: appends that arrive while another is being written share the next write.

Each caller hands in its own group of rows and blocks. One of the waiting callers (the
leader) takes every group queued so far and writes them with ``write_groups`` — on both
back ends one transaction, one lock acquisition, one commit — then wakes the others with
their own outcome and hands the lead to the first caller that queued meanwhile. Every group
keeps its own optimistic-concurrency check (``write_groups`` reports a refused group as
``None``), so a conflict fails only its own append; and every caller returns only after the
write it rode in has committed.

A group may be queued before the one it follows has committed (``EventsourcingEventStore.
save_pending``): it names, per stream, the last version it builds on. When the queued group
that wrote that version is refused, so is this one — in the same write, or before the next —
so a refused save never leaves its successors standing on a version that is not recorded.

A caller alone pays nothing for this but a lock; under load the batches grow by themselves
to as many appends as arrive during one commit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from eventsourcing.persistence import IntegrityError, StoredEvent

R = TypeVar("R")
# Bounds the statement (and its lock hold) however many callers pile up.
MAX_GROUPS = 256

# ``write_groups(groups, after)`` → per group its notification ids, or None when that group
# was refused: its optimistic check failed, or a group it is ``after`` (pairs of indexes
# ``(later, earlier)`` into ``groups``) was refused. Any exception fails the whole batch.
WriteGroups = Callable[[Sequence[Sequence[R]], Sequence[tuple[int, int]]], Sequence[Sequence[int] | None]]
# A row's stream and version.
Position = Callable[[R], tuple[Hashable, int]]


class Ticket(Generic[R]):
    """One caller's place in the queue; ``wait`` for its outcome."""

    __slots__ = ("_owner", "rows", "after", "woken", "done", "leads", "ids", "error")

    def __init__(self, owner: GroupCommit[R], rows: Sequence[R], after: list[Ticket[R]]) -> None:
        self._owner = owner
        self.rows = rows
        self.after = after
        self.woken = threading.Event()
        self.done = False
        self.leads = False
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None

    @property
    def refused(self) -> bool:
        return self.done and (self.error is not None or self.ids is None)

    def wait(self) -> Sequence[int]:
        """The notification ids once committed. Raises ``IntegrityError`` when this group's
        rows conflict with recorded ones (or follow rows that were refused), or whatever
        failed the whole write."""
        if not self.leads:
            self.woken.wait()
        if self.leads:
            self._owner._lead()
        if self.error is not None:
            raise self.error
        if self.ids is None:
            raise IntegrityError("an event of this append was recorded by another writer first")
        return self.ids


class GroupCommit(Generic[R]):
    def __init__(self, write_groups: WriteGroups[R], position: Position[R], max_groups: int = MAX_GROUPS) -> None:
        self._write_groups = write_groups
        self._position = position
        self._max_groups = max_groups
        self._lock = threading.Lock()
        self._queue: list[Ticket[R]] = []
        # Per stream, the last queued, not yet written group that wrote it, and its version.
        self._tails: dict[Hashable, tuple[Ticket[R], int]] = {}
        self._leader_busy = False
        self.batches = 0  # how many writes were made (tests and benches read it)

    def append(self, rows: Sequence[R]) -> Sequence[int]:
        """Writes ``rows`` (one save) with whatever else is queued (see ``Ticket.wait``)."""
        return self.enqueue(rows).wait()

    def enqueue(self, rows: Sequence[R]) -> Ticket[R]:
        """Queues ``rows`` behind those already queued; they are written once some caller
        waits (a caller that queued while no write was under way leads the next one, when
        it waits: it must wait soon)."""
        first: dict[Hashable, int] = {}
        last: dict[Hashable, int] = {}
        for row in rows:
            stream, version = self._position(row)
            first[stream] = min(version, first.get(stream, version))
            last[stream] = max(version, last.get(stream, version))
        with self._lock:
            after = []
            for stream, version in first.items():
                tail = self._tails.get(stream)
                if tail is not None and tail[1] == version - 1:
                    after.append(tail[0])
            ticket = Ticket(self, rows, after)
            for stream, version in last.items():
                self._tails[stream] = (ticket, version)
            self._queue.append(ticket)
            if not self._leader_busy:
                self._leader_busy = True
                ticket.leads = True
        return ticket

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[: self._max_groups], self._queue[self._max_groups :]
        # A group after one refused in an earlier write is refused without being written, and
        # so is one after such a group (in queue order: a group follows only earlier ones).
        writing: list[Ticket[R]] = []
        skipped: set[int] = set()
        for ticket in batch:
            if any(earlier.refused or id(earlier) in skipped for earlier in ticket.after):
                skipped.add(id(ticket))
            else:
                writing.append(ticket)
        index = {id(ticket): n for n, ticket in enumerate(writing)}
        after = [
            (n, index[id(earlier)]) for n, ticket in enumerate(writing) for earlier in ticket.after if id(earlier) in index
        ]
        try:
            outcomes = self._write_groups([ticket.rows for ticket in writing], after) if writing else []
            if len(outcomes) != len(writing):
                raise RuntimeError(f"{len(outcomes)} outcomes for {len(writing)} groups")
        except BaseException as error:  # every caller of the batch learns it
            for ticket in writing:
                ticket.error = error
        else:
            for ticket, ids in zip(writing, outcomes, strict=True):
                ticket.ids = ids
        finally:
            self.batches += 1
            with self._lock:
                for ticket in batch:
                    ticket.done = True
                    for row in ticket.rows:
                        stream = self._position(row)[0]
                        tail = self._tails.get(stream)
                        if tail is not None and tail[0] is ticket:
                            del self._tails[stream]
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._leader_busy = False
                else:
                    successor.leads = True
            for ticket in batch:
                ticket.woken.set()
            if successor is not None:
                successor.woken.set()


class GroupCommitted:
    """What both recorders share: saves go through ``self.group_commit``, which each
    recorder builds over its own ``_write_groups``."""

    group_commit: GroupCommit[StoredEvent]

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        if kwargs.get("tracking") is not None:
            raise NotImplementedError("this recorder records no tracking positions")
        return self.group_commit.append(stored_events)

    def enqueue_events(self, stored_events: Sequence[StoredEvent]) -> Ticket[StoredEvent]:
        return self.group_commit.enqueue(stored_events)
