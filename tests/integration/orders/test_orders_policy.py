"""Who may do what in the orders service, on a live worker: every role × every
command, the actors taken from the token, the sender's scope and own records, over HTTP and
Kafka, and the attacks on it that concern orders.

Each test uses its own communities, so the scenarios do not see each other's orders and members.
"""
from __future__ import annotations

import itertools
import uuid

import pytest

from schemas.orders import (
    AcceptOrder, CancelOrder, ClaimPost, CompleteOrder, DeclineOrder, DispatchOrder, EvaluateOrder, PlaceOrder,
    ErasePerson, MoveMember, RateOrder, RegisterMember, ReleasePost,
)
from schemas.topics import ORDERS
from services.kit.identity import ROLES
from services.orders.app.policy import POLICY
from tests.support.identity import all_streets, token
from tests.support.kafka import command, read_all, send
from tests.support.procs import Worker, http

from .support import uid

pytestmark = pytest.mark.integration

AUDITOR = token(sub="auditor-1", roles=["auditor"])
_communities = itertools.count(10)


def community() -> str:
    return f"110105002{next(_communities):03d}"


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("orders-policy") / "worker.log"
    w = Worker("services.orders.app", {
        "KAFKA_BOOTSTRAP_SERVERS": module_kafka, "DATABASE_URL": module_database_url, "TOPIC_PARTITIONS": "4",
    }, prefix="ORDERS_", log=log).start()
    try:
        await w.wait_ready()
        yield w
    finally:
        assert w.stop() == 0, log.read_text()[-4000:]


# -- callers ------------------------------------------------------------------------------------------


def resident(sub: str) -> str:
    return token(sub=sub, roles=["resident"])


def member(sub: str, *more: str, communities: list[str] = ()) -> str:
    return token(sub=sub, roles=["party_member", *more], scope={"communities": list(communities)})


def officer(sub: str, *communities: str, role: str = "community_officer") -> str:
    return token(sub=sub, roles=[role], scope={"communities": list(communities)})


def as_role(role: str) -> str:
    """A token holding only ``role``, with a scope covering the whole test district."""
    return token(sub=f"{role}-{uuid.uuid4().hex[:6]}", roles=[role], scope={"streets": all_streets()})


async def post(w: Worker, payload, tok: str, *, data: dict | None = None):
    body = {"id": str(uuid.uuid4()), "type": payload.TYPE,
            "data": data if data is not None else payload.model_dump(mode="json", exclude_none=True)}
    return await http("POST", w.url + "/v1/commands", json=body, token=tok)


async def ok(w: Worker, payload, tok: str) -> list[dict]:
    status, body = await post(w, payload, tok)
    assert status == 200, (payload.TYPE, status, body)
    return body["events"]


async def unchanged(w: Worker, payload, tok: str) -> bool:
    """Whether the command is answered 409 ``no_change`` (the state already is what it asks)."""
    status, body = await post(w, payload, tok)
    return (status, body.get("error")) == (409, "no_change")


async def get(w: Worker, path: str, tok: str):
    return await http("GET", w.url + path, token=tok)


async def served_order(w: Worker, c: str, resident_id: str, officer_tok: str, member_id: str,
                       category: str = "repair") -> str:
    """A member of ``c`` with a post of ``category``; an order of ``resident_id`` dispatched to them."""
    await ok(w, RegisterMember(member_id=member_id, community_id=c, unit_id="单位-7", name="张党员",
                               unit_name="区财政局"), officer_tok)
    await ok(w, ClaimPost(post_id=uid("post"), community_id=c, categories=[category]), member(member_id))
    order_id = uid("o")
    events = await ok(w, PlaceOrder(order_id=order_id, grid_id=c + "001", category=category, description="水管漏水"),
                      resident(resident_id))
    assert [e["type"] for e in events] == ["orders.order.placed.v1", "orders.order.dispatched.v1"], events
    assert events[1]["data"]["assignee_id"] == member_id
    return order_id


# -- 1. every role × every command ----------------------------------------------------------------------


