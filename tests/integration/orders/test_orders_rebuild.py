"""``python -m services.orders.app rebuild`` against a real orders worker: commands on
``orders.intake.v1`` (members and their posts, orders placed, dispatched by hand and
automatically, accepted, declined, completed, rated, evaluated, cancelled, a member's move and
a post given up, an erasure, refusals, a repeat, a poison record) and the upstream events it
consumes (grid's registered cases, one a resident need delivered twice; points' erasure) are
handled live; the rebuilt projection equals the live one row for row.

Its expiry timer finds nothing to do within the first test (the accept window is a day); the
second has a dispatch expire, which the rebuild runs the timer again for."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import asyncpg
import pytest

from schemas.orders import (
    AcceptOrder, CancelOrder, ClaimPost, CompleteOrder, DeclineOrder, DispatchOrder, ErasePerson, EvaluateOrder,
    MoveMember, PlaceOrder, RateOrder, RegisterMember, ReleasePost,
)
from schemas.points import PersonErased as PointsPersonErased
from services.orders.domain import order_id_for_case
from tests.chaos.rebuilt import about, not_from_input
from tests.support.kafka import command, produce, read_topic
from tests.support.procs import Worker
from tests.support.rebuild import (Phases, differences, live_and_rebuilt, outbox_drained, report, run_rebuild,
                                   snapshot)

from .support import grid_case, uid

pytestmark = pytest.mark.integration

C1, C2 = "110105001002", "110105001003"
GRID_SOURCE = "/services/grid"


@pytest.fixture(scope="module")
async def compared(module_kafka, module_database_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("orders-rebuild")
    kafka, db = module_kafka, module_database_url
    w = Worker("services.orders.app", {"KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": db, "TOPIC_PARTITIONS": "4"},
               prefix="ORDERS_", log=d / "worker.log").start()
    phase = Phases(kafka, db, "orders")

    try:
        await w.wait_ready()
        a, b, c = (f"m-{x}-{uid('')}" for x in "abc")  # ties in a dispatch break by member id: a, b, c
        resident, other = uid("res"), uid("res")
        await phase("orders.intake.v1", *(command(RegisterMember(member_id=m, community_id=C1, unit_id="unit-1",
                                                                 name=f"党员{m[-4:]}", unit_name="区财政局"))
                                          for m in (a, b, c)))
        await phase("orders.intake.v1",
                    command(ClaimPost(member_id=a, post_id=f"post-{a}", community_id=C1, categories=["repair", "proxy"],
                                      capacity=3)),
                    command(ClaimPost(member_id=b, post_id=f"post-{b}", community_id=C1, categories=["repair"])),
                    command(ClaimPost(member_id=c, post_id=f"post-{c}", community_id=C1, categories=["cleaning"])))
        # orders placed by residents (each dispatched at once), and a grid case that is a resident need
        o1, o2, o3, o4 = (uid("o") for _ in range(4))
        case, not_a_need = uid("case"), uid("case")
        need = command(grid_case(case, grid_id=C1 + "001", reporter=resident), source=GRID_SOURCE)
        await phase("orders.intake.v1",
                    command(PlaceOrder(order_id=o1, resident_id=resident, grid_id=C1 + "001", category="repair",
                                       description="水龙头漏水")),
                    command(PlaceOrder(order_id=o2, resident_id=resident, grid_id=C1 + "001", category="cleaning",
                                       description="打扫楼道")),
                    command(PlaceOrder(order_id=o3, resident_id=other, grid_id=C1 + "002", category="legal_aid",
                                       description="咨询遗嘱")),  # nobody serves it: it waits
                    command(PlaceOrder(order_id=o4, resident_id=other, grid_id=C1 + "002", category="proxy",
                                       description="代办医保")))
        await phase("grid.events.v1", need, need,
                    command(grid_case(not_a_need, category="environment", grid_id=C1 + "001"), source=GRID_SOURCE))
        # the steps of an order's life, a decline (dispatched again), a manual dispatch, a cancel
        accept = command(AcceptOrder(order_id=o1, assignee_id=a))
        await phase("orders.intake.v1", accept,
                    command(AcceptOrder(order_id=o2, assignee_id=c)),
                    command(DeclineOrder(order_id=o4, assignee_id=a, reason="出差")),
                    command(DispatchOrder(order_id=order_id_for_case(case), assignee_id=b, dispatched_by="op-9")),
                    command(CancelOrder(order_id=o3, reason="已自行解决", cancelled_by=other)))
        await phase("orders.intake.v1", accept,  # a repeat: handled once
                    command(CompleteOrder(order_id=o1, assignee_id=a, service_minutes=45, note="换了阀门")),
                    command(CompleteOrder(order_id=o2, assignee_id=c, service_minutes=90)),
                    command(AcceptOrder(order_id=uid("o"), assignee_id=a)))  # refused: unknown order
        await phase("orders.intake.v1",
                    command(RateOrder(order_id=o1, resident_id=resident, rating=5, comment="很及时")),
                    command(EvaluateOrder(order_id=o2, rating=3, passed=False, evaluator_id="org-7", comment="不干净")))
        await phase("orders.intake.v1",
                    command(EvaluateOrder(order_id=o1, passed=True, evaluator_id="org-7")),
                    command(MoveMember(member_id=c, community_id=C2)),
                    command(ReleasePost(member_id=b, post_id=f"post-{b}", reason="工作调动")))
        # erasures: a command, and points' event
        await phase("orders.intake.v1", command(ErasePerson(person_id=resident, reason="本人申请",
                                                            requested_by="dpo-1")))
        await phase("points.events.v1", command(PointsPersonErased(pseudonym="erased-" + "cd" * 8, person_id=other,
                                                                   occurred_at=datetime.now(timezone.utc)),
                                                source="/services/points"))
        await produce(kafka, "orders.intake.v1", [("poison", b'{"specversion": "1.0", "id": "broken')])
        await phase.handled(positions=1)
    finally:
        assert w.stop() == 0, (d / "worker.log").read_text()[-4000:]
    return await live_and_rebuilt(db, "orders", w.env)


async def test_a_rebuilt_orders_projection_equals_the_live_one_row_for_row(compared):
    live, rebuilt = compared
    assert sum(live.rows["orders"].values()) == 5 and live.rows["erasures"]
    diffs = differences(live, rebuilt)
    assert not diffs, report(diffs)


async def test_an_expiry_is_replayed_by_the_timer_and_the_next_dispatch_goes_where_the_worker_sent_it(
        kafka, database_url, tmp_path):
    """An order's dispatch expires (the timer: no input) and goes to the other member; the next
    order goes to the first, the less loaded then. The rebuild runs the timer again when the
    live one published the expiry, so the expired order comes back as the worker left it (its
    events under their ids, its history), and the next order goes to the first member again:
    the rebuilt projection equals the live one, row for row, nothing left out."""
    w = Worker("services.orders.app", {"KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": database_url,
                                       "TOPIC_PARTITIONS": "4", "ORDERS_ACCEPT_WINDOW_SECONDS": "2",
                                       "ORDERS_EXPIRY_INTERVAL_SECONDS": "0.5"},
               prefix="ORDERS_", log=tmp_path / "worker.log").start()
    intake, phases = "orders.intake.v1", Phases(kafka, database_url, "orders")

    async def phase(*envelopes) -> None:
        await phases(intake, *envelopes)

    a, b = f"m-a-{uid('')}", f"m-b-{uid('')}"
    first, second = uid("o"), uid("o")
    try:
        await w.wait_ready()
        await phase(*(command(RegisterMember(member_id=m, community_id=C1, unit_id="unit-1")) for m in (a, b)))
        await phase(*(command(ClaimPost(member_id=m, post_id=f"post-{m}", community_id=C1, categories=["repair"],
                                        capacity=2)) for m in (a, b)))
        await phase(command(PlaceOrder(order_id=first, resident_id=uid("res"), grid_id=C1 + "001", category="repair",
                                       description="门锁坏了")))
        conn = await asyncpg.connect(database_url)
        try:
            for _ in range(100):  # the dispatch to a expires and the order goes to b
                if await conn.fetchval("SELECT assignee_id FROM orders.orders WHERE order_id = $1", first) == b:
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("the first dispatch did not expire")
            await phase(command(PlaceOrder(order_id=second, resident_id=uid("res"), grid_id=C1 + "001",
                                           category="repair", description="灯不亮")))
            assert await conn.fetchval("SELECT assignee_id FROM orders.orders WHERE order_id = $1", second) == a
            await phase(command(AcceptOrder(order_id=second, assignee_id=a)))
            await outbox_drained(database_url, "orders")
        finally:
            await conn.close()
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-4000:]
    raw = {t: await read_topic(kafka, t) for t in (intake, "orders.events.v1", "grid.events.v1")}
    timers, _, kinds = not_from_input("orders", raw)
    assert about("orders", timers, "orders") == {first} and kinds["timer"] == 2  # expired, dispatched again
    live = await snapshot(database_url, "orders")
    done = await asyncio.to_thread(run_rebuild, "orders", w.env)
    assert done.returncode == 0, done.stderr[-4000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    # the round's events, like the commands', are counted, not published again
    assert outcome["timer_rounds"] == 1 and outcome["not_published_again"]["orders.events.v1"] == len(
        raw["orders.events.v1"])
    rebuilt = await snapshot(database_url, "orders")
    history = {r for r in rebuilt.rows["order_history"] if first in r}
    # placed, dispatched, expired, dispatched again
    assert len(history) == len({r for r in live.rows["order_history"] if first in r}) >= 4
    diffs = differences(live, rebuilt)
    assert not diffs, report(diffs)
    cols = rebuilt.columns["orders"]
    orders = [dict(zip(cols, r)) for r in rebuilt.rows["orders"]]
    assert {(o["order_id"], o["assignee_id"]) for o in orders} >= {(first, b), (second, a)}
