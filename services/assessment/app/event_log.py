"""The unit of work's new event log entries, recorded and folded into the counters in one step
per batch.

A kit participant (see :mod:`services.kit.uow`): handlers :meth:`~EventLogWriter.append`
the events of a batch; the kit flushes them once, when it flushes the unit of work, in the
transaction of the inbox. A flush inserts the entries into ``event_log`` (a repeated source and
id is skipped) and folds the new ones into ``facts`` and ``refs`` (:func:`fold_events`). A close
flushes earlier, so that its own batch's events count. A message undone by its savepoint takes
its entries with it (and puts back those an undone early flush wrote).
"""
from __future__ import annotations

from typing import Sequence

import asyncpg

from services.assessment.domain.facts.refs import MemoryLookup
from services.assessment.domain.history import StoredEvent
from services.assessment.domain.incremental import Advance, advance
from services.assessment.projection import store
from services.kit.db import FairPool
from services.kit.locks import advisory_lock
from services.kit.uow import UnitOfWork

from . import metrics as m

FOLD_LOCK = "assessment:facts"
"""One fold at a time (workers of one group, the start-up catch-up): a late event unwinds what
others folded."""


class _Recording(dict):
    """The refs a fold step runs on: those loaded from ``refs``, recording the keys read that
    were not loaded (the step runs again once they are)."""

    def __init__(self, loaded: dict, known: set) -> None:
        super().__init__(loaded)
        self.known = known
        self.missing: set = set()

    def get(self, key, default=None):
        if key not in self.known and not dict.__contains__(self, key):
            self.missing.add(key)
        return dict.get(self, key, default)


async def fold_events(conn: asyncpg.Connection, new: Sequence[StoredEvent]) -> Advance | None:
    """Fold events just recorded (not folded yet) into the counters and refs: the folded events
    that occurred after the earliest of them are unwound and folded again after it
    (:func:`~services.assessment.domain.incremental.advance`). Reads only the refs the step
    reads (loaded on demand: a step that read an unloaded ref runs again with it)."""
    if not new:
        return None
    await advisory_lock(conn, FOLD_LOCK)
    tail = await store.folded_after(conn, min(e.sort_key for e in new))
    loaded: dict = {}
    known: set = set()
    while True:
        refs = _Recording(loaded, known)
        try:
            step = advance(MemoryLookup(refs=refs), tail, new)
        except Exception:
            if not refs.missing:
                raise
        if not refs.missing:
            break
        loaded.update(await store.load_refs(conn, refs.missing))
        known |= refs.missing
    final = dict(refs)
    touched = known | {k for _, undo in tail for k, _ in undo}
    put = [r for k, r in final.items() if loaded.get(k) != r]
    removed = [k for k in touched if k not in final]
    await store.save_fold(conn, step.deltas, put, removed, step.applied)
    if tail:
        m.EVENTS_REFOLDED.inc(len(tail))
    return step


async def record_and_fold(conn: asyncpg.Connection, events: Sequence[StoredEvent]) -> list[StoredEvent]:
    """Record events in the log and fold those that were new; return them."""
    recorded = await store.record_events(conn, events)
    await fold_events(conn, recorded)
    return recorded


async def fold_unfolded(pool: FairPool, chunk: int = 5000) -> int:
    """Fold the log rows not folded yet (recorded before the counters were kept, or after the
    counters were emptied to rebuild them), oldest first, one transaction per chunk."""
    done = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            await advisory_lock(conn, FOLD_LOCK)
            rows = await store.unfolded(conn, chunk)
            if not rows:
                return done
            await fold_events(conn, rows)
            done += len(rows)


class EventLogWriter:
    """Entries waiting to be written, in the order they were appended."""

    def __init__(self) -> None:
        self.pending: list[StoredEvent] = []
        self._flushed: list[list[StoredEvent]] = []  # what each flush wrote, oldest first

    @classmethod
    def of(cls, uow: UnitOfWork) -> "EventLogWriter":
        """The unit of work's writer (created on first use)."""
        return uow.attach(cls, cls)

    def append(self, event: StoredEvent) -> None:
        self.pending.append(event)

    # -- participant ----------------------------------------------------------------------

    def mark(self) -> tuple[int, int]:
        return len(self._flushed), len(self.pending)

    def rollback(self, mark: tuple[int, int]) -> None:
        flushes, pending = mark
        while len(self._flushed) > flushes:  # an undone flush: its rows are unwritten again
            self.pending[:0] = self._flushed.pop()
        del self.pending[pending:]

    async def flush(self, uow: UnitOfWork) -> None:
        if not self.pending:
            return
        events, self.pending = self.pending, []
        self._flushed.append(events)
        recorded = await record_and_fold(uow.conn, events)
        new = [e for e in recorded if e.payload.service() != uow.service]

        def observe() -> None:
            for e in new:
                m.EVENTS_RECORDED.labels(e.topic).inc()
            if new:
                m.applied(max(e.time for e in new))

        uow.after_commit(observe)