def _matrix_commands(c: str) -> list[tuple[type, dict]]:
    """Each command with its actor fields left out (the token fills them); the orders named do not exist."""
    nowhere = uid("o")
    return [
        (PlaceOrder, {"order_id": uid("o"), "grid_id": c + "001", "category": "repair", "description": "x"}),
        (CancelOrder, {"order_id": nowhere, "reason": "x"}),
        (RateOrder, {"order_id": nowhere, "rating": 5}),
        (EvaluateOrder, {"order_id": nowhere, "rating": 5, "passed": True}),
        (DispatchOrder, {"order_id": nowhere}),
        (AcceptOrder, {"order_id": nowhere}),
        (DeclineOrder, {"order_id": nowhere, "reason": "x"}),
        (CompleteOrder, {"order_id": nowhere, "service_minutes": 30}),
        (ClaimPost, {"post_id": uid("post"), "community_id": c, "categories": ["repair"]}),
        (ReleasePost, {"post_id": uid("post")}),
        (RegisterMember, {"member_id": uid("m"), "community_id": c, "unit_id": "u-1"}),
        (MoveMember, {"member_id": uid("m"), "community_id": c}),
        (ErasePerson, {"person_id": uid("p"), "reason": "matrix"}),
    ]


def test_the_matrix_covers_every_command_of_the_policy():
    assert {cls for cls, _ in _matrix_commands("110105002001")} == set(POLICY.commands)


async def test_every_role_may_send_exactly_the_commands_the_policy_grants_it(worker):
    c = community()
    outcome: dict[tuple[str, str], tuple[int, str]] = {}
    for role in ROLES:
        tok = as_role(role)
        for cls, data in _matrix_commands(c):
            status, body = await post(worker, cls, tok, data=data)
            outcome[(role, cls.TYPE)] = (status, body.get("error"))
    wrong = []
    for (role, type_), (status, error) in outcome.items():
        cls = next(k for k in POLICY.commands if k.TYPE == type_)
        if role in POLICY.roles_for(cls):
            if status in (401, 403):
                wrong.append((role, type_, status, error))
        elif (status, error) != (403, "forbidden"):
            wrong.append((role, type_, status, error))
    assert not wrong
    # where the state allows it, the granted sender succeeds; elsewhere it meets the rules, not the policy
    assert outcome[("resident", PlaceOrder.TYPE)] == (200, None)
    assert outcome[("community_officer", RegisterMember.TYPE)] == (200, None)
    assert outcome[("street_officer", RegisterMember.TYPE)] == (200, None)
    assert outcome[("community_officer", MoveMember.TYPE)] == (409, "unknown_member")
    assert outcome[("party_member", AcceptOrder.TYPE)] == (409, "unknown_order")
    assert outcome[("party_member", ClaimPost.TYPE)] == (409, "unknown_member")
    assert outcome[("party_member", ReleasePost.TYPE)] == (409, "unknown_post")
    assert outcome[("resident", RateOrder.TYPE)] == (409, "unknown_order")
    assert outcome[("community_officer", EvaluateOrder.TYPE)] == (409, "unknown_order")
    assert outcome[("resident", EvaluateOrder.TYPE)] == (403, "forbidden")  # 考单 is the organisation's


async def test_a_member_who_moved_is_recorded_by_the_new_communitys_office_with_a_fresh_deadline(worker):
    """orders.member.move.v1: the office of the community the member moved to records it (the old
    community's office may not); the member's record shows the new community, and the same move
    again changes nothing."""
    c, there = community(), community()
    mid = uid("pm")
    await ok(worker, RegisterMember(member_id=mid, community_id=c, unit_id="u-1"), officer("officer-here", c))
    status, body = await post(worker, MoveMember(member_id=mid, community_id=there), officer("officer-here", c))
    assert (status, body.get("error")) == (403, "forbidden"), body
    [moved] = await ok(worker, MoveMember(member_id=mid, community_id=there), officer("officer-there", there))
    assert moved["type"] == "orders.member.moved.v1"
    assert (moved["data"]["community_id"], moved["data"]["from_community_id"]) == (there, c)
    assert moved["data"]["report_by"] > moved["data"]["occurred_at"]
    assert await unchanged(worker, MoveMember(member_id=mid, community_id=there), officer("officer-there", there))
    status, m = await get(worker, f"/v1/members/{mid}", AUDITOR)
    assert status == 200 and m["community_id"] == there, m


