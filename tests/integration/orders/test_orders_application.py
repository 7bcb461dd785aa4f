"""The orders application layer (handlers, timer, projection, queries) on a real PostgreSQL.

Each message runs as the kit runs it: inbox claim, the handler's batch step and handler
(``dispatch``), the unit of work's flush, outbox, one transaction, with the decision time given
to the unit of work.
"""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from schemas.envelope import Message
from schemas.orders import (
    AcceptOrder,
    CancelOrder,
    ClaimPost,
    CompleteOrder,
    DeclineOrder,
    DispatchOrder,
    EvaluateOrder,
    PlaceOrder,
    RateOrder,
    RegisterMember,
    ReleasePost,
)
from services.kit.consumer import claim
from services.kit.handlers import dispatch
from services.kit.outbox import write as write_outbox
from services.kit.uow import UnitOfWork
from services.orders.app.handler import OrdersHandler
from services.orders.app.settings import MIGRATIONS, OrdersSettings
from services.orders.domain import UnusableGridCase, order_id_for_case
from services.orders.projection import queries
from tests.support.db import as_json, migrated_pool, statements_sent, typed
from tests.support.kafka import command

from .support import COMMUNITY, GRID, T0, grid_case, sender, uid

pytestmark = pytest.mark.integration

WINDOW = timedelta(minutes=30)


@pytest.fixture
async def pool(database_url):
    async with migrated_pool(database_url, "orders", MIGRATIONS) as p:
        yield p


class App:
    def __init__(self, pool, **settings):
        self.pool = pool
        self.handler = OrdersHandler(OrdersSettings(accept_window_seconds=WINDOW.total_seconds(), **settings))

    async def run(self, payload, minutes: float = 0) -> UnitOfWork:
        """Handle one message; a fault of the handler is raised (the kit would dead-letter it)."""
        return await self.run_batch([payload], minutes)

    async def run_batch(self, payloads, minutes: float = 0) -> UnitOfWork:
        """Handle messages as one batch, in one transaction."""
        msgs = [Message(envelope=command(p), payload=p, principal=sender(p)) for p in payloads]
        async with self.pool.acquire() as conn, conn.transaction():
            assert len(await claim(conn, [(m.source, m.id) for m in msgs])) == len(msgs)
            uow = UnitOfWork(conn, "orders", T0 + timedelta(minutes=minutes))
            faults = await dispatch(self.handler, uow, msgs)
            if faults:
                raise faults[0][1]
            await uow.flush()
            await write_outbox(conn, uow.records)
        return uow

    async def tick(self, minutes: float) -> UnitOfWork:
        async with self.pool.acquire() as conn, conn.transaction():
            uow = UnitOfWork(conn, "orders", T0 + timedelta(minutes=minutes))
            await self.handler.expire_dispatches(uow)
            await uow.flush()
            await write_outbox(conn, uow.records)
        return uow

    async def order(self, order_id: str) -> dict:
        async with self.pool.acquire() as conn:
            return await queries.get_order(conn, order_id)

    async def member(self, member_id: str) -> dict:
        """The member as the API reads it: one statement (checked), its posts and orders beside it."""
        async with self.pool.acquire() as conn:
            await queries.get_member(conn, "nobody")  # the connection's first arrays of records: types looked up
            async with statements_sent(conn) as sent:
                found = await queries.get_member(conn, member_id)
            assert len(sent) == 1, sent
            return found

    async def member_with_post(self, member: str, *categories: str, capacity: int = 3, community=COMMUNITY,
                               minutes: float = 0) -> UnitOfWork:
        await self.run(RegisterMember(member_id=member, community_id=community, unit_id="unit-1", name=member))
        return await self.run(ClaimPost(member_id=member, post_id=f"post-{member}", community_id=community,
                                        categories=list(categories or ("daily_care",)), capacity=capacity),
                              minutes)


def types(uow: UnitOfWork) -> list[str]:
    return [e.type for e in uow.emitted]


def place(order_id: str, category: str = "daily_care", **kw) -> PlaceOrder:
    return PlaceOrder(order_id=order_id, resident_id="resident-1", grid_id=GRID, category=category,
                      description="送餐上门", **kw)


