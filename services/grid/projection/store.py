"""The case states (the pure domain's :class:`CaseState` as jsonb) and their overdue check times.

Loaded row-locked for a batch of commands, and selected by the overdue timer with
``FOR UPDATE SKIP LOCKED`` so several workers never check the same case at once. Both paths
lock ``case_state`` rows before they touch the projection, so they never deadlock each other.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Mapping

import asyncpg

from services.grid.domain import CaseState, next_check_at


async def load_states(conn: asyncpg.Connection, case_ids: Iterable[str]) -> dict[str, CaseState]:
    """The states of the cases that exist, locked until the transaction ends (sorted lock order)."""
    ids = sorted(set(case_ids))
    if not ids:
        return {}
    rows = await conn.fetch(
        "SELECT case_id, state FROM case_state WHERE case_id = ANY($1::text[]) ORDER BY case_id FOR UPDATE", ids)
    return {r["case_id"]: CaseState.model_validate(r["state"]) for r in rows}


async def save_states(conn: asyncpg.Connection, states: Mapping[str, CaseState]) -> None:
    """Insert or replace states, with the time the overdue timer should next look at each."""
    if not states:
        return
    ids = sorted(states)
    await conn.execute(
        """INSERT INTO case_state (case_id, version, state, next_check_at, updated_at)
           SELECT id, v, s::jsonb, n, now()
           FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[]) AS t(id, v, s, n)
           ON CONFLICT (case_id) DO UPDATE SET version = EXCLUDED.version, state = EXCLUDED.state,
                                               next_check_at = EXCLUDED.next_check_at, updated_at = now()""",
        ids, [states[i].version for i in ids], [states[i].model_dump_json() for i in ids],
        [next_check_at(states[i]) for i in ids])


async def due_for_check(conn: asyncpg.Connection, now: datetime, limit: int = 500) -> dict[str, CaseState]:
    """Cases whose ``next_check_at`` has come, locked; those another worker holds are skipped."""
    rows = await conn.fetch(
        """SELECT case_id, state FROM case_state WHERE next_check_at <= $1
           ORDER BY next_check_at LIMIT $2 FOR UPDATE SKIP LOCKED""", now, limit)
    return {r["case_id"]: CaseState.model_validate(r["state"]) for r in rows}