async def test_the_whole_story_succeeds_for_the_senders_the_policy_names(worker):
    c = community()
    off = officer("officer-s", c)
    order_id = await served_order(worker, c, "res-story", off, "pm-story")
    pm = member("pm-story")
    [accepted] = await ok(worker, AcceptOrder(order_id=order_id), pm)
    assert accepted["data"]["assignee_id"] == "pm-story"
    await ok(worker, CompleteOrder(order_id=order_id, service_minutes=60), pm)
    [rated] = await ok(worker, RateOrder(order_id=order_id, rating=4, comment="很及时"), resident("res-story"))
    assert rated["type"] == "orders.order.rated.v1"
    assert {k: rated["data"].get(k) for k in ("order_id", "resident_id", "rating", "comment")} == {
        "order_id": order_id, "resident_id": "res-story", "rating": 4, "comment": "很及时"}
    assert rated["data"]["occurred_at"]
    assert await unchanged(worker, RateOrder(order_id=order_id, rating=4, comment="很及时"), resident("res-story"))
    status, body = await post(worker, RateOrder(order_id=order_id, rating=1), resident("res-story"))
    assert (status, body["error"], body.get("field")) == (409, "already_rated", "rating")
    status, order = await get(worker, f"/v1/orders/{order_id}", resident("res-story"))
    assert (order["status"], order["resident_rating"], order["resident_comment"], order["rating"]) == (
        "completed", 4, "很及时", None)
    [evaluated] = await ok(worker, EvaluateOrder(order_id=order_id, passed=True), off)  # carries the rating
    assert evaluated["type"] == "orders.order.evaluated.v1"
    assert {k: evaluated["data"][k] for k in ("assignee_id", "rating", "passed", "evaluator_id")} == {
        "assignee_id": "pm-story", "rating": 4, "passed": True, "evaluator_id": "officer-s"}
    status, order = await get(worker, f"/v1/orders/{order_id}", resident("res-story"))
    assert (order["status"], order["resident_rating"], order["rating"], order["passed"]) == ("evaluated", 4, 4, True)
    assert [e["type"] for e in order["history"]][-2:] == ["orders.order.rated.v1", "orders.order.evaluated.v1"]

    # an officer's 考单, a manual dispatch, a decline, a cancellation, a release
    second = await served_order(worker, c, "res-story", off, "pm-story-2", category="cleaning")
    [declined, *_] = await ok(worker, DeclineOrder(order_id=second, reason="出差"), member("pm-story-2"))
    assert declined["data"]["assignee_id"] == "pm-story-2"
    [dispatched] = await ok(worker, DispatchOrder(order_id=second, assignee_id="pm-story-2"), off)
    assert dispatched["data"]["dispatched_by"] == "officer-s"
    await ok(worker, AcceptOrder(order_id=second), member("pm-story-2"))
    await ok(worker, CompleteOrder(order_id=second, service_minutes=20), member("pm-story-2"))
    status, body = await post(worker, EvaluateOrder(order_id=second, passed=False), off)  # nobody rated it
    assert (status, body["error"], body.get("field")) == (409, "rating_required", "rating")
    [review] = await ok(worker, EvaluateOrder(order_id=second, rating=3, passed=False), off)
    assert review["data"]["evaluator_id"] == "officer-s"
    third = uid("o")
    await ok(worker, PlaceOrder(order_id=third, grid_id=c + "002", category="medical", description="x"),
             resident("res-story"))
    [cancelled] = await ok(worker, CancelOrder(order_id=third, reason="不需要了"), resident("res-story"))
    assert cancelled["data"]["cancelled_by"] == "res-story"
    status, m = await get(worker, "/v1/members/pm-story", AUDITOR)
    [held] = m["posts"]
    [released] = await ok(worker, ReleasePost(post_id=held["post_id"]), member("pm-story"))
    assert released["data"]["member_id"] == "pm-story"


# -- 2. over Kafka --------------------------------------------------------------------------------------


async def _rejection(kafka: str, command_id: str) -> dict:
    found = await read_all(kafka, ORDERS.rejections.name, min_count=1, predicate=lambda r: (
        isinstance(r["value"], dict) and r["value"]["data"].get("command_id") == command_id))
    assert found, f"no rejection of {command_id}"
    return found[0]["value"]["data"]