async def test_an_order_waits_without_a_post_and_is_dispatched_when_a_matching_post_is_claimed(pool):
    app = App(pool)
    uow = await app.run(place("o-wait", "repair"))
    assert types(uow) == ["orders.order.placed.v1"]
    waiting = await app.order("o-wait")
    assert waiting["status"] == "placed" and waiting["awaiting_dispatch"] and waiting["dispatch_misses"] == 1

    await app.member_with_post("m-cook", "daily_care")  # another category: the order keeps waiting
    assert (await app.order("o-wait"))["status"] == "placed"

    claim_uow = await app.member_with_post("m-fixer", "repair", minutes=5)
    assert types(claim_uow) == ["orders.post.claimed.v1", "orders.order.dispatched.v1"]
    order = await app.order("o-wait")
    assert (order["status"], order["assignee_id"], order["dispatched_by"]) == ("dispatched", "m-fixer", "auto")
    assert order["accept_by"] == T0 + timedelta(minutes=5) + WINDOW
    assert [h["type"] for h in order["history"]] == ["orders.order.placed.v1", "orders.order.dispatched.v1"]


def register(member: str, community: str = COMMUNITY) -> RegisterMember:
    return RegisterMember(member_id=member, community_id=community, unit_id="unit-1", name=member)


def claim_post(member: str, *categories: str, capacity: int = 3) -> ClaimPost:
    return ClaimPost(member_id=member, post_id=f"post-{member}", community_id=COMMUNITY,
                     categories=list(categories or ("daily_care",)), capacity=capacity)


async def test_a_batch_sees_its_own_changes_and_a_refusal_in_it_undoes_only_itself(pool):
    app = App(pool)
    uow = await app.run_batch([
        place("o-b0", "repair"),  # nobody serves repairs yet: it waits (a miss) until the claim below
        register("m-b1"), claim_post("m-b1", "daily_care", "repair"), register("m-b2"), claim_post("m-b2"),
        place("o-b1"), place("o-b2"),
        DeclineOrder(order_id="o-b1", assignee_id="m-nobody", reason="x"),  # refused after reading the batch's rows
        place("o-b3"),
    ])
    assert [e.reason for _, e in uow.rejected] == ["unknown_order"]  # not m-nobody's order: as if unknown
    early = await app.order("o-b0")
    assert (early["status"], early["assignee_id"], early["dispatch_misses"]) == ("dispatched", "m-b1", 1)
    assert [h["type"].split(".")[2] for h in early["history"]] == ["placed", "dispatched"]
    assert [h["type"].split(".")[2] for h in (await app.order("o-b1"))["history"]] == ["placed", "dispatched"]
    a, b = await app.member("m-b1"), await app.member("m-b2")
    assert (a["open_order_count"], b["open_order_count"]) == (2, 2)


async def test_a_grid_case_makes_one_order_and_a_command_naming_a_grid_case_is_refused(pool):
    app = App(pool)
    case_id, taken = uid("case"), uid("case")
    # a resident naming someone else's case first would take its place: the case's order is the grid's to make
    uow = await app.run_batch([place(uid("o"), "proxy", source_case_id=taken), grid_case(case_id),
                               place(uid("o"), "proxy", source_case_id=case_id)])
    assert [(e.reason, e.field) for _, e in uow.rejected] == [("forbidden", "source_case_id")] * 2
    assert (await app.order(order_id_for_case(case_id)))["source_case_id"] == case_id
    await app.run(grid_case(taken))
    assert (await app.order(order_id_for_case(taken)))["resident_id"] == "resident-42"


async def test_automatic_dispatch_prefers_the_least_loaded_member_and_counts_open_orders(pool):
    app = App(pool)
    await app.member_with_post("m-a", capacity=3)
    await app.member_with_post("m-b", capacity=3)
    for i in range(4):
        await app.run(place(f"o-load-{i}"))
    a, b = await app.member("m-a"), await app.member("m-b")
    assert (a["open_order_count"], b["open_order_count"]) == (2, 2)
    assert {o["order_id"] for o in a["open_orders"]} | {o["order_id"] for o in b["open_orders"]} == {
        f"o-load-{i}" for i in range(4)}
    assert a["posts"][0]["post_id"] == "post-m-a" and a["capacity"] == 3
    assert a["posts"][0]["categories"] == ["daily_care"] and a["open_orders"][0]["category_label"]


