"""The case states: the pure domain's :class:`CaseState` as jsonb in ``case_state``, kept by
the kit's :class:`~services.kit.aggregates.AggregateStore`, with the time the overdue timer
next has something to say about each case (``next_check_at``, computed from the state in the
same upsert).

A batch of commands loads the states it names row-locked; the overdue timer takes the due
ones with ``SKIP LOCKED``, so it never waits for a batch. Both lock ``case_state`` rows before
they touch the projection, so they never deadlock each other.
"""
from __future__ import annotations

from datetime import datetime

import asyncpg

from services.grid.domain import CaseState, next_check_at
from services.kit.aggregates import AggregateStore

CASES = AggregateStore(CaseState, table="case_state", id_column="case_id",
                       columns={"next_check_at": ("timestamptz", next_check_at)})


async def due_for_check(conn: asyncpg.Connection, now: datetime, limit: int = 500) -> dict[str, tuple[int, CaseState]]:
    """(version, state) of cases whose ``next_check_at`` has come, locked; those another
    transaction holds are skipped, and so are those that moved on before they were locked."""
    ids = await conn.fetch(
        "SELECT case_id FROM case_state WHERE next_check_at <= $1 ORDER BY next_check_at LIMIT $2", now, limit)
    found = await CASES.read(conn, [r["case_id"] for r in ids], skip_locked=True)
    return {i: (v, s) for i, (v, s) in found.items() if (at := next_check_at(s)) is not None and at <= now}
