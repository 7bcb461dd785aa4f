"""Writes and loads inside a unit of work (``uow.conn``, one transaction).

Each aggregate row carries its state as jsonb (what ``decide`` reads) and the columns the
queries, the dispatch candidates and the expiry timer filter on; both are written by one
upsert, so they cannot disagree. Loads lock the row (``FOR UPDATE``) so that the HTTP
command path, the consumers and the timers never interleave on one aggregate.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import asyncpg

from schemas.envelope import CloudEvent
from services.orders.domain import (
    AWAITING_DISPATCH,
    Candidate,
    MemberState,
    OrderState,
    PostState,
    candidates_from_posts,
)

_AWAITING = sorted(s.value for s in AWAITING_DISPATCH)


# -- locks and loads ----------------------------------------------------------------------


async def lock(conn: asyncpg.Connection, table: str, key: str, ids: Iterable[str]) -> None:
    """Lock the existing rows of ``ids`` in one statement, in id order (no deadlock between batches)."""
    assert (table, key) in {("orders", "order_id"), ("members", "member_id"), ("posts", "post_id")}
    ids = sorted(set(ids))
    if ids:
        await conn.execute(
            f"SELECT 1 FROM {table} WHERE {key} = ANY($1::text[]) ORDER BY {key} FOR UPDATE", ids)


async def load_order(conn: asyncpg.Connection, order_id: str) -> OrderState | None:
    row = await conn.fetchrow("SELECT state FROM orders WHERE order_id = $1 FOR UPDATE", order_id)
    return None if row is None else OrderState.model_validate(row["state"])


async def load_member(conn: asyncpg.Connection, member_id: str, *, lock: bool = True) -> MemberState | None:
    row = await conn.fetchrow(
        "SELECT state FROM members WHERE member_id = $1" + (" FOR UPDATE" if lock else ""), member_id)
    return None if row is None else MemberState.model_validate(row["state"])


async def load_post(conn: asyncpg.Connection, post_id: str) -> PostState | None:
    row = await conn.fetchrow("SELECT state FROM posts WHERE post_id = $1 FOR UPDATE", post_id)
    return None if row is None else PostState.model_validate(row["state"])


async def order_for_case(conn: asyncpg.Connection, case_id: str) -> str | None:
    """The id of the order made from grid case ``case_id``, if any."""
    return await conn.fetchval("SELECT order_id FROM orders WHERE source_case_id = $1", case_id)


async def candidates(conn: asyncpg.Connection, community_id: str) -> tuple[Candidate, ...]:
    """Active posts in the community with each member's open order count (what dispatch chooses from).

    Reads the transaction's own writes, so orders dispatched earlier in the same batch count.
    """
    rows = await conn.fetch(
        """SELECT p.state, coalesce(l.open_orders, 0) AS open_orders
             FROM posts p LEFT JOIN member_open_orders l ON l.member_id = p.member_id
            WHERE p.community_id = $1 AND p.status = 'claimed'
            ORDER BY p.post_id""", community_id)
    posts = [PostState.model_validate(r["state"]) for r in rows]
    load = {r["state"]["member_id"]: r["open_orders"] for r in rows}
    return candidates_from_posts(posts, load)


async def waiting_orders_for(conn: asyncpg.Connection, post: PostState, limit: int) -> list[OrderState]:
    """Orders waiting for dispatch that ``post`` could serve, oldest first, row-locked."""
    rows = await conn.fetch(
        """SELECT state FROM orders
            WHERE community_id = $1 AND category = ANY($2::text[]) AND status = ANY($3::text[])
            ORDER BY placed_at NULLS FIRST, order_id
            LIMIT $4
            FOR UPDATE""",
        post.community_id, [c.value for c in post.categories], _AWAITING, limit)
    return [OrderState.model_validate(r["state"]) for r in rows]


async def due_for_expiry(conn: asyncpg.Connection, now: datetime, limit: int) -> list[OrderState]:
    """Dispatched orders whose ``accept_by`` passed, locked; rows another worker holds are skipped."""
    rows = await conn.fetch(
        """SELECT state FROM orders
            WHERE status = 'dispatched' AND accept_by < $1
            ORDER BY accept_by, order_id
            LIMIT $2
            FOR UPDATE SKIP LOCKED""", now, limit)
    return [OrderState.model_validate(r["state"]) for r in rows]


# -- saves ------------------------------------------------------------------------------------


async def save_order(conn: asyncpg.Connection, s: OrderState) -> None:
    await conn.execute(
        """INSERT INTO orders (order_id, status, category, community_id, grid_id, resident_id, description,
                               source_case_id, attempt, assignee_id, post_id, dispatched_by, accept_by, placed_at,
                               first_dispatched_at, dispatched_at, accepted_at, completed_at, evaluated_at,
                               cancelled_at, service_minutes, rating, passed, state)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24)
           ON CONFLICT (order_id) DO UPDATE SET
               status = EXCLUDED.status, category = EXCLUDED.category, community_id = EXCLUDED.community_id,
               grid_id = EXCLUDED.grid_id, resident_id = EXCLUDED.resident_id, description = EXCLUDED.description,
               source_case_id = EXCLUDED.source_case_id, attempt = EXCLUDED.attempt,
               assignee_id = EXCLUDED.assignee_id, post_id = EXCLUDED.post_id,
               dispatched_by = EXCLUDED.dispatched_by, accept_by = EXCLUDED.accept_by,
               placed_at = EXCLUDED.placed_at, first_dispatched_at = EXCLUDED.first_dispatched_at,
               dispatched_at = EXCLUDED.dispatched_at, accepted_at = EXCLUDED.accepted_at,
               completed_at = EXCLUDED.completed_at, evaluated_at = EXCLUDED.evaluated_at,
               cancelled_at = EXCLUDED.cancelled_at, service_minutes = EXCLUDED.service_minutes,
               rating = EXCLUDED.rating, passed = EXCLUDED.passed, state = EXCLUDED.state,
               version = orders.version + 1, updated_at = now()""",
        s.order_id, s.status.value, s.category.value, s.community_id, s.grid_id, s.resident_id, s.description,
        s.source_case_id, s.attempt, s.assignee_id, s.post_id, s.dispatched_by, s.accept_by, s.placed_at,
        s.first_dispatched_at, s.dispatched_at, s.accepted_at, s.completed_at, s.evaluated_at, s.cancelled_at,
        s.service_minutes, s.rating, s.passed, s.model_dump(mode="json"))


async def record_miss(conn: asyncpg.Connection, order_id: str, at: datetime) -> None:
    """Automatic dispatch found nobody for the order: count it on the order (it keeps waiting)."""
    await conn.execute(
        "UPDATE orders SET dispatch_misses = dispatch_misses + 1, last_miss_at = $2 WHERE order_id = $1",
        order_id, at)


async def record_history(conn: asyncpg.Connection, envelopes: Sequence[CloudEvent]) -> None:
    """Append order events to their orders' history (an event id is recorded once)."""
    rows = [e for e in envelopes if e.type.startswith("orders.order.")]
    if not rows:
        return
    await conn.executemany(
        """INSERT INTO order_history (order_id, event_id, type, at, data)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING""",
        [(e.subject, e.id, e.type, e.time, e.data) for e in rows])


