"""The orders worker as a real process: Kafka intake, grid events, timers, HTTP commands and queries.

One worker for the module (short accept window and timer intervals); each test uses its own
community so the scenarios do not see each other's members and orders.
"""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from schemas.orders import (
    AcceptOrder,
    ClaimPost,
    CompleteOrder,
    EvaluateOrder,
    RegisterMember,
)
from schemas.topics import GRID, ORDERS
from services.orders.domain import order_id_for_case
from tests.support.kafka import command, of_type, produce, read_all, send
from tests.support.identity import command_token, token
from tests.support.procs import Worker, http

from .support import grid_case, uid

pytestmark = pytest.mark.integration

TOKEN = token(sub="console")
ACCEPT_WINDOW = 6.0


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("orders") / "worker.log"
    w = Worker("services.orders.app", {
        "KAFKA_BOOTSTRAP_SERVERS": module_kafka, "DATABASE_URL": module_database_url, "TOPIC_PARTITIONS": "4",
        "ORDERS_ACCEPT_WINDOW_SECONDS": str(ACCEPT_WINDOW),
        "ORDERS_EXPIRY_INTERVAL_SECONDS": "0.5", "ORDERS_METRICS_INTERVAL_SECONDS": "0.5",
    }, prefix="ORDERS_", log=log).start()
    try:
        await w.wait_ready()
        yield w
    finally:
        assert w.stop() == 0, log.read_text()[-4000:]


_communities = iter(range(10, 99))


def community() -> str:
    return f"110105001{next(_communities):03d}"


