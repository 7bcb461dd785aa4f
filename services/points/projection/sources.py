"""Facts of other services the points service keeps until the event that decides an award:
an order's category/community/minutes, and a grid case's report until it is registered or
dismissed (in either order of arrival)."""
from __future__ import annotations

from typing import Any

import asyncpg


async def remember_order(conn: asyncpg.Connection, order_id: str, *, category: str | None = None,
                         community_id: str | None = None, service_minutes: int | None = None) -> None:
    await conn.execute(
        """INSERT INTO order_facts (order_id, category, community_id, service_minutes) VALUES ($1, $2, $3, $4)
           ON CONFLICT (order_id) DO UPDATE SET
             category = COALESCE(EXCLUDED.category, order_facts.category),
             community_id = COALESCE(EXCLUDED.community_id, order_facts.community_id),
             service_minutes = COALESCE(EXCLUDED.service_minutes, order_facts.service_minutes)""",
        order_id, category, community_id, service_minutes)


async def order_facts(conn: asyncpg.Connection, order_id: str) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT category, community_id, service_minutes FROM order_facts WHERE order_id = $1",
                              order_id)
    return {k: v for k, v in dict(row).items() if v is not None} if row else {}


async def report(conn: asyncpg.Connection, case_id: str) -> asyncpg.Record | None:
    """The case's row, locked (so a report and its registration never race)."""
    await conn.execute("INSERT INTO grid_reports (case_id) VALUES ($1) ON CONFLICT DO NOTHING", case_id)
    return await conn.fetchrow("SELECT * FROM grid_reports WHERE case_id = $1 FOR UPDATE", case_id)


async def save_report(conn: asyncpg.Connection, case_id: str, *, reported: dict | None = None,
                      outcome: str | None = None, registered: dict | None = None, awarded: bool | None = None) -> None:
    await conn.execute(
        """UPDATE grid_reports SET reported = COALESCE($2::jsonb, reported), outcome = COALESCE($3, outcome),
               registered = COALESCE($4::jsonb, registered), awarded = COALESCE($5, awarded), updated_at = now()
           WHERE case_id = $1""", case_id, reported, outcome, registered, awarded)
