"""Deeds (道德日记) in PostgreSQL: the domain's Deed as jsonb plus columns to query by."""
from __future__ import annotations

import asyncpg

from services.points.domain import Deed


async def load(conn: asyncpg.Connection, deed_id: str, *, for_update: bool = True) -> Deed | None:
    row = await conn.fetchrow("SELECT state FROM deeds WHERE deed_id = $1" + (" FOR UPDATE" if for_update else ""),
                              deed_id)
    return Deed.model_validate(row["state"]) if row else None


async def save(conn: asyncpg.Connection, deed: Deed) -> None:
    await conn.execute(
        """INSERT INTO deeds (deed_id, account_id, community_id, category, status, points, transfer_id, refused_reason,
                              state, submitted_at, reviewed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)
           ON CONFLICT (deed_id) DO UPDATE SET status = EXCLUDED.status, points = EXCLUDED.points,
               transfer_id = EXCLUDED.transfer_id, refused_reason = EXCLUDED.refused_reason, state = EXCLUDED.state,
               reviewed_at = EXCLUDED.reviewed_at, updated_at = now()""",
        deed.deed_id, deed.account_id, deed.community_id, deed.category, deed.status.value, deed.points,
        deed.transfer_id, deed.refused_reason, deed.model_dump(mode="json"), deed.submitted_at, deed.reviewed_at)


async def approved_uncredited(conn: asyncpg.Connection, limit: int) -> list[str]:
    """Approved deeds whose credit was refused (over a cap), to credit again later."""
    rows = await conn.fetch(
        "SELECT deed_id FROM deeds WHERE status = 'approved' ORDER BY reviewed_at, deed_id LIMIT $1", limit)
    return [r["deed_id"] for r in rows]
