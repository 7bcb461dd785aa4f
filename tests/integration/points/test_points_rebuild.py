"""``python -m services.points.app rebuild`` against a real points worker: commands on
``points.intake.v1`` (accounts, deeds, redemptions with and without consent, adjustments and an
approval, an erasure, refusals, a repeat, a poison record) and the upstream events it consumes
(orders' placed, completed and evaluated orders, grid's reported, registered and dismissed cases,
party's erasure) are handled live; the rebuilt projection equals the live one row for row.

Its timers (expiry after years, deeds credited again on a later day) find nothing to do in the
first test. In the second, a worker on a stepped calendar (the next month every eight seconds) runs both:
a deed over the daily cap is credited the next day by the deed credit timer, and the expiry
timer retires every lot once a day has passed since it was earned; the rebuild runs each of their rounds again
(both publish ``TransferPosted``: told apart by the transfer's reason), and nothing is left out
of the comparison."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

import orjson
import pytest
import yaml

from schemas.grid import CaseDismissed, CaseRegistered
from schemas.orders import OrderCompleted, OrderEvaluated, OrderPlaced
from schemas.party import PersonErased as PartyPersonErased
from schemas.points import Adjust, ApproveAdjustment, ErasePerson, OpenAccount, Redeem, ReviewDeed, SubmitDeed
from services.kit.clock import SHANGHAI
from services.points import DEFAULT_RULES_PATH
from tests.support.identity import token
from tests.support.kafka import command, produce, read_all
from tests.support.procs import Worker, http
from tests.support.rebuild import Phases, differences, live_and_rebuilt, report, run_rebuild, snapshot

from .test_points_worker import evaluated, registered, reported, uid

pytestmark = pytest.mark.integration

COMMUNITY = "110105001002"
GRID_SOURCE, ORDERS_SOURCE = "/services/grid", "/services/orders"


async def consent_code(w: Worker, resident: str, amount: int) -> str:
    status, body = await http("POST", w.url + "/v1/redemption-codes", json={"amount": amount},
                              token=token(sub=resident, roles=["resident"]))
    assert status == 201, body
    return body["code"]


@pytest.fixture(scope="module")
async def compared(module_kafka, module_database_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("points-rebuild")
    kafka, db = module_kafka, module_database_url
    w = Worker("services.points.app", {"KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": db, "TOPIC_PARTITIONS": "4"},
               prefix="POINTS_", log=d / "worker.log").start()
    phase = Phases(kafka, db, "points")

    try:
        await w.wait_ready()
        r1, r2, r3, member, shop = uid("res"), uid("res"), uid("res"), uid("member"), uid("shop")
        await phase("points.intake.v1",
                    command(OpenAccount(holder_id=r1, kind="resident", community_id=COMMUNITY)),
                    command(OpenAccount(holder_id=shop, kind="merchant", community_id=COMMUNITY)),
                    command(OpenAccount(holder_id=COMMUNITY, kind="issuer", community_id=COMMUNITY)))
        # grid: a report registered (an award), one dismissed, one registered before its report came
        c1, c2, c3 = uid("case"), uid("case"), uid("case")
        await phase("grid.events.v1",
                    command(reported(c1, r1), source=GRID_SOURCE), command(registered(c1), source=GRID_SOURCE),
                    command(reported(c2, r2, category="dispute.neighbour"), source=GRID_SOURCE),
                    command(CaseDismissed(case_id=c2, reason="重复", duplicate_of=None), source=GRID_SOURCE),
                    command(CaseRegistered(case_id=c3, due_at=registered(c3).due_at, department="城管",
                                           reporter={"kind": "resident", "id": r3}, grid_id=COMMUNITY + "003"),
                            source=GRID_SOURCE))
        await phase("grid.events.v1", command(reported(c3, r3), source=GRID_SOURCE))
        # orders: an order's facts, its evaluation (delivered twice), one not passed
        o1 = uid("order")
        placed = OrderPlaced(order_id=o1, resident_id=r2, community_id=COMMUNITY, grid_id=COMMUNITY + "003",
                             category="daily_care", description="代买药", source_case_id=None)
        passed = command(OrderEvaluated(order_id=o1, assignee_id=member, rating=5, passed=True, evaluator_id="op-3"),
                         source=ORDERS_SOURCE)
        await phase("orders.events.v1", command(placed, source=ORDERS_SOURCE),
                    command(OrderCompleted(order_id=o1, assignee_id=member, service_minutes=60), source=ORDERS_SOURCE))
        await phase("orders.events.v1", passed, passed,
                    command(evaluated(uid("member"), passed=False), source=ORDERS_SOURCE),
                    command(evaluated(uid("member"), category="repair", minutes=30), source=ORDERS_SOURCE))
        # deeds: one approved (credited), one rejected
        d1, d2 = uid("deed"), uid("deed")
        await phase("points.intake.v1",
                    command(SubmitDeed(deed_id=d1, account_id=f"resident:{r1}", category="civility_persuasion",
                                       description="劝导乱扔垃圾")),
                    command(SubmitDeed(deed_id=d2, account_id=f"resident:{r3}", category="lost_property")))
        await phase("points.intake.v1",
                    command(ReviewDeed(deed_id=d1, account_id=f"resident:{r1}", approved=True, points=10,
                                       reviewer_id="rev-1")),
                    command(ReviewDeed(deed_id=d2, account_id=f"resident:{r3}", approved=False, reason="无证明",
                                       reviewer_id="rev-1")))
        # redemptions: with a consent code, over the balance, without a code; adjustments
        code, big = await consent_code(w, r1, 4), await consent_code(w, r1, 900)
        redeem = command(Redeem(transfer_id=uid("till"), debit_account=f"resident:{r1}",
                                credit_account=f"merchant:{shop}", amount=4, consent_code=code))
        adjust_big = Adjust(transfer_id=uid("fix"), debit_account=f"issuer:{COMMUNITY}",
                            credit_account=f"resident:{r3}", amount=150, operator_id="op-1", reason="补发")
        await phase("points.intake.v1", redeem,
                    command(Redeem(transfer_id=uid("till"), debit_account=f"resident:{r1}",
                                   credit_account=f"merchant:{shop}", amount=900, consent_code=big)),
                    command(Redeem(transfer_id=uid("till"), debit_account=f"resident:{r3}",
                                   credit_account=f"merchant:{shop}", amount=1)),
                    command(adjust_big))
        # The merchant's correction comes once the redemption has credited it: sent together,
        # the two are handled on different lanes (keyed by their debit accounts) at once, and
        # whether the correction saw the redemption's posting is the order the two transactions
        # committed in, which no topic records (the rebuild's limits, services/kit/rebuild.py).
        await phase("points.intake.v1", redeem,  # a repeat: handled once
                    command(Adjust(transfer_id=uid("fix"), debit_account=f"merchant:{shop}",
                                   credit_account=f"resident:{r1}", amount=1, operator_id="op-1", reason="扫错")),
                    command(ApproveAdjustment(transfer_id=adjust_big.transfer_id, approver_id="op-2")))
        # erasures: a command, and party's event for a person points knows
        await phase("points.intake.v1", command(ErasePerson(person_id=r2, reason="本人申请", requested_by="dpo-1")))
        await phase("party.events.v1", command(PartyPersonErased(pseudonym="erased-" + "ab" * 8, person_id=member,
                                                                         occurred_at=datetime.now(timezone.utc)),
                                               source="/services/party"))
        await produce(kafka, "points.intake.v1", [("poison", b'{"specversion": "1.0", "id": "broken')])
        await phase.handled(positions=1)
    finally:
        assert w.stop() == 0, (d / "worker.log").read_text()[-4000:]
    return await live_and_rebuilt(db, "points", w.env)


async def test_a_rebuilt_points_projection_equals_the_live_one_row_for_row(compared):
    live, rebuilt = compared
    assert live.rows["postings"] and live.rows["deeds"] and live.rows["erasures"]
    diffs = differences(live, rebuilt)
    assert not diffs, report(diffs)


async def test_the_expiry_and_deed_credit_rounds_are_run_again(kafka, database_url, tmp_path):
    rules = yaml.safe_load(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    rules["validity"] = {"days": 1}  # a lot expires the day after it was earned
    (tmp_path / "earning.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    w = Worker("services.points.app", {
        "KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": database_url, "TOPIC_PARTITIONS": "4",
        "POINTS_RULES_PATH": str(tmp_path / "earning.yaml"),
        "SIM_CLOCK_START": datetime(2026, 5, 1, tzinfo=SHANGHAI).isoformat(),
        # a stepped calendar: the first of the next month every 8 s (a later day, past the validity)
        "SIM_CLOCK_REAL_START": f"{time.time():.6f}", "SIM_MONTH_SECONDS": "8",
        "POINTS_EXPIRY_INTERVAL_SECONDS": "0.3", "POINTS_DEED_CREDIT_INTERVAL_SECONDS": "0.3",
    }, prefix="POINTS_", log=tmp_path / "worker.log").start()
    phase = Phases(kafka, database_url, "points")
    resident = uid("res")
    account = f"resident:{resident}"
    deeds = [uid("deed") for _ in range(3)]
    try:
        await w.wait_ready()
        await phase("points.intake.v1",
                    command(OpenAccount(holder_id=resident, kind="resident", community_id=COMMUNITY)),
                    command(OpenAccount(holder_id=COMMUNITY, kind="issuer", community_id=COMMUNITY)),
                    *(command(SubmitDeed(deed_id=d, account_id=account, category="civility_persuasion",
                                         description="劝导乱扔垃圾")) for d in deeds))
        # 10 points each under a day's cap of 20: the third is refused, until a later day
        await phase("points.intake.v1", *(command(ReviewDeed(deed_id=d, account_id=account, approved=True, points=10,
                                                             reviewer_id="rev-1")) for d in deeds))

        def uncaused(reason: str):
            return lambda r: (r["value"]["type"] == "points.transfer.posted.v1" and not r["value"].get("causationid")
                              and r["value"]["data"]["reason"] == reason)
        credited = await read_all(kafka, "points.events.v1", min_count=1, timeout=60, predicate=uncaused("award"))
        [late] = [r["value"]["data"]["source_event_id"] for r in credited if uncaused("award")(r)]
        assert late in deeds  # the one refused over the cap
        expired = await read_all(kafka, "points.events.v1", min_count=3, timeout=60, predicate=uncaused("expiry"))
        assert len([r for r in expired if uncaused("expiry")(r)]) == 3  # every lot, once
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-4000:]
    live = await snapshot(database_url, "points")
    done = await asyncio.to_thread(run_rebuild, "points", w.env)
    assert done.returncode == 0, done.stderr[-4000:]
    outcome = orjson.loads(done.stdout.strip().splitlines()[-1])
    diffs = differences(live, await snapshot(database_url, "points"))
    assert not diffs, f"{outcome}\n{report(diffs)}"
    assert outcome["timer_rounds"] >= 2, outcome  # a credit's round and at least one expiry's
