"""The points worker as a real process (one per module): awards from orders and grid over
Kafka exactly once, deeds, redemptions and refusals, caps, expiry, the HTTP commands and
every query, the ledger check and the metrics."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
import yaml

from schemas.grid import CaseDismissed, CaseRegistered, CaseReported
from schemas.orders import OrderEvaluated
from schemas.points import OpenAccount, Redeem, ReviewDeed, SubmitDeed
from services.points import DEFAULT_RULES_PATH
from services.points.domain import award_transfer_id, deed_transfer_id
from services.points.domain.clock import month_of, year_of
from tests.support.kafka import command, of_type, read_all, send
from tests.support.identity import command_token, token
from tests.support.procs import Worker, http

pytestmark = pytest.mark.integration

TOKEN = token(sub="console")
ORDERS_SOURCE = "/services/orders"
GRID_SOURCE = "/services/grid"


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("points-worker")
    rules = yaml.safe_load(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    rules["validity"] = {"days": 1}  # so that an award dated three days ago is due at once
    (d / "earning.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    w = Worker("services.points.app", {
        "KAFKA_BOOTSTRAP_SERVERS": module_kafka, "DATABASE_URL": module_database_url, "TOPIC_PARTITIONS": "4",
        "POINTS_RULES_PATH": str(d / "earning.yaml"),
        "POINTS_EXPIRY_INTERVAL_SECONDS": "0.5", "POINTS_METRICS_INTERVAL_SECONDS": "0.5",
        "POINTS_MORAL_MODEL_CANDIDATES": "1",
    }, prefix="POINTS_", log=d / "worker.log").start()
    try:
        await w.wait_ready()
        w.kafka = module_kafka
        yield w
    finally:
        code = w.stop()
        assert code == 0, (d / "worker.log").read_text()[-4000:]


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def get(w: Worker, path: str, **kw):
    return await http("GET", w.url + path, token=TOKEN, **kw)


async def eventually(probe, timeout: float = 20.0):
    """Poll ``probe()`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


async def balance(w: Worker, account_id: str) -> int | None:
    status, body = await get(w, f"/v1/accounts/{account_id}")
    return body["balance"] if status == 200 else None


async def balance_is(w: Worker, account_id: str, expected: int) -> None:
    async def probe():
        return await balance(w, account_id) == expected
    await eventually(probe)


SENDER = object()


async def post_command(w: Worker, type_: str, data: dict, *, id: str | None = None, token=SENDER):
    """POST a command, by default with the token of the sender it names (the policy's role)."""
    body = {"id": id or str(uuid.uuid4()), "type": type_, "data": data}
    return await http("POST", w.url + "/v1/commands", json=body,
                      token=command_token(body) if token is SENDER else token)


async def consent_code(w: Worker, resident: str, amount: int) -> str:
    """A resident's consent to one redemption of at most ``amount`` (POST /v1/redemption-codes)."""
    status, body = await http("POST", w.url + "/v1/redemption-codes", json={"amount": amount},
                              token=token(sub=resident, roles=["resident"]))
    assert status == 201 and body["account_id"] == f"resident:{resident}", body
    return body["code"]


def evaluated(assignee: str, *, category: str = "daily_care", minutes: int = 60, passed: bool = True,
              community: str = "110105001002") -> OrderEvaluated:
    return OrderEvaluated(order_id=str(uuid.uuid4()), assignee_id=assignee, rating=5, passed=passed,
                          evaluator_id="operator-3", community_id=community, grid_id=community + "003",
                          category=category, service_minutes=minutes)


def reported(case_id: str, reporter_id: str, *, kind: str = "resident", category: str = "hazard.fire") -> CaseReported:
    return CaseReported(case_id=case_id, grid_id="110105001002003", category=category, description="楼道堆放纸箱",
                        location={"lat": 39.92, "lon": 116.44, "address": "金台里3号楼"},
                        reporter={"kind": kind, "id": reporter_id}, grade="general" if category.startswith("hazard") else None)


def registered(case_id: str) -> CaseRegistered:
    return CaseRegistered(case_id=case_id, due_at=datetime.now(timezone.utc) + timedelta(hours=1),
                          department="城市管理办公室")


# -- awards from orders -------------------------------------------------------------------


async def test_a_passed_order_delivered_three_times_is_awarded_once(worker):
    assignee = uid("member")
    event = command(evaluated(assignee, minutes=60), source=ORDERS_SOURCE)
    await send(worker.kafka, "orders.events.v1", event, event, event)
    await balance_is(worker, f"resident:{assignee}", 7)  # daily_care: 2 + 60 min * 5/h
    await asyncio.sleep(1.5)  # let any further delivery be handled
    assert await balance(worker, f"resident:{assignee}") == 7
    transfer_id = award_transfer_id(ORDERS_SOURCE, event.id, "order")
    posted = [e for e in of_type(await read_all(worker.kafka, "points.events.v1", min_count=1), "points.transfer.posted.v1")
              if e["data"]["transfer_id"] == transfer_id]
    assert len(posted) == 1
    assert posted[0]["data"]["amount"] == 7 and posted[0]["data"]["category"] == "daily_care"
    assert posted[0]["data"]["credit_account"] == f"resident:{assignee}"
    assert posted[0]["causationid"] == event.id
    status, statement = await get(worker, f"/v1/accounts/resident:{assignee}/statement")
    assert status == 200 and statement["total"] == 1
    assert statement["items"][0]["change"] == 7 and statement["items"][0]["source_event_id"] == event.id


async def test_a_failed_order_earns_nothing(worker):
    assignee = uid("member")
    await send(worker.kafka, "orders.events.v1", command(evaluated(assignee, passed=False), source=ORDERS_SOURCE))
    marker = uid("member")  # a later passed order on the same partition path shows the first was handled
    await send(worker.kafka, "orders.events.v1", command(evaluated(marker), source=ORDERS_SOURCE))
    await balance_is(worker, f"resident:{marker}", 7)
    assert (await get(worker, f"/v1/accounts/resident:{assignee}"))[0] == 404


async def test_an_award_over_the_daily_cap_is_refused_with_an_event(worker):
    assignee = uid("member")
    at = datetime.now(timezone.utc) - timedelta(minutes=1)
    first = command(evaluated(assignee, category="legal_aid", minutes=240), source=ORDERS_SOURCE, time=at)
    second = command(evaluated(assignee, category="legal_aid", minutes=240), source=ORDERS_SOURCE, time=at)
    await send(worker.kafka, "orders.events.v1", first)
    await balance_is(worker, f"resident:{assignee}", 29)  # 5 + 4 h * 6, under the max 30
    await send(worker.kafka, "orders.events.v1", second)  # 29 + 29 > the daily cap 50
    refused_id = award_transfer_id(ORDERS_SOURCE, second.id, "order")

    async def refusal():
        events = of_type(await read_all(worker.kafka, "points.events.v1", min_count=1, timeout=2),
                         "points.transfer.refused.v1")
        return [e for e in events if e["data"]["transfer_id"] == refused_id]
    [refused] = await eventually(refusal)
    assert refused["data"]["reason"] == "cap_reached" and refused["data"]["account_id"] == f"resident:{assignee}"
    assert await balance(worker, f"resident:{assignee}") == 29


async def test_points_older_than_the_validity_expire_once_back_to_the_issuer(worker):
    assignee = uid("member")
    old = command(evaluated(assignee, minutes=60, community="110105001004"), source=ORDERS_SOURCE,
                  time=datetime.now(timezone.utc) - timedelta(days=3))
    await send(worker.kafka, "orders.events.v1", old)

    async def expired():
        status, body = await get(worker, f"/v1/accounts/resident:{assignee}/statement")
        return body if status == 200 and body["total"] == 2 else None
    statement = await eventually(expired)
    assert [(p["kind"], p["change"]) for p in statement["items"]] == [("expiry", -7), ("award", 7)]
    assert statement["items"][0]["credit_account"] == "issuer:110105001004"
    await asyncio.sleep(1.5)  # several more timer rounds: still one expiry
    assert (await get(worker, f"/v1/accounts/resident:{assignee}/statement"))[1]["total"] == 2
    assert await balance(worker, f"resident:{assignee}") == 0
    assert await balance(worker, "issuer:110105001004") == 0


# -- awards from grid reports ----------------------------------------------------------------


async def test_a_residents_registered_report_awards_the_reporter_in_either_order(worker):
    in_order, out_of_order, dismissed, by_worker = (uid("110105001002003-c") for _ in range(4))
    r1, r2, r3, gw = uid("resident"), uid("resident"), uid("resident"), uid("gw")
    await send(worker.kafka, "grid.events.v1",
               command(reported(in_order, r1), source=GRID_SOURCE), command(registered(in_order), source=GRID_SOURCE),
               command(registered(out_of_order), source=GRID_SOURCE),
               command(reported(out_of_order, r2, category="dispute.neighbour"), source=GRID_SOURCE),
               command(reported(dismissed, r3), source=GRID_SOURCE),
               command(CaseDismissed(case_id=dismissed, reason="duplicate", duplicate_of=in_order), source=GRID_SOURCE),
               command(reported(by_worker, gw, kind="grid_worker"), source=GRID_SOURCE),
               command(registered(by_worker), source=GRID_SOURCE))
    await balance_is(worker, f"resident:{r1}", 5)  # hazard
    await balance_is(worker, f"resident:{r2}", 3)  # dispute, registered before its report arrived
    registration = command(registered(dismissed), source=GRID_SOURCE)  # too late: the case was dismissed
    await send(worker.kafka, "grid.events.v1", registration)
    await asyncio.sleep(1.5)
    assert (await get(worker, f"/v1/accounts/resident:{r3}"))[0] == 404
    assert (await get(worker, f"/v1/accounts/resident:{gw}"))[0] == 404
    assert await balance(worker, f"resident:{r1}") == 5 and await balance(worker, f"resident:{r2}") == 3


# -- deeds, redemptions, refusals over Kafka --------------------------------------------------


async def test_a_deed_submitted_and_approved_over_kafka_is_credited(worker):
    person, deed_id = uid("p"), uid("deed")
    account = f"resident:{person}"
    await send(worker.kafka, "points.intake.v1",
               command(OpenAccount(account_id=account, holder_id=person, kind="resident", community_id="110105001002")),
               command(SubmitDeed(deed_id=deed_id, account_id=account, category="civility_persuasion",
                                  description="劝导乱扔垃圾")),
               command(ReviewDeed(deed_id=deed_id, account_id=account, approved=True, points=10, reviewer_id="rev-1")))
    await balance_is(worker, account, 10)
    status, deed = await get(worker, f"/v1/deeds/{deed_id}")
    assert status == 200 and deed["status"] == "credited" and deed["points"] == 10
    assert deed["transfer_id"] == deed_transfer_id(deed_id) and deed["community_id"] == "110105001002"


async def test_a_redemption_over_the_balance_over_kafka_is_refused_with_both_events(worker):
    person, shop = uid("p"), uid("shop")
    opening = [command(OpenAccount(account_id=f"resident:{person}", holder_id=person, kind="resident")),
               command(OpenAccount(account_id=f"merchant:{shop}", holder_id=shop, kind="merchant"))]
    redeem = command(Redeem(transfer_id=uid("till"), debit_account=f"resident:{person}",
                            credit_account=f"merchant:{shop}", amount=50,
                            consent_code=await consent_code(worker, person, 50)))
    await send(worker.kafka, "points.intake.v1", *opening)  # keyed by different accounts: wait for both
    await balance_is(worker, f"resident:{person}", 0)
    await balance_is(worker, f"merchant:{shop}", 0)
    await send(worker.kafka, "points.intake.v1", redeem)

    async def rejected():
        rej = [r["value"] for r in await read_all(worker.kafka, "points.rejections.v1", min_count=1, timeout=2)
               if r["value"]["data"]["command_id"] == redeem.id]
        return rej
    [rejection] = await eventually(rejected)
    assert rejection["data"]["reason"] == "insufficient_balance" and rejection["data"]["field"] == "amount"
    refused = [e for e in of_type(await read_all(worker.kafka, "points.events.v1", min_count=1),
                                  "points.transfer.refused.v1") if e["causationid"] == redeem.id]
    assert [e["data"]["reason"] for e in refused] == ["insufficient_balance"]
    assert await balance(worker, f"resident:{person}") == 0


# -- HTTP ------------------------------------------------------------------------------------


async def test_commands_over_http_answer_401_422_409_and_replay_idempotently(worker):
    person, shop = uid("p"), uid("shop")
    open_resident = {"account_id": f"resident:{person}", "holder_id": person, "kind": "resident",
                     "community_id": "110105001002"}
    assert (await post_command(worker, "points.account.open.v1", open_resident, token=None))[0] == 401
    assert (await post_command(worker, "points.account.open.v1", open_resident, token="wrong"))[0] == 401
    status, body = await post_command(worker, "points.account.open.v1", {**open_resident, "kind": "alien"})
    assert status == 422 and body["field"] == "data.kind"
    status, body = await post_command(worker, "points.redeem.v1", {"transfer_id": "t", "debit_account": "a",
                                                                   "credit_account": "b", "amount": 0})
    assert status == 422 and body["field"] == "data.amount"

    cmd_id = str(uuid.uuid4())
    status, body = await post_command(worker, "points.account.open.v1", open_resident, id=cmd_id)
    assert status == 200 and [e["type"] for e in body["events"]] == ["points.account.opened.v1"]
    status, again = await post_command(worker, "points.account.open.v1", open_resident, id=cmd_id)
    assert status == 200 and again["replayed"] is True and again["events"] == body["events"]
    status, body = await post_command(worker, "points.account.open.v1",
                                      {**open_resident, "account_id": f"second-{person}"})
    assert status == 422 and body["field"] == "data.account_id"  # the id is <kind>:<holder_id>, never chosen
    assert (await post_command(worker, "points.account.open.v1",
                               {"account_id": f"merchant:{shop}", "holder_id": shop, "kind": "merchant"}))[0] == 200

    # earn 10 by an approved deed, then redeem
    deed_id = uid("deed")
    assert (await post_command(worker, "points.deed.submit.v1", {"deed_id": deed_id, "account_id": f"resident:{person}",
                                                                  "category": "lost_property"}))[0] == 200
    status, body = await post_command(worker, "points.deed.review.v1", {"deed_id": deed_id, "account_id": f"resident:{person}",
                                                                        "approved": True, "points": 30, "reviewer_id": "r"})
    assert status == 409 and body["error"] == "points_out_of_bounds"
    status, body = await post_command(worker, "points.deed.review.v1", {"deed_id": deed_id, "account_id": f"resident:{person}",
                                                                        "approved": True, "points": 8, "reviewer_id": "r"})
    assert status == 200
    assert [e["type"] for e in body["events"]] == ["points.deed.approved.v1", "points.account.opened.v1",
                                                   "points.transfer.posted.v1"] or \
        [e["type"] for e in body["events"]] == ["points.deed.approved.v1", "points.transfer.posted.v1"]
    status, body = await post_command(worker, "points.deed.review.v1", {"deed_id": deed_id, "account_id": f"resident:{person}",
                                                                        "approved": False, "reason": "again", "reviewer_id": "r"})
    assert status == 409 and body["error"] == "illegal_transition"

    redeem = {"transfer_id": uid("till"), "debit_account": f"resident:{person}", "credit_account": f"merchant:{shop}",
              "amount": 9, "consent_code": await consent_code(worker, person, 9)}
    status, body = await post_command(worker, "points.redeem.v1", redeem)
    assert status == 409 and body["error"] == "insufficient_balance"
    assert [e["type"] for e in body["events"]] == ["points.transfer.refused.v1", "points.command.rejected.v1"]
    status, body = await post_command(worker, "points.redeem.v1", {**redeem, "amount": 6})
    assert status == 200 and body["events"][0]["data"]["reason"] == "redemption"
    status, body = await post_command(worker, "points.redeem.v1", {**redeem, "amount": 6})  # same till transfer
    assert (status, body["error"]) == (409, "no_change"), body  # posted already: nothing more
    assert await balance(worker, f"resident:{person}") == 2 and await balance(worker, f"merchant:{shop}") == 6

    # an operator's correction
    status, body = await post_command(worker, "points.adjust.v1", {
        "transfer_id": uid("fix"), "debit_account": f"merchant:{shop}", "credit_account": f"resident:{person}",
        "amount": 1, "operator_id": "op-1", "reason": "wrong item scanned"})
    assert status == 200 and body["events"][0]["data"]["operator_id"] == "op-1"

    status, body = await get(worker, f"/v1/merchants/merchant:{shop}/redemptions")
    assert status == 200 and body["total"] == 1 and body["points"] == 6
    assert body["items"][0]["debit_account"] == f"resident:{person}"
    assert (await get(worker, f"/v1/merchants/resident:{person}/redemptions"))[0] == 404

    status, body = await get(worker, f"/v1/accounts/resident:{person}")
    assert status == 200 and body["balance"] == 3 and body["kind"] == "resident"
    status, page = await get(worker, f"/v1/accounts/resident:{person}/statement?limit=2&offset=1")
    assert status == 200 and page["total"] == 3 and [p["kind"] for p in page["items"]] == ["redemption", "award"]
    status, body = await get(worker, f"/v1/accounts/resident:{person}/statement?limit=0")
    assert status == 422 and body["field"] == "limit"
    assert (await get(worker, "/v1/accounts/nobody"))[0] == 404
    assert (await get(worker, f"/v1/deeds/{deed_id}"))[1]["status"] == "credited"
    assert (await get(worker, "/v1/deeds/nothing"))[0] == 404
    assert (await http("GET", worker.url + f"/v1/accounts/resident:{person}"))[0] == 401


async def test_rankings_by_community_and_district_month_and_year_flag_the_yearly_top(worker):
    community = "110105009001"
    top, second = uid("member"), uid("member")
    at = datetime.now(timezone.utc)
    await send(worker.kafka, "orders.events.v1",
               command(evaluated(top, minutes=180, community=community), source=ORDERS_SOURCE, time=at),
               command(evaluated(second, minutes=60, community=community), source=ORDERS_SOURCE, time=at))
    await balance_is(worker, f"resident:{top}", 17)
    await balance_is(worker, f"resident:{second}", 7)
    month, year = month_of(at), year_of(at)
    status, body = await get(worker, f"/v1/rankings?scope=community&community_id={community}&period={month}")
    assert status == 200 and body["scope"] == "community"
    assert [(e["rank"], e["account_id"], e["points"], e["candidate"]) for e in body["items"]] == [
        (1, f"resident:{top}", 17, False), (2, f"resident:{second}", 7, False)]
    status, body = await get(worker, f"/v1/rankings?scope=community&community_id={community}&period={year}")
    assert [(e["account_id"], e["candidate"]) for e in body["items"]] == [(f"resident:{top}", True),
                                                                          (f"resident:{second}", False)]
    status, body = await get(worker, f"/v1/rankings?scope=district&period={month}&limit=500")
    assert status == 200 and body["scope"] == "district"
    ranks = [e["points"] for e in body["items"]]
    assert ranks == sorted(ranks, reverse=True) and f"resident:{top}" in [e["account_id"] for e in body["items"]]
    for query, field in (("scope=town", "scope"), ("scope=community", "community_id"),
                         ("scope=community&community_id=12", "community_id"), ("period=2026-13", "period"),
                         ("scope=district&community_id=110105009001", "community_id")):
        status, body = await get(worker, f"/v1/rankings?{query}")
        assert status == 422 and body["field"] == field, query


async def test_the_ledger_sums_to_zero_and_the_metrics_count_points(worker):
    status, check = await get(worker, "/v1/ledger/check")
    assert status == 200 and check["sum"] == 0 and check["consistent"] is True
    assert check["postings"] > 0 and check["accounts"] > 0 and check["mismatched"] == []
    assert check["mode"] == "incremental" and check["problems"] == []
    # the full check reads everything again, and then not before its interval has passed
    status, full = await http("POST", worker.url + "/v1/ledger/check/full", token=TOKEN)
    assert status == 200 and full["mode"] == "full" and full["consistent"] is True, full
    assert (full["postings"], full["accounts"], full["sum"]) == (check["postings"], check["accounts"], 0)
    async with aiohttp.ClientSession() as s:
        async with s.post(worker.url + "/v1/ledger/check/full", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            again = await r.json()
            assert r.status == 429 and again["error"] == "too_many_requests", again
            assert 0 < int(r.headers["Retry-After"]) <= 600

    async def metrics():
        status, text = await http("GET", worker.url + "/metrics")
        return text if 'points_accounts{kind="resident"}' in text and "points_transfers_refused_total" in text else None
    text = await eventually(metrics)
    assert 'points_awarded_points_total{category="daily_care"}' in text
    assert 'points_transfers_refused_total{reason="cap_reached"}' in text
    assert 'points_transfers_refused_total{reason="insufficient_balance"}' in text
    for name in ("points_redeemed_points_total", "points_expired_points_total", "points_adjusted_points_total"):
        assert name in text
