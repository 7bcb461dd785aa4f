"""The unit of work's new event log entries, written in one insert per batch.

A kit participant (see :mod:`services.kit.uow`): handlers :meth:`~EventLogWriter.append`
the events of a batch; the kit flushes them once, when it flushes the unit of work. A close
flushes earlier, so that it replays what its own batch recorded before it. A message undone
by its savepoint takes its entries with it (and puts back those an undone early flush wrote).
"""
from __future__ import annotations

from services.assessment.domain.history import StoredEvent
from services.assessment.projection import store
from services.kit.uow import UnitOfWork

from . import metrics as m


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
        new = [e for e in await store.record_events(uow.conn, events) if e.payload.service() != uow.service]

        def observe() -> None:
            for e in new:
                m.EVENTS_RECORDED.labels(e.topic).inc()
            if new:
                m.applied(max(e.time for e in new))

        uow.after_commit(observe)