async def test_a_full_story_accept_complete_evaluate_carries_what_points_need(pool):
    app = App(pool)
    await app.member_with_post("m-1", "cleaning")
    await app.run(place("o-story", "cleaning"))
    assert (await app.run(AcceptOrder(order_id="o-story", assignee_id="m-1"), 10)).emitted[0].type == \
        "orders.order.accepted.v1"
    await app.run(CompleteOrder(order_id="o-story", assignee_id="m-1", service_minutes=90), 100)
    [rated] = (await app.run(RateOrder(order_id="o-story", resident_id="resident-1", rating=5, comment="干净"),
                             150)).emitted
    assert rated.type == "orders.order.rated.v1" and rated.data["rating"] == 5
    order = await app.order("o-story")
    assert (order["status"], order["resident_rating"], order["resident_comment"], order["rating"]) == (
        "completed", 5, "干净", None)
    assert order["rated_at"] is not None
    uow = await app.run(EvaluateOrder(order_id="o-story", passed=True, evaluator_id="org-1"), 200)
    [evaluated] = uow.emitted
    assert evaluated.data["community_id"] == COMMUNITY and evaluated.data["category"] == "cleaning"
    assert evaluated.data["service_minutes"] == 90 and evaluated.data["assignee_id"] == "m-1"
    assert (evaluated.data["rating"], evaluated.data["evaluator_id"]) == (5, "org-1")  # the resident's rating
    order = await app.order("o-story")
    assert (order["status"], order["rating"], order["passed"], order["service_minutes"]) == ("evaluated", 5, True, 90)
    assert order["resident_rating"] == 5
    assert [h["type"].split(".")[2] for h in order["history"]] == [
        "placed", "dispatched", "accepted", "completed", "rated", "evaluated"]
    assert (await app.member("m-1"))["open_order_count"] == 0


async def test_a_decline_redispatches_to_another_member_and_skips_the_decliner(pool):
    app = App(pool)
    await app.member_with_post("m-x")
    await app.member_with_post("m-y")
    await app.run(place("o-decline"))
    first = (await app.order("o-decline"))["assignee_id"]
    uow = await app.run(DeclineOrder(order_id="o-decline", assignee_id=first, reason="出差"), 3)
    assert types(uow) == ["orders.order.declined.v1", "orders.order.dispatched.v1"]
    order = await app.order("o-decline")
    assert order["assignee_id"] not in (first, None) and order["attempt"] == 2
    # the second member declines too: nobody is left, the order waits and the miss is counted
    await app.run(DeclineOrder(order_id="o-decline", assignee_id=order["assignee_id"], reason="生病"), 4)
    order = await app.order("o-decline")
    assert order["status"] == "declined" and order["assignee_id"] is None and order["dispatch_misses"] == 1


async def test_the_timer_expires_a_dispatch_once_and_redispatches_it(pool):
    app = App(pool)
    await app.member_with_post("m-slow")
    await app.member_with_post("m-quick")
    await app.run(place("o-expire"))
    first = (await app.order("o-expire"))["assignee_id"]
    assert types(await app.tick(29)) == []  # not yet due
    uow = await app.tick(31)
    assert types(uow) == ["orders.order.dispatch_expired.v1", "orders.order.dispatched.v1"]
    assert uow.emitted[0].causationid is None
    order = await app.order("o-expire")
    assert order["assignee_id"] not in (first, None) and order["accept_by"] == T0 + timedelta(minutes=31) + WINDOW
    assert types(await app.tick(32)) == []  # a second round (another worker, a restart) yields nothing
    refused = await app.run(AcceptOrder(order_id="o-expire", assignee_id=first), 33)
    assert refused.rejected[0][1].reason == "not_assignee"


async def test_two_timer_rounds_at_once_expire_each_dispatch_exactly_once(pool):
    app = App(pool)
    await app.member_with_post("m-only", capacity=20)
    for i in range(10):
        await app.run(place(f"o-race-{i}"))
    rounds = await asyncio.gather(*(app.tick(40) for _ in range(3)))
    expired = [e.subject for u in rounds for e in u.emitted if e.type == "orders.order.dispatch_expired.v1"]
    assert sorted(expired) == sorted(f"o-race-{i}" for i in range(10))
    # nobody else is eligible (m-only let it expire): every order now waits
    async with pool.acquire() as conn:
        page = await queries.list_orders(conn, status="dispatch_expired", limit=100)
    assert page["total"] == 10