async def test_over_kafka_a_command_without_a_token_is_unauthenticated_and_a_forbidden_one_is_refused(
        worker, module_kafka):
    from schemas.envelope import CONTENT_TYPE, encode
    from tests.support.kafka import produce

    c = community()
    place = command(PlaceOrder(order_id=uid("o"), resident_id="res-k", grid_id=c + "001", category="repair",
                               description="x"))
    await produce(module_kafka, ORDERS.intake.name,
                  [(place.subject, encode(place), [("content-type", CONTENT_TYPE.encode())])])
    assert (await _rejection(module_kafka, place.id))["reason"] == "unauthenticated"

    as_member = command(PlaceOrder(order_id=uid("o"), resident_id="pm-k", grid_id=c + "001", category="repair",
                                   description="x"))
    await send(module_kafka, ORDERS.intake.name, as_member, token=member("pm-k"))
    assert (await _rejection(module_kafka, as_member.id))["reason"] == "forbidden"

    for_another = command(PlaceOrder(order_id=uid("o"), resident_id="res-other", grid_id=c + "001",
                                     category="repair", description="x"))
    await send(module_kafka, ORDERS.intake.name, for_another, token=resident("res-k"))
    refused = await _rejection(module_kafka, for_another.id)
    assert (refused["reason"], refused["field"]) == ("forbidden", "resident_id")
    for env in (place, as_member, for_another):
        assert (await get(worker, f"/v1/orders/{env.subject}", AUDITOR))[0] == 404


# -- 3. actors come from the token ----------------------------------------------------------------------


async def test_a_body_naming_someone_else_is_refused_and_an_omitted_actor_is_the_sender(worker):
    c = community()
    off = officer("officer-a", c)
    order_id = await served_order(worker, c, "res-actor", off, "pm-actor")
    refusals = [
        (PlaceOrder(order_id=uid("o"), resident_id="res-victim", grid_id=c + "001", category="repair",
                    description="x"), resident("res-actor"), "resident_id"),
        (AcceptOrder(order_id=order_id, assignee_id="pm-actor"), member("pm-intruder"), "assignee_id"),
        (EvaluateOrder(order_id=order_id, rating=5, passed=True, evaluator_id="officer-z"), off, "evaluator_id"),
        (RateOrder(order_id=order_id, rating=5, resident_id="res-victim"), resident("res-actor"), "resident_id"),
        (DispatchOrder(order_id=order_id, assignee_id="pm-actor", dispatched_by="officer-z"), off, "dispatched_by"),
        (CancelOrder(order_id=order_id, reason="x", cancelled_by="res-actor"), off, "cancelled_by"),
        (ClaimPost(member_id="pm-actor", post_id=uid("post"), community_id=c, categories=["repair"]),
         member("pm-intruder"), "member_id"),
    ]
    for payload, tok, field in refusals:
        status, body = await post(worker, payload, tok)
        assert (status, body["error"], body.get("field")) == (403, "forbidden", field), (payload.TYPE, body)

    placed, *_ = await ok(worker, PlaceOrder(order_id=uid("o"), grid_id=c + "001", category="medical",
                                             description="x"), resident("res-actor"))
    assert placed["data"]["resident_id"] == "res-actor"
    status, order = await get(worker, f"/v1/orders/{order_id}", AUDITOR)
    assert order["status"] == "dispatched" and order["assignee_id"] == "pm-actor"  # nothing above touched it


async def test_the_assignee_never_evaluates_their_own_order_even_as_an_officer(worker):
    c = community()
    off = officer("officer-e", c)
    order_id = await served_order(worker, c, "res-e", off, "pm-e")
    both = member("pm-e", "community_officer", communities=[c])
    await ok(worker, AcceptOrder(order_id=order_id), both)
    await ok(worker, CompleteOrder(order_id=order_id, service_minutes=30), both)
    status, body = await post(worker, EvaluateOrder(order_id=order_id, rating=5, passed=True), both)
    assert (status, body["error"]) == (409, "self_evaluation")
    status, body = await post(worker, EvaluateOrder(order_id=order_id, rating=5, passed=True), member("pm-e"))
    assert (status, body["error"]) == (403, "forbidden")


# -- 4. scope and own records ---------------------------------------------------------------------------


