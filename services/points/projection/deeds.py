"""Deeds (道德日记) in PostgreSQL: the domain's :class:`Deed` kept by the kit's aggregate
store (jsonb state with a version), with the columns queries and the credit timer filter on."""
from __future__ import annotations

from typing import Sequence

import asyncpg

from services.kit.aggregates import AggregateStore
from services.points.domain import Deed

DEEDS: AggregateStore[Deed] = AggregateStore(Deed, table="deeds", id_column="deed_id", columns={
    "account_id": ("text", lambda d: d.account_id),
    "community_id": ("text", lambda d: d.community_id),
    "category": ("text", lambda d: d.category),
    "status": ("text", lambda d: d.status.value),
    "points": ("int", lambda d: d.points),
    "transfer_id": ("text", lambda d: d.transfer_id),
    "refused_reason": ("text", lambda d: d.refused_reason),
    "submitted_at": ("timestamptz", lambda d: d.submitted_at),
    "reviewed_at": ("timestamptz", lambda d: d.reviewed_at),
})


async def approved_uncredited(conn: asyncpg.Connection, limit: int) -> list[str]:
    """Approved deeds whose credit was refused (over a cap), to credit again later."""
    rows = await conn.fetch(
        "SELECT deed_id FROM deeds WHERE status = 'approved' ORDER BY reviewed_at, deed_id LIMIT $1", limit)
    return [r["deed_id"] for r in rows]


async def approved_uncredited_of(conn: asyncpg.Connection, account_ids: Sequence[str]) -> list[str]:
    """The deeds of :func:`approved_uncredited` that belong to ``account_ids``, as stored, in
    its order."""
    rows = await conn.fetch(
        "SELECT deed_id FROM deeds WHERE status = 'approved' AND account_id = ANY($1::text[]) "
        "ORDER BY reviewed_at, deed_id", list(account_ids))
    return [r["deed_id"] for r in rows]