async def test_manual_dispatch_names_an_eligible_member_and_refuses_others(pool):
    app = App(pool, auto_dispatch=False)
    await app.member_with_post("m-legal", "legal_aid")
    await app.run(place("o-manual", "legal_aid"))
    assert (await app.order("o-manual"))["status"] == "placed"
    bad = await app.run(DispatchOrder(order_id="o-manual", assignee_id="m-nobody", dispatched_by="op-1"))
    assert bad.rejected[0][1].reason == "assignee_not_eligible"
    ok = await app.run(DispatchOrder(order_id="o-manual", assignee_id="m-legal", dispatched_by="op-1"))
    assert ok.emitted[0].data["dispatched_by"] == "op-1"
    none = await app.run(place("o-none", "medical"))
    assert types(none) == ["orders.order.placed.v1"]
    refused = await app.run(DispatchOrder(order_id="o-none"))
    assert refused.rejected[0][1].reason == "no_eligible_assignee"


async def test_a_grid_resident_need_case_becomes_exactly_one_order(pool):
    app = App(pool)
    await app.member_with_post("m-proxy", "proxy")
    case_id = uid("case")
    first = await app.run(grid_case(case_id))
    assert types(first) == ["orders.order.placed.v1", "orders.order.dispatched.v1"]
    again = await app.run(grid_case(case_id), 60)  # redelivered under a new event id
    later = await app.run(grid_case(case_id, description="changed later"), 600)
    assert types(again) == [] and types(later) == []
    order = await app.order(order_id_for_case(case_id))
    assert order["source_case_id"] == case_id and order["category"] == "proxy"
    assert order["resident_id"] == "resident-42" and order["assignee_id"] == "m-proxy"
    other = await app.run(place(uid("o"), "proxy", source_case_id=case_id))
    assert other.rejected[0][1].reason == "forbidden"


async def test_other_grid_cases_make_no_order_and_an_unusable_one_raises(pool):
    app = App(pool)
    assert types(await app.run(grid_case(uid("case"), category="environment"))) == []
    with pytest.raises(UnusableGridCase):
        await app.run(grid_case(uid("case"), reporter=None))


async def test_cancel_frees_the_assignee_and_release_keeps_held_orders(pool):
    app = App(pool)
    await app.member_with_post("m-c")
    await app.run(place("o-c1"))
    await app.run(place("o-c2"))
    await app.run(CancelOrder(order_id="o-c1", reason="resident moved"))
    assert (await app.member("m-c"))["open_order_count"] == 1
    await app.run(ReleasePost(member_id="m-c", post_id="post-m-c"))
    m = await app.member("m-c")
    assert m["posts"] == [] and m["released_posts"][0]["post_id"] == "post-m-c" and m["open_order_count"] == 1
    refused = await app.run(ReleasePost(member_id="m-c", post_id="post-m-c"))
    assert refused.rejected[0][1].reason == "illegal_transition"


async def test_needs_and_resources_lists_group_by_category(pool):
    app = App(pool, auto_dispatch=False)
    await app.member_with_post("m-r1", "repair", "cleaning", capacity=2)
    await app.member_with_post("m-r2", "repair", capacity=4)
    await app.run(place("o-n1", "repair"))
    await app.run(place("o-n2", "repair"))
    await app.run(place("o-n3", "medical"))
    await app.run(CancelOrder(order_id="o-n3", reason="no longer needed"))
    async with pool.acquire() as conn:
        needs = await queries.community_needs(conn, COMMUNITY)
        res = await queries.community_resources(conn, COMMUNITY)
        other = await queries.community_needs(conn, "110105001099")
    assert needs["open"] == 2 and needs["awaiting_dispatch"] == 2
    assert [(c["category"], c["label"], c["open"]) for c in needs["categories"]] == [("repair", "技术维修", 2)]
    assert {(c["category"], c["members"], c["capacity"]) for c in res["categories"]} == {
        ("cleaning", 1, 2), ("repair", 2, 6)}
    assert res["posts"] == 2 and other["open"] == 0
    assert {(c["category"], c["claimed"], len(c["posts"]), c["next_after"]) for c in res["categories"]} == {
        ("cleaning", 1, 1, None), ("repair", 2, 2, None)}


