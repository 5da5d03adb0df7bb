"""Group commit: appends that arrive while another is being written share the next write.

Each caller hands in its own group of rows and blocks. One of the waiting callers (the
leader) takes every group queued so far and writes them with ``write_groups`` — on both
back ends one transaction, one lock acquisition, one commit — then wakes the others with
their own outcome and hands the lead to the first caller that queued meanwhile. Every group
keeps its own optimistic-concurrency check (``write_groups`` reports a refused group as
``None``), so a conflict fails only its own append; and every caller returns only after the
write it rode in has committed.

A caller alone pays nothing for this but a lock; under load the batches grow by themselves
to as many appends as arrive during one commit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from eventsourcing.persistence import IntegrityError

R = TypeVar("R")
# Bounds the statement (and its lock hold) however many callers pile up.
MAX_GROUPS = 256

# ``write_groups(groups)`` → per group its notification ids, or None when that group's
# optimistic check failed. Any exception it raises fails every group of the batch.
WriteGroups = Callable[[Sequence[Sequence[R]]], Sequence[Sequence[int] | None]]


class _Waiter(Generic[R]):
    __slots__ = ("rows", "woken", "leads", "ids", "error")

    def __init__(self, rows: Sequence[R]) -> None:
        self.rows = rows
        self.woken = threading.Event()
        self.leads = False
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[R]):
    def __init__(self, write_groups: WriteGroups[R], max_groups: int = MAX_GROUPS) -> None:
        self._write_groups = write_groups
        self._max_groups = max_groups
        self._lock = threading.Lock()
        self._queue: list[_Waiter[R]] = []
        self._leader_busy = False
        self.batches = 0  # how many writes were made (tests and benches read it)

    def append(self, rows: Sequence[R]) -> Sequence[int]:
        """Writes ``rows`` (one aggregate-version group) with whatever else is queued; the
        notification ids once committed. Raises ``IntegrityError`` when this group's rows
        conflict with recorded ones, or whatever failed the whole write."""
        me = _Waiter(rows)
        with self._lock:
            self._queue.append(me)
            if not self._leader_busy:
                self._leader_busy = True
                me.leads = True
        if not me.leads:
            me.woken.wait()
        if me.leads:
            self._lead()
        if me.error is not None:
            raise me.error
        if me.ids is None:
            raise IntegrityError("an event of this append was recorded by another writer first")
        return me.ids

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[: self._max_groups], self._queue[self._max_groups :]
        try:
            outcomes = self._write_groups([waiter.rows for waiter in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(outcomes)} outcomes for {len(batch)} groups")
        except BaseException as error:  # every caller of the batch learns it
            for waiter in batch:
                waiter.error = error
        else:
            for waiter, ids in zip(batch, outcomes, strict=True):
                waiter.ids = ids
        finally:
            self.batches += 1
            with self._lock:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._leader_busy = False
                else:
                    successor.leads = True
            for waiter in batch:
                waiter.woken.set()
            if successor is not None:
                successor.woken.set()
