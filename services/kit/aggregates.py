"""Aggregate state as jsonb documents in the kit's ``aggregates`` table.

For services whose pure domain works on a frozen pydantic state: load the states a batch
needs in one query (row-locked, so the HTTP path and the consumer never interleave on one
aggregate), run decide/evolve in memory, save the changed ones in one statement.
"""
from __future__ import annotations

from typing import Iterable, TypeVar

import asyncpg
from pydantic import BaseModel

S = TypeVar("S", bound=BaseModel)


async def load(conn: asyncpg.Connection, kind: str, ids: Iterable[str], model: type[S], *,
               lock: bool = True) -> dict[str, S]:
    """States of the given ids that exist (missing ids are absent from the result)."""
    ids = sorted(set(ids))  # a fixed lock order avoids deadlocks between concurrent batches
    if not ids:
        return {}
    rows = await conn.fetch(
        "SELECT id, state FROM aggregates WHERE kind = $1 AND id = ANY($2::text[]) ORDER BY id"
        + (" FOR UPDATE" if lock else ""), kind, ids)
    return {r["id"]: model.model_validate(r["state"]) for r in rows}


async def save(conn: asyncpg.Connection, kind: str, states: dict[str, BaseModel]) -> None:
    """Insert or replace states (one statement). ``version`` counts saves."""
    if not states:
        return
    ids = list(states)
    await conn.execute(
        """INSERT INTO aggregates (kind, id, version, state, updated_at)
           SELECT $1, id, 1, state::jsonb, now() FROM unnest($2::text[], $3::text[]) AS t(id, state)
           ON CONFLICT (kind, id) DO UPDATE SET state = EXCLUDED.state, version = aggregates.version + 1,
                                                updated_at = now()""",
        kind, ids, [states[i].model_dump_json() for i in ids])