async def wait_for(fn, *, timeout: float = 20.0, every: float = 0.2):
    """Poll ``fn`` (async, returns a value or None) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        got = await fn()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(every)


async def get(w: Worker, path: str):
    return await http("GET", w.url + path, token=TOKEN)


async def order_when(w: Worker, order_id: str, predicate, timeout: float = 20.0) -> dict:
    async def probe():
        status, body = await get(w, f"/v1/orders/{order_id}")
        return body if status == 200 and predicate(body) else None
    return await wait_for(probe, timeout=timeout)


async def post_command(w: Worker, payload, **kw):
    body = {"id": str(uuid.uuid4()), "type": payload.TYPE, "data": payload.model_dump(mode="json", exclude_none=True)}
    return await http("POST", w.url + "/v1/commands", json=body, token=kw.pop("token", None) or command_token(body))


async def member_with_post(w: Worker, member: str, community_id: str, *categories: str) -> None:
    for payload in (RegisterMember(member_id=member, community_id=community_id, unit_id="unit-9", name=member),
                    ClaimPost(member_id=member, post_id=f"post-{member}", community_id=community_id,
                              categories=list(categories), capacity=3)):
        status, body = await post_command(w, payload)
        assert status == 200 and body["events"], body


async def test_a_grid_resident_need_case_is_ordered_once_dispatched_accepted_completed_and_evaluated_over_kafka(
        worker, module_kafka):
    c = community()
    member = uid("m")
    await send(module_kafka, ORDERS.intake.name,
               command(RegisterMember(member_id=member, community_id=c, unit_id="unit-1", name="张三")),
               command(ClaimPost(member_id=member, post_id=uid("post"), community_id=c, categories=["proxy"])))
    await wait_for(lambda: _ok(get(worker, f"/v1/members/{member}"), lambda b: b["posts"]))

    case_id = uid("case")
    registered = command(grid_case(case_id, grid_id=c + "001"), source="/services/grid")
    again_later = command(grid_case(case_id, grid_id=c + "001"), source="/services/grid")  # same case, new event id
    await send(module_kafka, GRID.events.name, registered, registered, again_later)

    order_id = order_id_for_case(case_id)
    order = await order_when(worker, order_id, lambda o: o["status"] == "dispatched")
    assert (order["assignee_id"], order["dispatched_by"], order["source_case_id"]) == (member, "auto", case_id)

    await send(module_kafka, ORDERS.intake.name, command(AcceptOrder(order_id=order_id, assignee_id=member)))
    await order_when(worker, order_id, lambda o: o["status"] == "accepted")
    await send(module_kafka, ORDERS.intake.name,
               command(CompleteOrder(order_id=order_id, assignee_id=member, service_minutes=45)))
    await order_when(worker, order_id, lambda o: o["status"] == "completed")
    await send(module_kafka, ORDERS.intake.name,
               command(EvaluateOrder(order_id=order_id, rating=4, passed=True, evaluator_id="org-7")))
    order = await order_when(worker, order_id, lambda o: o["status"] == "evaluated")
    assert [h["type"] for h in order["history"]] == [
        "orders.order.placed.v1", "orders.order.dispatched.v1", "orders.order.accepted.v1",
        "orders.order.completed.v1", "orders.order.evaluated.v1"]

    published = await read_all(module_kafka, ORDERS.events.name, min_count=1,
                                predicate=lambda r: isinstance(r["value"], dict)
                                and r["value"].get("subject") == order_id
                                and r["value"]["type"] == "orders.order.evaluated.v1")
    mine = [r["value"] for r in await read_all(module_kafka, ORDERS.events.name)
            if isinstance(r["value"], dict) and r["value"].get("subject") == order_id]
    assert [e["type"] for e in mine].count("orders.order.placed.v1") == 1
    evaluated = published[0]["value"]["data"]
    assert (evaluated["community_id"], evaluated["category"], evaluated["service_minutes"]) == (c, "proxy", 45)
    assert mine[0]["causationid"] == registered.id  # the order's story starts at the grid case
    assert {r["key"] for r in await read_all(module_kafka, ORDERS.events.name)
            if isinstance(r["value"], dict) and r["value"].get("subject") == order_id} == {order_id}


async def test_a_registration_sent_again_under_a_new_id_is_answered_no_change_once(worker, module_kafka):
    c = community()
    member = uid("m")
    register = RegisterMember(member_id=member, community_id=c, unit_id="unit-1", name="李四")
    first, again = command(register), command(register)
    await send(module_kafka, ORDERS.intake.name, first)
    await wait_for(lambda: _ok(get(worker, f"/v1/members/{member}"), lambda b: True))
    await send(module_kafka, ORDERS.intake.name, again, again)  # the second copy: the same command, redelivered

    def answers(r) -> bool:
        return isinstance(r["value"], dict) and r["value"]["data"]["command_id"] in (first.id, again.id)
    [rejection] = [r["value"] for r in await read_all(module_kafka, ORDERS.rejections.name, min_count=1,
                                                      predicate=answers) if answers(r)]
    assert rejection["data"]["command_id"] == again.id and rejection["causationid"] == again.id
    assert (rejection["type"], rejection["data"]["reason"]) == ("orders.command.rejected.v1", "no_change")
    assert rejection["data"]["detail"].startswith("orders.member.register.v1 changes nothing")
    assert not [e for e in await read_all(module_kafka, ORDERS.events.name)
                if isinstance(e["value"], dict) and e["value"].get("causationid") == again.id]

    # over HTTP the same answer, and the same again for the same command id
    body = {"id": str(uuid.uuid4()), "type": register.TYPE, "data": register.model_dump(mode="json", exclude_none=True)}
    status, out = await http("POST", worker.url + "/v1/commands", json=body, token=command_token(body))
    assert (status, out["error"], out["replayed"]) == (409, "no_change", False), out
    assert [e["data"]["reason"] for e in out["events"]] == ["no_change"]
    status, replay = await http("POST", worker.url + "/v1/commands", json=body, token=command_token(body))
    assert (status, replay["error"], replay["replayed"]) == (409, "no_change", True)
    assert replay["events"] == out["events"]


async def _ok(coro, predicate):
    status, body = await coro
    return body if status == 200 and predicate(body) else None


async def test_a_decline_and_an_expiry_each_lead_to_a_new_dispatch(worker, module_kafka):
    c = community()
    a, b, d = (f"m-{c}-{x}" for x in "abc")  # ties break by member id: a, then b, then c
    for m in (a, b, d):
        await member_with_post(worker, m, c, "repair")
    order_id = uid("o")
    status, body = await post_command(worker, _place(order_id, c, "repair"))
    assert status == 200 and [e["type"] for e in body["events"]] == [
        "orders.order.placed.v1", "orders.order.dispatched.v1"]
    assert body["events"][1]["data"]["assignee_id"] == a

    status, body = await post_command(worker, _decline(order_id, a))
    assert status == 200
    assert [(e["type"], e["data"]["assignee_id"]) for e in body["events"]] == [
        ("orders.order.declined.v1", a), ("orders.order.dispatched.v1", b)]

    # b does not accept within the window: the timer expires it and dispatches to the last one
    order = await order_when(worker, order_id, lambda o: o["assignee_id"] == d, timeout=ACCEPT_WINDOW + 15)
    assert order["status"] == "dispatched" and order["attempt"] == 3
    assert [h["type"].split(".")[2] for h in order["history"]] == [
        "placed", "dispatched", "declined", "dispatched", "dispatch_expired", "dispatched"]
    expired = of_type(await read_all(module_kafka, ORDERS.events.name, min_count=1,
                                     predicate=lambda r: isinstance(r["value"], dict)
                                     and r["value"].get("type") == "orders.order.dispatch_expired.v1"),
                      "orders.order.dispatch_expired.v1")
    assert [e["data"]["assignee_id"] for e in expired if e["subject"] == order_id] == [b]

    # the last member lets it expire too: nobody is left, the order waits; a new post takes it
    await order_when(worker, order_id, lambda o: o["status"] == "dispatch_expired", timeout=ACCEPT_WINDOW + 15)
    late = f"m-{c}-z"
    await member_with_post(worker, late, c, "repair")
    order = await order_when(worker, order_id, lambda o: o["assignee_id"] == late)
    assert order["attempt"] == 4 and order["dispatch_misses"] >= 1

    status, text = await http("GET", worker.url + "/metrics")
    assert status == 200
    for name in ('orders_dispatched_total{mode="auto"}', "orders_declined_total", "orders_dispatch_expired_total",
                 'orders_auto_dispatch_misses_total{trigger="expiry"}', "orders_time_to_dispatch_seconds_bucket",
                 'orders_orders{status="dispatched"}'):
        assert name in text, name


def _place(order_id: str, community_id: str, category: str):
    from schemas.orders import PlaceOrder
    return PlaceOrder(order_id=order_id, resident_id="resident-5", grid_id=community_id + "002", category=category,
                      description="水管漏水")


def _decline(order_id: str, member: str):
    from schemas.orders import DeclineOrder
    return DeclineOrder(order_id=order_id, assignee_id=member, reason="不在本地")


async def test_malformed_and_unusable_records_go_to_the_orders_dlq(worker, module_kafka):
    marker = uid("bad").encode()
    await produce(module_kafka, ORDERS.intake.name, [("k-" + marker.decode(), b"{not json " + marker)])
    unusable = command(grid_case(uid("case"), reporter=None), source="/services/grid")  # names nobody
    await send(module_kafka, GRID.events.name, unusable)
    dead = await read_all(module_kafka, ORDERS.dlq.name, min_count=2, predicate=lambda r: (
        (isinstance(r["value"], bytes) and marker in r["value"])
        or (isinstance(r["value"], dict) and r["value"].get("id") == unusable.id)))
    reasons = {r["headers"]["dlq.origin.topic"]: r["headers"]["dlq.error.reason"] for r in dead}
    assert reasons[ORDERS.intake.name] != "handler_error"
    assert reasons[GRID.events.name] == "handler_error"
    status, _ = await get(worker, f"/v1/orders/{order_id_for_case(unusable.subject)}")
    assert status == 404


async def test_http_commands_and_queries_authenticate_validate_and_refuse(worker):
    c = community()
    member = uid("m")
    await member_with_post(worker, member, c, "medical", "cleaning")
    order_id = uid("o")
    place = _place(order_id, c, "medical")

    assert (await post_command(worker, place, token="wrong"))[0] == 401
    assert (await http("GET", worker.url + f"/v1/orders/{order_id}"))[0] == 401
    invalid = {"id": str(uuid.uuid4()), "type": "orders.order.place.v1",
               "data": {**place.model_dump(mode="json"), "category": "gardening"}}
    status, body = await http("POST", worker.url + "/v1/commands", token=command_token(invalid), json=invalid)
    assert status == 422 and body["field"] == "data.category"  # the resident's own order, with a bad field
    status, body = await http("POST", worker.url + "/v1/commands", token=TOKEN, json=invalid)
    assert status == 403 and body["error"] == "forbidden"  # not a resident: refused whatever the body holds

    status, body = await post_command(worker, place)
    assert status == 200
    status, body = await post_command(worker, AcceptOrder(order_id=order_id, assignee_id="someone-else"))
    assert status == 409 and body["error"] == "unknown_order" and body["field"] == "order_id"  # not theirs
    status, body = await post_command(worker, CompleteOrder(order_id=order_id, assignee_id=member, service_minutes=5))
    assert status == 409 and body["error"] == "illegal_transition"
    status, body = await post_command(worker, AcceptOrder(order_id=uid("o"), assignee_id=member))
    assert status == 409 and body["error"] == "unknown_order"

    status, order = await get(worker, f"/v1/orders/{order_id}")
    assert status == 200 and order["assignee_id"] == member and len(order["history"]) == 2
    assert (await get(worker, f"/v1/orders/{uid('o')}"))[0] == 404

    status, page = await get(worker, f"/v1/orders?community_id={c}&status=dispatched&category=medical&assignee_id={member}")
    assert status == 200 and [o["order_id"] for o in page["items"]] == [order_id] and page["total"] == 1
    for query, field in (("status=lost", "status"), ("category=gardening", "category"),
                         ("community_id=12", "community_id"), ("limit=0", "limit"), ("offset=-1", "offset")):
        status, body = await get(worker, f"/v1/orders?{query}")
        assert status == 422 and body["field"] == field, (query, body)

    status, m = await get(worker, f"/v1/members/{member}")
    assert status == 200 and m["community_id"] == c and m["open_order_count"] == 1
    assert m["posts"][0]["categories"] == ["medical", "cleaning"]
    assert (await get(worker, f"/v1/members/{uid('m')}"))[0] == 404

    status, needs = await get(worker, f"/v1/communities/{c}/needs")
    assert status == 200 and [(x["category"], x["open"]) for x in needs["categories"]] == [("medical", 1)]
    status, res = await get(worker, f"/v1/communities/{c}/resources")
    assert status == 200 and sorted(x["category"] for x in res["categories"]) == ["cleaning", "medical"]
    status, res = await get(worker, f"/v1/communities/{c}/resources?category=medical&per_category=1")
    assert status == 200 and [(x["category"], x["claimed"], x["next_after"]) for x in res["categories"]] == [
        ("medical", 1, None)]
    for query, field in (("after=post-1", "after"), ("per_category=0", "per_category"), ("category=x", "category")):
        status, body = await get(worker, f"/v1/communities/{c}/resources?{query}")
        assert status == 422 and body["field"] == field, (query, body)
    assert (await get(worker, "/v1/communities/abc/needs"))[0] == 422