async def test_resources_count_every_post_and_list_each_category_a_page_at_a_time(pool):
    """A community with many members: every claimed post is counted (by category, members and
    capacity), each category lists a page of its posts by post id, and its ``next_after`` pages
    on through that category's posts, each listed once; a released post is gone from both."""
    app = App(pool, auto_dispatch=False)
    for i in range(23):
        await app.member_with_post(f"m-p{i:02d}", *(("repair", "cleaning") if i % 3 == 0 else ("repair",)),
                                   capacity=1 + i % 4)
    await app.run(ReleasePost(member_id="m-p05", post_id="post-m-p05"))
    claimed = [i for i in range(23) if i != 5]
    async with pool.acquire() as conn:
        first = await queries.community_resources(conn, COMMUNITY, per_category=4)
        pages, after = [], None
        while True:
            page = await queries.community_resources(conn, COMMUNITY, per_category=5, category="repair", after=after)
            [repair] = page["categories"]
            pages.append([p["post_id"] for p in repair["posts"]])
            if (after := repair["next_after"]) is None:
                break
    assert first["posts"] == 22 and first["members"] == 22
    by_cat = {c["category"]: c for c in first["categories"]}
    assert list(by_cat) == ["cleaning", "repair"]
    assert by_cat["repair"]["claimed"] == 22 and by_cat["repair"]["members"] == 22
    assert by_cat["repair"]["capacity"] == sum(1 + i % 4 for i in claimed)
    assert by_cat["cleaning"]["claimed"] == len([i for i in claimed if i % 3 == 0]) == 8
    assert [p["post_id"] for p in by_cat["repair"]["posts"]] == [f"post-m-p{i:02d}" for i in claimed[:4]]
    assert by_cat["repair"]["next_after"] == "post-m-p03" and by_cat["cleaning"]["next_after"] == "post-m-p09"
    assert by_cat["repair"]["posts"][0]["member_name"] == "m-p00" and by_cat["repair"]["posts"][0]["open_orders"] == 0
    assert [len(p) for p in pages] == [5, 5, 5, 5, 2]
    assert sum(pages, []) == [f"post-m-p{i:02d}" for i in claimed]
    assert page["posts"] == 22  # the community's, whatever the category


async def test_orders_are_filtered_by_community_status_category_and_assignee(pool):
    app = App(pool)
    await app.member_with_post("m-f")
    await app.run(place("o-f1"))
    await app.run(place("o-f2", "medical"))
    async with pool.acquire() as conn:
        by_assignee = as_json(await queries.list_orders(conn, assignee_id="m-f"))
        by_status = as_json(await queries.list_orders(conn, community_id=COMMUNITY, status="placed"))
        by_category = as_json(await queries.list_orders(conn, category="medical", limit=1, offset=0))
        empty = await queries.list_orders(conn, community_id="110105001099")
        counts = await queries.status_counts(conn)
        looked_up = [await queries.get_order(conn, o) for o in ("o-f1", "o-f2")]
    assert [o["order_id"] for o in by_assignee["items"]] == ["o-f1"]
    # an order's kept answer (with the label and whether it awaits dispatch) is its lookup without the history
    for listed, order in zip((by_assignee["items"][0], by_status["items"][0]), looked_up):
        del order["history"]
        assert list(listed) == list(order) and typed(listed) == typed(as_json(order))
    assert [o["order_id"] for o in by_status["items"]] == ["o-f2"]
    assert by_category["total"] == 1 and by_category["items"][0]["category_label"] == "医疗保障"
    assert empty == {"items": [], "total": 0, "total_exact": True, "limit": 50, "offset": 0, "next_cursor": None}
    assert counts["dispatched"] == 1 and counts["placed"] == 1 and counts["evaluated"] == 0