async def save_member(conn: asyncpg.Connection, s: MemberState) -> None:
    await conn.execute(
        """INSERT INTO members (member_id, community_id, unit_id, name, unit_name, registered_at, state)
           VALUES ($1,$2,$3,$4,$5,$6,$7)
           ON CONFLICT (member_id) DO UPDATE SET community_id = EXCLUDED.community_id,
               unit_id = EXCLUDED.unit_id, name = EXCLUDED.name, unit_name = EXCLUDED.unit_name,
               registered_at = EXCLUDED.registered_at, state = EXCLUDED.state, updated_at = now()""",
        s.member_id, s.community_id, s.unit_id, s.name, s.unit_name, s.registered_at, s.model_dump(mode="json"))


async def save_post(conn: asyncpg.Connection, s: PostState) -> None:
    await conn.execute(
        """INSERT INTO posts (post_id, member_id, community_id, categories, capacity, status, title,
                              claimed_at, released_at, state)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
           ON CONFLICT (post_id) DO UPDATE SET member_id = EXCLUDED.member_id,
               community_id = EXCLUDED.community_id, categories = EXCLUDED.categories,
               capacity = EXCLUDED.capacity, status = EXCLUDED.status, title = EXCLUDED.title,
               claimed_at = EXCLUDED.claimed_at, released_at = EXCLUDED.released_at, state = EXCLUDED.state,
               updated_at = now()""",
        s.post_id, s.member_id, s.community_id, [c.value for c in s.categories], s.capacity, s.status.value,
        s.title, s.claimed_at, s.released_at, s.model_dump(mode="json"))


__all__ = [
    "candidates", "due_for_expiry", "load_member", "load_order", "load_post", "lock",
    "order_for_case", "record_history", "record_miss", "save_member", "save_order", "save_post",
    "waiting_orders_for",
]
