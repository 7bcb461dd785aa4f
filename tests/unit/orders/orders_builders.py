"""Builders shared by the orders unit tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from schemas.orders import AcceptOrder, DispatchOrder, OrderCategory, PlaceOrder
from services.orders.domain import Candidate, Context, OrderState, decide, evolve_all

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=CST)
GRID = "110105001002003"
COMMUNITY = "110105001002"
OTHER_COMMUNITY = "110105001009"
ORDER = "order-1"
OPERATOR = "operator-1"


def ctx(minutes: float = 0, **kw) -> Context:
    return Context(now=T0 + timedelta(minutes=minutes), **kw)


def post(member: str, *categories: str, capacity: int = 3, open_orders: int = 0, community: str = COMMUNITY,
         post_id: str | None = None) -> Candidate:
    return Candidate(
        member_id=member, post_id=post_id or f"post-{member}", community_id=community,
        categories=tuple(OrderCategory(c) for c in (categories or ("daily_care",))),
        capacity=capacity, open_orders=open_orders,
    )


def place_cmd(order_id: str = ORDER, category: str = "daily_care", **kw) -> PlaceOrder:
    return PlaceOrder(order_id=order_id, resident_id="resident-1", grid_id=GRID, category=category,
                      description="送餐", **kw)


def run(state, command, c: Context | None = None):
    """decide then evolve: (new state, events)."""
    events = decide(state, command, c or ctx())
    return evolve_all(state, events), events


def placed(category: str = "daily_care") -> OrderState:
    return run(None, place_cmd(category=category))[0]


def dispatched(to: str = "m1", candidates: tuple[Candidate, ...] | None = None) -> OrderState:
    cands = candidates or (post(to),)
    return run(placed(), DispatchOrder(order_id=ORDER, assignee_id=to, dispatched_by=OPERATOR), ctx(candidates=cands))[0]


def accepted(to: str = "m1") -> OrderState:
    return run(dispatched(to), AcceptOrder(order_id=ORDER, assignee_id=to), ctx(5))[0]