async def test_a_communitys_list_takes_its_total_from_the_kept_counts_only_for_a_reader_of_all_of_it(pool):
    """A list of a community's orders (of one status or all), or of every order, asked by a
    reader of all of them gives the total of ``order_counts``, exact without counting; with
    another filter, or for a reader of some of them, the matching orders are counted."""
    app = App(pool)
    await app.member_with_post("m-k")
    await app.run(place("o-k1"))
    await app.run(place("o-k2", "medical"))
    async with pool.acquire() as conn:
        for kw, total in (({"community_id": COMMUNITY}, 2), ({"community_id": COMMUNITY, "status": "placed"}, 1),
                          ({"status": "dispatched"}, 1), ({}, 2), ({"community_id": "110105001099"}, 0)):
            page = await queries.list_orders(conn, whole=True, **kw)
            assert (page["total"], page["total_exact"], len(page["items"])) == (total, True, total), kw
        # the kept counts are what those lists read: made wrong on purpose, they show through
        await conn.execute("UPDATE order_counts SET n = n + 40 WHERE community_id = $1", COMMUNITY)
        assert (await queries.list_orders(conn, community_id=COMMUNITY, whole=True))["total"] == 82
        assert (await queries.list_orders(conn, status="placed", whole=True))["total"] == 41
        # ... and not the lists they do not count: another filter, a reader of part of them
        assert (await queries.list_orders(conn, community_id=COMMUNITY, category="medical", whole=True))["total"] == 1
        assert (await queries.list_orders(conn, community_id=COMMUNITY))["total"] == 2
        await conn.execute("UPDATE order_counts SET n = n - 40 WHERE community_id = $1", COMMUNITY)


async def test_the_counts_kept_beside_the_orders_follow_every_insert_change_and_delete(pool):
    """``order_counts`` is kept by the kit's statement triggers on ``orders``: after orders placed,
    dispatched, cancelled, rows changed by hand (one moved to another community) and deleted, it
    equals counting the orders, and a community and status no order has any more has no row."""
    async def counted(conn) -> tuple[dict, dict]:
        kept = {(r["community_id"], r["status"]): r["n"] for r in await conn.fetch(
            "SELECT community_id, status, sum(n) AS n FROM order_counts GROUP BY 1, 2")}
        assert await conn.fetchval(  # and per grid too
            "SELECT count(*) FROM order_counts c WHERE n <> (SELECT count(*) FROM orders o "
            "WHERE (o.community_id, o.status, o.grid_id) = (c.community_id, c.status, c.grid_id))") == 0
        real = {(r["community_id"], r["status"]): r["n"] for r in await conn.fetch(
            "SELECT community_id, status, count(*) AS n FROM orders GROUP BY 1, 2")}
        return kept, real

    app = App(pool)
    await app.member_with_post("m-c")
    await app.run_batch([place("o-c1"), place("o-c2"), place("o-c3", "medical")])
    await app.run(CancelOrder(order_id="o-c1", reason="no longer needed"))
    async with pool.acquire() as conn:
        kept, real = await counted(conn)
        assert kept == real and sum(kept.values()) == 3 and (COMMUNITY, "cancelled") in kept
        await conn.execute("UPDATE orders SET community_id = '110105001099' WHERE order_id = 'o-c3'")
        await conn.execute("UPDATE orders SET description = 'x'")  # no count moves
        kept, real = await counted(conn)
        assert kept == real and kept[("110105001099", "placed")] == 1
        await conn.execute("DELETE FROM orders WHERE order_id IN ('o-c1', 'o-c3')")
        kept, real = await counted(conn)
        assert kept == real and (COMMUNITY, "cancelled") not in kept and ("110105001099", "placed") not in kept
        gauge = await queries.status_counts(conn)  # the metrics gauge reads them too
    assert sum(gauge.values()) == 1 and gauge["cancelled"] == 0


async def test_orders_keep_of_a_grid_case_only_what_the_order_needs(pool):
    """A resident-need case becomes an order with the resident's id and the description of the
    need; its address and position are not kept, and of any other case nothing at all."""
    from schemas.grid import Location
    from tests.support.db import tables_containing

    app = App(pool)
    await app.member_with_post("m-pii", "proxy")
    where = Location(lat=39.917531, lon=116.417531, address="PII-ADDR-c2d9")
    need = grid_case(uid("case"), description="PII-NEED-c2d9").model_copy(update={"location": where})
    other = grid_case(uid("case"), category="environment", description="PII-OTHER-c2d9").model_copy(
        update={"location": where})
    await app.run(need)
    await app.run(other)
    order = await app.order(order_id_for_case(need.case_id))
    assert order["description"] == "PII-NEED-c2d9" and order["resident_id"] == "resident-42"
    async with pool.acquire() as conn:
        for needle in ("PII-ADDR-c2d9", "39.917531", "116.417531", "PII-OTHER-c2d9"):
            assert await tables_containing(conn, "orders", needle) == [], needle