async def test_an_officer_of_community_a_neither_sees_nor_acts_on_community_b(worker):
    a, b = community(), community()
    off_a, off_b = officer("officer-a1", a), officer("officer-b1", b)
    order_a = await served_order(worker, a, "res-a1", off_a, "pm-a1")
    order_b = await served_order(worker, b, "res-b1", off_b, "pm-b1")
    unknown = uid("o")

    assert (await get(worker, f"/v1/orders/{order_a}", off_a))[0] == 200
    for path in (f"/v1/orders/{order_b}", "/v1/members/pm-b1", f"/v1/communities/{b}/needs",
                 f"/v1/communities/{b}/resources"):
        status, body = await get(worker, path, off_a)
        assert (status, body["error"]) == (404, "not_found"), path
    status, page = await get(worker, "/v1/orders?limit=500", off_a)
    assert status == 200 and {o["order_id"] for o in page["items"]} == {order_a} and page["total"] == 1
    status, page = await get(worker, f"/v1/orders?community_id={b}", off_a)
    assert (status, page["items"], page["total"]) == (200, [], 0)

    # a command on B's order is refused exactly as one on an order that does not exist
    for cmd in (DispatchOrder(order_id=order_b), CancelOrder(order_id=order_b, reason="x"),
                EvaluateOrder(order_id=order_b, rating=1, passed=False)):
        theirs = await post(worker, cmd, off_a)
        none = await post(worker, cmd.model_copy(update={"order_id": unknown}), off_a)
        assert theirs[0] == none[0] == 409
        assert theirs[1]["error"] == none[1]["error"] == "unknown_order"
        assert theirs[1]["detail"].replace(order_b, "?") == none[1]["detail"].replace(unknown, "?")
    status, body = await post(worker, RegisterMember(member_id=uid("m"), community_id=b, unit_id="u"), off_a)
    assert (status, body["error"]) == (403, "forbidden")

    # the street officer of both sees both
    street = token(sub="street-1", roles=["street_officer"], scope={"streets": [a[:9]]})
    status, page = await get(worker, "/v1/orders", street)
    assert {order_a, order_b} <= {o["order_id"] for o in page["items"]}
    assert (await get(worker, f"/v1/communities/{b}/resources", street))[0] == 200


async def test_a_resident_and_a_member_read_and_act_on_only_their_own_records(worker):
    c = community()
    off = officer("officer-r", c)
    mine = await served_order(worker, c, "res-own", off, "pm-own")
    theirs = await served_order(worker, c, "res-else", off, "pm-else", category="cleaning")
    me = resident("res-own")

    assert (await get(worker, f"/v1/orders/{mine}", me))[0] == 200
    assert (await get(worker, f"/v1/orders/{theirs}", me))[0] == 404
    status, page = await get(worker, "/v1/orders", me)
    assert status == 200 and [o["order_id"] for o in page["items"]] == [mine]
    status, page = await get(worker, f"/v1/orders?community_id={c}&category=cleaning", me)
    assert page["items"] == [] and page["total"] == 0
    for cmd in (CancelOrder(order_id=theirs, reason="x"), RateOrder(order_id=theirs, rating=1)):
        status, body = await post(worker, cmd, me)
        assert (status, body["error"]) == (409, "unknown_order")
    status, body = await post(worker, EvaluateOrder(order_id=theirs, rating=1, passed=False), me)
    assert (status, body["error"]) == (403, "forbidden")
    assert (await get(worker, "/v1/orders/" + theirs, AUDITOR))[1]["status"] == "dispatched"

    pm = member("pm-own")
    assert (await get(worker, f"/v1/orders/{mine}", pm))[0] == 200
    assert (await get(worker, f"/v1/orders/{theirs}", pm))[0] == 404
    status, page = await get(worker, "/v1/orders", pm)
    assert [o["order_id"] for o in page["items"]] == [mine]
    for cmd in (AcceptOrder(order_id=theirs), DeclineOrder(order_id=theirs, reason="x"),
                CompleteOrder(order_id=theirs, service_minutes=5)):
        status, body = await post(worker, cmd, pm)
        assert (status, body["error"]) == (409, "unknown_order"), cmd.TYPE
    status, m = await get(worker, "/v1/members/pm-else", AUDITOR)
    status, body = await post(worker, ReleasePost(post_id=m["posts"][0]["post_id"]), pm)
    assert (status, body["error"]) == (409, "unknown_post")
    assert (await get(worker, "/v1/members/pm-own", pm))[0] == 200
    assert (await get(worker, "/v1/members/pm-else", pm))[0] == 404

    # a member who is also a resident reads the orders they placed as well
    both = token(sub="res-own", roles=["resident", "party_member"])
    status, page = await get(worker, "/v1/orders", both)
    assert [o["order_id"] for o in page["items"]] == [mine]


# -- 5. the attack: any token reads members' names and work units -------------------------------------


