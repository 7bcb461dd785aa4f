"""Read queries behind the HTTP API and the metrics gauge (plain dicts, JSON-ready)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg

from schemas.orders import CATEGORY_LABELS
from services.kit.sql import Keyset, Where, answered, kept_answer, records, unpacked, with_history
from services.orders.domain import AWAITING_DISPATCH, CANCELLABLE, HELD, OrderStatus
from services.orders.projection.store import OPEN_ORDERS_OF

_ORDER_COLUMNS = """order_id, status, category, community_id, grid_id, resident_id, description, source_case_id,
    attempt, assignee_id, post_id, dispatched_by, accept_by, placed_at, first_dispatched_at, dispatched_at,
    accepted_at, completed_at, rated_at, evaluated_at, cancelled_at, service_minutes, resident_rating,
    resident_comment, rating, passed, dispatch_misses,
    last_miss_at, updated_at"""
_OPEN = sorted(s.value for s in CANCELLABLE)
_HELD = sorted(s.value for s in HELD)
_AWAITING = sorted(s.value for s in AWAITING_DISPATCH)


_LABEL_OF = {c.value: label for c, label in CATEGORY_LABELS.items()}
_AWAITING_SET = frozenset(_AWAITING)


def _added(category: str, status: str) -> dict[str, Any]:
    """What an order's answer adds to its columns: its category's label and whether it awaits dispatch."""
    return {"category_label": _LABEL_OF[category], "awaiting_dispatch": status in _AWAITING_SET}


def _order(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """An order as answered: ``row`` with what :func:`_added` adds (a dict is completed in place:
    each caller's is its own)."""
    out = row if isinstance(row, dict) else dict(row)
    out.update(_added(out["category"], out["status"]))
    return out


async def get_order(conn: asyncpg.Connection, order_id: str) -> dict[str, Any] | None:
    """The order with its history (every event, in order), or None."""
    found = await with_history(conn, _ORDER_COLUMNS, "FROM orders WHERE order_id = $1",
                               ("event_id", "type", "at", "data"),
                               "FROM order_history h WHERE h.order_id = orders.order_id ORDER BY h.seq", order_id)
    return None if found is None else _order(found)


ORDER_ORDER = Keyset(("placed_at", "order_id"), (datetime, str), descending=True)
"""Orders newest first (every order is placed before it is stored: ``placed_at`` is never null)."""


async def list_orders(conn: asyncpg.Connection, *, community_id: str | None = None, status: str | None = None,
                      category: str | None = None, assignee_id: str | None = None, limit: int = 50,
                      offset: int = 0, cursor: str | None = None,
                      restrict: Callable[[Where], None] | None = None, whole: bool = False) -> dict[str, Any]:
    """Orders matching every filter given, newest first, one page after ``cursor``, with the
    count. ``restrict`` adds a condition of its own (the orders a caller may read); ``whole``
    says that the caller reads every order the filters select, so that when those are a
    community and a status (either, both or none) the total is the one kept beside the orders
    (``order_counts``: exact, a few rows); else the matching orders are counted (up to a cap)."""
    where = Where().equal(community_id=community_id, status=status, category=category, assignee_id=assignee_id)
    if restrict is not None:
        restrict(where)
    total = None
    if whole and category is None and assignee_id is None:
        kept = [f"{column} = {where.param(value)}" for column, value in (("community_id", community_id),
                                                                          ("status", status)) if value is not None]
        total = "SELECT coalesce(sum(n), 0)::bigint FROM order_counts"
        if kept:
            total += " WHERE " + " AND ".join(kept)
    # each order as kept by the trigger of migration 006 (its fields: _ORDER_COLUMNS), with what _added adds
    paged = await where.counted_page(conn, "orders",
                                     f"SELECT {kept_answer()}, placed_at, order_id, category, status FROM orders",
                                     ORDER_ORDER, limit, offset, cursor, total=total)
    paged.items = [answered(r["answer"], _added(r["category"], r["status"])) for r in paged.items]
    return paged.answer(limit, offset)


_ORDER_NAMES = tuple(c.strip() for c in _ORDER_COLUMNS.split(","))
_POST_NAMES = ("post_id", "community_id", "categories", "capacity", "status", "title", "claimed_at", "released_at")


async def get_member(conn: asyncpg.Connection, member_id: str) -> dict[str, Any] | None:
    """A member's registration (双报到), posts (岗位认领, claimed and released) and open orders,
    in one statement (the posts and the orders arrays beside the member's row)."""
    posts = records(_POST_NAMES, "FROM posts h WHERE h.member_id = m.member_id ORDER BY h.status, h.post_id",
                    {"categories": "h.state->'categories'"})
    held = records(_ORDER_NAMES, """FROM orders h WHERE h.assignee_id = m.member_id AND h.status = ANY($2::text[])
                                    ORDER BY h.dispatched_at, h.order_id""")
    m = await conn.fetchrow(
        f"""SELECT member_id, community_id, unit_id, name, unit_name, registered_at, {posts} AS kit_posts,
                   {held} AS kit_orders
            FROM members m WHERE member_id = $1""", member_id, _HELD)
    if m is None:
        return None
    out = dict(m)
    all_posts = unpacked(_POST_NAMES, out.pop("kit_posts"))
    open_orders = unpacked(_ORDER_NAMES, out.pop("kit_orders"))
    claimed = [p for p in all_posts if p["status"] == "claimed"]
    return {
        **out,
        "posts": claimed,
        "released_posts": [p for p in all_posts if p["status"] != "claimed"],
        "capacity": sum(p["capacity"] for p in claimed),
        "open_order_count": len(open_orders),
        "open_orders": [_order(o) for o in open_orders],
    }


async def community_needs(conn: asyncpg.Connection, community_id: str, *, per_category: int = 50) -> dict[str, Any]:
    """需求清单: the community's open orders (not completed or cancelled) by category."""
    rows = await conn.fetch(
        f"""SELECT {_ORDER_COLUMNS} FROM orders WHERE community_id = $1 AND status = ANY($2::text[])
            ORDER BY category, placed_at, order_id""", community_id, _OPEN)
    by_cat: dict[str, dict[str, Any]] = {}
    for r in rows:
        c = by_cat.setdefault(r["category"], {
            "category": r["category"], "label": _LABEL_OF[r["category"]], "open": 0,
            "by_status": {}, "orders": []})
        c["open"] += 1
        c["by_status"][r["status"]] = c["by_status"].get(r["status"], 0) + 1
        if len(c["orders"]) < per_category:
            c["orders"].append(_order(r))
    return {"community_id": community_id, "open": len(rows),
            "awaiting_dispatch": sum(1 for r in rows if r["status"] in _AWAITING_SET),
            "categories": list(by_cat.values())}


async def community_resources(conn: asyncpg.Connection, community_id: str, *, per_category: int = 50,
                              category: str | None = None, after: str | None = None) -> dict[str, Any]:
    """资源清单: the community's claimed posts by category (a post serving several categories is
    counted under each), with each member's capacity use. Every post is counted; each category
    lists its first ``per_category`` posts (by post id, in code point order; those after the post
    id ``after``), and says where its next page starts. ``category``: that category only.

    One statement reads the community's claimed posts, a row each (an index range); what grew
    with the community's members was the answer, which listed every post, and it is paged now."""
    rows = await conn.fetch(
        f"""SELECT p.post_id, p.member_id, p.state->'categories' AS categories, p.capacity, p.title, p.claimed_at,
                  m.name AS member_name, m.unit_id, m.unit_name, l.open_orders
             FROM posts p
             LEFT JOIN members m ON m.member_id = p.member_id
             {OPEN_ORDERS_OF}
            WHERE p.community_id = $1 AND p.status = 'claimed'
            ORDER BY p.post_id COLLATE "C" """, community_id)
    by_cat: dict[str, dict[str, Any]] = {}
    for r in rows:
        for cat in r["categories"]:
            if category is not None and cat != category:
                continue
            c = by_cat.setdefault(cat, {"category": cat, "label": _LABEL_OF[cat], "claimed": 0,
                                        "posts": [], "members": set(), "capacity": 0, "next_after": None})
            c["claimed"] += 1
            c["capacity"] += r["capacity"]
            c["members"].add(r["member_id"])
            if after is not None and r["post_id"] <= after:
                continue
            if len(c["posts"]) < per_category:
                c["posts"].append(dict(r))
            elif c["next_after"] is None:
                c["next_after"] = c["posts"][-1]["post_id"]
    cats = [{**by_cat[cat], "members": len(by_cat[cat]["members"])} for cat in sorted(by_cat)]
    return {"community_id": community_id, "posts": len(rows), "members": len({r["member_id"] for r in rows}),
            "categories": cats}


async def status_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Number of orders in each status (every status present, zero when none), from the counts
    kept beside the orders (a row per community and status, however many orders there are)."""
    rows = await conn.fetch("SELECT status, sum(n)::int AS n FROM order_counts GROUP BY status")
    out = {s.value: 0 for s in OrderStatus}
    out.update({r["status"]: r["n"] for r in rows})
    return out
