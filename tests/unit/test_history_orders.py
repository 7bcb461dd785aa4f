"""The history's orders world without a database: what it decides follows the orders service's
rules when its events are read back in the order they were published."""
from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import datetime, timedelta

from schemas.orders import AUTO, OrderDispatched, PostClaimed, PostReleased
from services.orders.domain import evolve, order_id_for_case
from tests.history.generate import SH, GridWorld, Plan
from tests.history.orders import OrdersWorld

PLAN = Plan(years=1, scale=0.0001, end=datetime(2026, 11, 20, 9, tzinfo=SH))


def _world() -> tuple[OrdersWorld, list[str]]:
    rng = random.Random(7)
    world = OrdersWorld(PLAN, rng, itertools.count())
    grid = GridWorld(PLAN, rng)
    needs = []
    for i in range(300):
        run = grid.run_case(i, PLAN.start + timedelta(days=i))
        for ev, eid, at, cause in run.events:
            if ev.TYPE == "grid.case.registered.v1":
                world.plan_case(ev, eid, cause, at)
                if ev.category.value == "resident_need":
                    needs.append(ev.case_id)
    world.plan_members()
    world.plan_direct_orders(4000)  # busy: members reach their capacity, orders wait
    world.run()
    return world, needs


WORLD, NEEDS = _world()


def test_each_registered_resident_need_case_is_one_order_and_nothing_happens_after_the_end():
    from_cases = {o.source_case_id: o.order_id for o in WORLD.orders.values() if o.source_case_id}
    assert NEEDS and sorted(from_cases) == sorted(NEEDS)
    assert all(from_cases[c] == order_id_for_case(c) for c in NEEDS)
    assert all(p.at <= PLAN.end for p in WORLD.pubs)
    assert [p.at for p in WORLD.pubs] == sorted(p.at for p in WORLD.pubs)


def test_automatic_dispatch_never_goes_over_a_members_capacity():
    """Read back in publishing order: every automatic dispatch went to a member whose open
    orders were below the capacity of their claimed posts at that moment."""
    orders: dict = {}
    posts: dict = {}
    load: Counter = Counter()
    auto = 0
    for p in WORLD.pubs:
        e = p.payload
        if isinstance(e, PostClaimed):
            posts[e.post_id] = (e.member_id, e.capacity)
            continue
        if isinstance(e, PostReleased):
            posts.pop(e.post_id)
            continue
        if not p.payload.TYPE.startswith("orders.order."):
            continue
        if isinstance(e, OrderDispatched) and e.dispatched_by == AUTO:
            capacity = sum(c for m, c in posts.values() if m == e.assignee_id)
            assert load[e.assignee_id] < capacity, e
            auto += 1
        before = orders.get(e.order_id)
        after = orders[e.order_id] = evolve(before, e)
        if (before.holder if before else None) != after.holder:
            if before is not None and before.holder:
                load[before.holder] -= 1
            if after.holder:
                load[after.holder] += 1
    assert auto > 0 and any(n for n, _ in WORLD.misses.values())
    assert load == +WORLD.load and orders == WORLD.orders
