"""The projection rows a unit of work writes: each changed case's ``cases`` row, the events of
its ``case_history`` and the ``patrols`` logged, gathered while the batch is handled and
written once, when the kit flushes the unit of work (one statement per table).

Each row is written as of the time its message was handled (the unit of work's ``now`` when
the change was gathered): a worker's batch has one time, and a rebuild, which replays many of
the worker's batches in one, gives each message the time the worker handled it. So a case's
``updated_at`` and ``overdue`` do not depend on how messages were grouped into batches.

:class:`ProjectionRows` is a participant of the unit of work, attached after the batch's case
states so that it is flushed after them: a case's ``case_state`` row is locked before its
projection rows are written, on every path. A message undone by its savepoint takes its rows
with it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence, Union

import asyncpg

from schemas.grid import CaseEvent, CaseFeedback, PatrolLogged, ReportCase
from services.grid.domain import CaseState, OpenCase
from services.kit.uow import UnitOfWork

from .cases import HistoryEntry, append_history, logged_patrols, open_cases_near_each, upsert_cases, upsert_patrols
from .store import CASES

# the state after the event, the event, its id, and when it was handled
_CaseChange = tuple[CaseState, Union[CaseEvent, CaseFeedback], str, datetime]


class ProjectionRows:
    """The batch's projection rows, in the order they arose (see the module docstring)."""

    def __init__(self) -> None:
        self._rows: list[_CaseChange | tuple[PatrolLogged, datetime]] = []
        self._flushed = 0  # rows before this index are written
        self._checked: set[str] = set()  # patrol ids whose presence in the table is known
        self._patrols: set[str] = set()  # patrol ids logged, before or in this batch
        self._near: dict[str, list[OpenCase]] = {}  # a new report's case id -> open cases near it

    @classmethod
    def of(cls, uow: UnitOfWork) -> "ProjectionRows":
        """The unit of work's rows (created on first use, after its case states)."""
        CASES.of(uow)
        return uow.attach(cls, cls)

    def case(self, state: CaseState, event: CaseEvent | CaseFeedback, event_id: str, now: datetime) -> None:
        """``event`` (published as ``event_id``), handled at ``now``, led to ``state``: its
        history entry and case row."""
        self._rows.append((state, event, event_id, now))

    def patrol(self, event: PatrolLogged, now: datetime) -> None:
        self._rows.append((event, now))
        self._patrols.add(event.patrol_id)

    async def load_patrols(self, conn: asyncpg.Connection, patrol_ids: Iterable[str]) -> None:
        """Find out which of ``patrol_ids`` are logged already (one query for those not known)."""
        missing = set(patrol_ids) - self._checked
        if missing:
            self._patrols |= await logged_patrols(conn, missing)
            self._checked |= missing

    async def load_near(self, conn: asyncpg.Connection, reports: Sequence[ReportCase], radius_m: float) -> None:
        """Look up the open cases near each of ``reports`` in the projection, in one query (the
        batch step's: what :meth:`near` then answers). The projection does not change within the
        batch (its rows are written at the flush); what the batch changes is in its case states,
        which the handler lays over these."""
        found = await open_cases_near_each(conn, [(r.category, r.location.lat, r.location.lon) for r in reports],
                                           radius_m)
        self._near.update(zip((r.case_id for r in reports), found))

    async def near(self, conn: asyncpg.Connection, report: ReportCase, radius_m: float) -> list[OpenCase]:
        """The open cases near ``report`` in the projection: loaded with the batch's other reports
        by :meth:`load_near`, else now."""
        if report.case_id not in self._near:
            await self.load_near(conn, [report], radius_m)
        return self._near[report.case_id]

    async def patrol_logged(self, conn: asyncpg.Connection, patrol_id: str) -> bool:
        await self.load_patrols(conn, [patrol_id])
        return patrol_id in self._patrols

    # -- participant --------------------------------------------------------------------
    def mark(self) -> tuple[int, int]:
        return len(self._rows), self._flushed

    def rollback(self, mark: tuple[int, int]) -> None:
        n, self._flushed = mark
        for row in self._rows[n:]:
            if isinstance(row[0], PatrolLogged):
                self._patrols.discard(row[0].patrol_id)
        del self._rows[n:]

    async def flush(self, uow: UnitOfWork) -> None:
        rows = self._rows[self._flushed:]
        if not rows:
            return
        patrols = [r for r in rows if isinstance(r[0], PatrolLogged)]
        changes = [r for r in rows if not isinstance(r[0], PatrolLogged)]
        latest = {state.case_id: (state, now) for state, _, _, now in changes}
        await upsert_cases(uow.conn, latest.values())
        await append_history(uow.conn, [_history(state, ev, event_id, now) for state, ev, event_id, now in changes])
        await upsert_patrols(uow.conn, patrols)
        self._flushed = len(self._rows)


def _history(state: CaseState, event: CaseEvent | CaseFeedback, event_id: str, now: datetime) -> HistoryEntry:
    return HistoryEntry(case_id=state.case_id, seq=state.version, event_id=event_id, type=event.TYPE,
                        occurred_at=event.occurred_at or now, data=event.model_dump(mode="json", exclude_none=True))