async def test_no_token_but_the_members_own_an_officer_in_scope_or_an_auditor_reads_names_and_work_units(worker):
    c = community()
    off = officer("officer-pii", c)
    await served_order(worker, c, "res-pii", off, "pm-pii")
    other = community()
    callers = {f"{role} (whole district)": as_role(role) for role in ROLES
               if role not in ("community_officer", "street_officer", "auditor")}
    callers |= {"community officer of another community": officer("officer-x", other),
                "another party member": member("pm-nosy"), "another resident": resident("res-nosy")}
    for who, tok in callers.items():
        for path in ("/v1/members/pm-pii", f"/v1/communities/{c}/resources", f"/v1/communities/{c}/needs"):
            status, body = await get(worker, path, tok)
            assert status in (403, 404), (who, path, status)
            assert "张党员" not in str(body) and "区财政局" not in str(body), (who, path)
        status, page = await get(worker, "/v1/orders", tok)
        assert status == 403 or page["items"] == [], who  # nor through the orders they do not own

    for who, tok in {"the member": member("pm-pii"), "an officer of the community": off,
                     "the auditor": AUDITOR}.items():
        status, m = await get(worker, "/v1/members/pm-pii", tok)
        assert (status, m["name"], m["unit_name"]) == (200, "张党员", "区财政局"), who
    status, res = await get(worker, f"/v1/communities/{c}/resources", off)
    assert res["categories"][0]["posts"][0]["member_name"] == "张党员"


# -- 6. the attack: a resident and a member farm points with a 考单 of their own -------------------------


async def test_a_resident_and_the_member_who_served_them_cannot_pass_the_order_without_an_officer(
        worker, module_kafka):
    """The resident who placed an order and the member who served it collude: the resident's
    rating is all they can give, no ``orders.order.evaluated.v1`` comes of it (the points
    service awards a member only for a passed 考单), and the resident's 考单 is refused."""
    c = community()
    off = officer("officer-farm", c)
    order_id = await served_order(worker, c, "res-farm", off, "pm-farm")
    pm, me = member("pm-farm"), resident("res-farm")
    await ok(worker, AcceptOrder(order_id=order_id), pm)
    await ok(worker, CompleteOrder(order_id=order_id, service_minutes=600), pm)

    for tok in (me, pm, member("pm-farm", "resident")):
        for evaluate in (EvaluateOrder(order_id=order_id, rating=5, passed=True),
                         EvaluateOrder(order_id=order_id, passed=True)):
            status, body = await post(worker, evaluate, tok)
            assert (status, body["error"]) == (403, "forbidden")
    status, body = await post(worker, RateOrder(order_id=order_id, rating=5), pm)  # not the resident
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await post(worker, RateOrder(order_id=order_id, rating=5), member("pm-farm", "resident"))
    assert (status, body["error"]) == (409, "unknown_order")  # a member who is a resident too, but not this one's
    events = await ok(worker, RateOrder(order_id=order_id, rating=5, comment="非常满意"), me)
    assert [e["type"] for e in events] == ["orders.order.rated.v1"]

    # over Kafka as well: the resident's 考单 is refused, nothing is evaluated
    over_kafka = command(EvaluateOrder(order_id=order_id, rating=5, passed=True, evaluator_id="res-farm"))
    await send(module_kafka, ORDERS.intake.name, over_kafka, token=me)
    assert (await _rejection(module_kafka, over_kafka.id))["reason"] == "forbidden"

    status, order = await get(worker, f"/v1/orders/{order_id}", AUDITOR)
    assert (order["status"], order["passed"], order["resident_rating"]) == ("completed", None, 5)
    assert "orders.order.evaluated.v1" not in [e["type"] for e in order["history"]]
    published = await read_all(module_kafka, ORDERS.events.name, min_count=5, predicate=lambda r: (
        isinstance(r["value"], dict) and r["value"].get("subject") == order_id))
    types = [r["value"]["type"] for r in published]
    assert "orders.order.rated.v1" in types and "orders.order.evaluated.v1" not in types, types
    # the points service awards a member on a passed 考单 only: a rating is nothing it reacts to
    from services.points.app.handler import PointsHandler
    reacts_to = {c.TYPE for c in PointsHandler._handlers}
    assert "orders.order.evaluated.v1" in reacts_to and "orders.order.rated.v1" not in reacts_to

    # only the officer's 考单 passes it (and that is what the points service awards on)
    [evaluated] = await ok(worker, EvaluateOrder(order_id=order_id, passed=True), off)
    assert (evaluated["data"]["evaluator_id"], evaluated["data"]["rating"]) == ("officer-farm", 5)
