"""What the handler and the timers write and read inside a unit of work (``uow.conn``).

The order, member and post states are kept by the kit's :class:`AggregateStore`: the state as
jsonb, its version, and beside it the columns the queries, the dispatch candidates and the
expiry timer filter on, written by one upsert so that they never disagree. The order history
and the automatic dispatch misses are written once per batch by :class:`OrderLog`, after the
order states (so a miss of an order placed in the same batch finds its row).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from functools import partial
from typing import Any

import asyncpg

from schemas.envelope import Emitted
from services.kit.aggregates import AggregateStore
from services.kit.uow import UnitOfWork
from services.orders.domain import (
    AWAITING_DISPATCH,
    Candidate,
    MemberState,
    OrderState,
    PostState,
    candidates_from_posts,
    check_expiry,
)

_AWAITING = sorted(s.value for s in AWAITING_DISPATCH)


def _columns(**types: str) -> dict[str, tuple[str, Callable[[Any], Any]]]:
    """Query columns named after state fields, with their SQL types (an enum is kept as its value)."""
    return {name: (sql_type, partial(_field, name)) for name, sql_type in types.items()}


def _field(name: str, state: Any) -> Any:
    value = getattr(state, name)
    return value.value if isinstance(value, Enum) else value


ORDERS = AggregateStore(OrderState, table="orders", id_column="order_id", columns=_columns(
    status="text", category="text", community_id="text", grid_id="text", resident_id="text", description="text",
    source_case_id="text", attempt="int", assignee_id="text", post_id="text", dispatched_by="text",
    accept_by="timestamptz", placed_at="timestamptz", first_dispatched_at="timestamptz", dispatched_at="timestamptz",
    accepted_at="timestamptz", completed_at="timestamptz", evaluated_at="timestamptz", cancelled_at="timestamptz",
    service_minutes="int", resident_rating="int", resident_comment="text", rated_at="timestamptz", rating="int",
    passed="boolean"))
"""服务订单: one row per order."""

MEMBERS = AggregateStore(MemberState, table="members", id_column="member_id", columns=_columns(
    community_id="text", unit_id="text", name="text", unit_name="text", registered_at="timestamptz"))
"""在职党员 (双报到): one row per registered member."""

POSTS = AggregateStore(PostState, table="posts", id_column="post_id", columns=_columns(
    member_id="text", community_id="text", capacity="int", status="text", title="text", claimed_at="timestamptz",
    released_at="timestamptz"))
"""岗位认领: one row per claimed post (a released post stays, with status ``released``); its
categories are read from the state."""


# -- reads of the projection -------------------------------------------------------------------
# They see what the transaction wrote: the handler writes the batch's changed states first.


async def order_for_case(conn: asyncpg.Connection, case_id: str) -> str | None:
    """The id of the order made from grid case ``case_id``, if any."""
    return await conn.fetchval("SELECT order_id FROM orders WHERE source_case_id = $1", case_id)


# the open orders (dispatched to or accepted by the member) of each post's member, ``l.open_orders``:
# through the partial index of held orders by assignee, a few entries a member
OPEN_ORDERS_OF = """CROSS JOIN LATERAL (SELECT count(*)::int AS open_orders FROM orders o
                                        WHERE o.assignee_id = p.member_id
                                          AND o.status IN ('dispatched', 'accepted')) l"""


async def candidates(conn: asyncpg.Connection, community_id: str, *, load: bool = True) -> tuple[Candidate, ...]:
    """Active posts in the community with each member's open order count (what dispatch chooses from).

    Each member's open orders are counted for that member (:data:`OPEN_ORDERS_OF`), not
    grouped from every open order of the district and joined (a view, dropped since): that read
    every held order's index entry, and every version of one a batch had moved.
    ``load`` False: the posts only, every count 0 (the orders are not read)."""
    rows = await conn.fetch(
        f"""SELECT p.state{", l.open_orders" if load else ""}
              FROM posts p {OPEN_ORDERS_OF if load else ""}
             WHERE p.community_id = $1 AND p.status = 'claimed'
             ORDER BY p.post_id""", community_id)
    posts = [PostState.model_validate(r["state"]) for r in rows]
    return candidates_from_posts(posts, {r["state"]["member_id"]: r["open_orders"] for r in rows} if load else {})


async def waiting_orders(conn: asyncpg.Connection, post: PostState, limit: int) -> list[str]:
    """Ids of the orders waiting for dispatch that ``post`` could serve, oldest first (not locked)."""
    rows = await conn.fetch(
        """SELECT order_id FROM orders
            WHERE community_id = $1 AND category = ANY($2::text[]) AND status = ANY($3::text[])
            ORDER BY placed_at NULLS FIRST, order_id
            LIMIT $4""",
        post.community_id, [c.value for c in post.categories], _AWAITING, limit)
    return [r["order_id"] for r in rows]


async def due_for_expiry(conn: asyncpg.Connection, now: datetime, limit: int) -> dict[str, tuple[int, OrderState]]:
    """(version, state) of the dispatched orders whose ``accept_by`` passed, soonest first,
    locked; those another transaction holds are skipped, and so are those that moved on
    before they were locked."""
    rows = await conn.fetch(
        """SELECT order_id FROM orders
            WHERE status = 'dispatched' AND accept_by < $1
            ORDER BY accept_by, order_id
            LIMIT $2""", now, limit)
    ids = [r["order_id"] for r in rows]
    found = await ORDERS.read(conn, ids, skip_locked=True)
    return {i: found[i] for i in ids if i in found and check_expiry(found[i][1], now)}


# -- order history and dispatch misses -------------------------------------------------------


class OrderLog:
    """The order events to append to their orders' history and the automatic dispatch misses
    to count on their orders, kept through a batch and written when the unit of work flushes."""

    def __init__(self) -> None:
        self.history: list[Emitted] = []
        self.misses: list[tuple[str, datetime]] = []
        self._written = (0, 0)  # how much of each list is in the database already

    @classmethod
    def of(cls, uow: UnitOfWork) -> "OrderLog":
        """The unit of work's log, attached after its order states (flushed in that order)."""
        ORDERS.of(uow)
        return uow.attach(cls, cls)

    def record(self, envelopes: Sequence[Emitted]) -> None:
        self.history.extend(e for e in envelopes if e.type.startswith("orders.order."))

    def miss(self, order_id: str, at: datetime) -> None:
        self.misses.append((order_id, at))

    def mark(self) -> tuple[int, int, tuple[int, int]]:
        return len(self.history), len(self.misses), self._written

    def rollback(self, mark: tuple[int, int, tuple[int, int]]) -> None:
        del self.history[mark[0]:], self.misses[mark[1]:]
        self._written = mark[2]

    async def flush(self, uow: UnitOfWork) -> None:
        history, misses = self.history[self._written[0]:], self.misses[self._written[1]:]
        if history:
            await uow.conn.executemany(
                """INSERT INTO order_history (order_id, event_id, type, at, data)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING""",
                [(e.subject, e.id, e.type, e.time, e.data) for e in history])
        if misses:
            await uow.conn.executemany(
                "UPDATE orders SET dispatch_misses = dispatch_misses + 1, last_miss_at = $2 WHERE order_id = $1",
                misses)
        self._written = (len(self.history), len(self.misses))


__all__ = ["MEMBERS", "ORDERS", "POSTS", "OrderLog", "candidates", "due_for_expiry", "order_for_case",
           "waiting_orders"]
