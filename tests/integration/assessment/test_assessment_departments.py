"""Departments (职能部门) assessed over a real broker and PostgreSQL: a scripted October of the
departments' part of cases and a whistle (吹哨报到) on ``grid.events.v1`` → period close →
department scorecards with the three rates, the 三率 composite and alerts, ranked within their
district; the what-if recompute and a scheme change of the 三率 weights change the composite.

District 110105, departments 区城管委 ``110105.cgj`` and a street's 综合执法队
``110105001.zhzf``, all in October 2026:

- 110105.cgj gets c1..c4. c1 and c2 accepted and contacted on time, closed on time, 满意 and
  基本满意, resolved; c3 accepted late, contacted on time, a yellow card, a granted extension,
  closed late, 不满意, unresolved; c4 accepted on time, contacted late, returned (approved) and
  re-dispatched to 110105001.zhzf.
- 110105001.zhzf gets c4 (accepted on time, never contacted, a red card, closed late, 不满意,
  unresolved), z1 (contacted on time, then excluded as 不合理诉求, 不满意 after) and z2
  (accepted on time, contacted late, closed on time, 基本满意, resolved).
- A whistle summons both: 110105.cgj answers on time (rated 5), 110105001.zhzf misses (rated 2).

By hand (basically satisfied 0.9; 三率 30/35/35):

=================== =============== ==================
indicator           110105.cgj      110105001.zhzf
=================== =============== ==================
accept_on_time_rate 3/4 = 0.75      2/3 = 0.6667
response_rate       3/3 = 1.0       0/2 = 0.0
resolution_rate     2/3 = 0.6667    1/2 = 0.5
satisfaction_rate   1.9/3 = 0.6333  0.9/2 = 0.45
return_rate         1/4 = 0.25      0/3 = 0.0
on_time_closure     2/3 = 0.6667    1/2 = 0.5
extension_rate      1/4 = 0.25      0/3 = 0.0
overdue_rate        1/4 = 0.25      1/3 = 0.3333
whistle_report_rate 1/1 = 1.0       0/1 = 0.0
three_rates         0.755           0.3325
=================== =============== ==================
"""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest
import yaml

from schemas.envelope import envelope_for
from schemas.grid import (
    CaseAccepted,
    CaseClosed,
    CaseContacted,
    CaseDispatched,
    CaseExclusionReviewed,
    CaseExtensionGranted,
    CaseFeedback,
    CaseReturnReviewed,
    CaseSupervised,
    WhistleAnswered,
    WhistleBlown,
    WhistleMissed,
    WhistleRated,
)
from services.assessment.domain import CONSUMED_TYPES
from services.assessment.domain.scheme import DEFAULT_SCHEME_PATH
from tests.support.kafka import of_type, read_all, send
from tests.support.identity import token
from tests.support.procs import Worker, http

from .test_assessment_worker import ASSESSOR, CLOCK, run_recompute

pytestmark = pytest.mark.integration

CST = timezone(timedelta(hours=8))
PERIOD = "2026-10"
GRID, STREET, DISTRICT = "110105001002003", "110105001", "110105"
CGJ, ZHZF = "110105.cgj", "110105001.zhzf"
TOKEN = token(sub="console")
SCORECARD, ALERT = "assessment.scorecard.published.v1", "assessment.alert.raised.v1"

CGJ_RATES = {"accept_on_time_rate": 0.75, "response_rate": 1.0, "resolution_rate": 0.6667,
             "satisfaction_rate": 0.6333, "return_rate": 0.25, "on_time_closure_rate": 0.6667,
             "extension_rate": 0.25, "overdue_rate": 0.25, "whistle_report_rate": 1.0, "avg_whistle_rating": 5.0,
             "three_rates": 0.755}
ZHZF_RATES = {"accept_on_time_rate": 0.6667, "response_rate": 0.0, "resolution_rate": 0.5,
              "satisfaction_rate": 0.45, "return_rate": 0.0, "on_time_closure_rate": 0.5,
              "extension_rate": 0.0, "overdue_rate": 0.3333, "whistle_report_rate": 0.0, "avg_whistle_rating": 2.0,
              "three_rates": 0.3325}
ALERTS = {(CGJ, i) for i in ("resolution_rate", "satisfaction_rate", "three_rates", "overdue_rate", "return_rate")} | {
    (ZHZF, i) for i in ("response_rate", "resolution_rate", "satisfaction_rate", "three_rates", "overdue_rate",
                        "whistle_report_rate")}
# what-if: 三率 50/25/25 → cgj 0.5 + 0.25 × 0.6667 + 0.25 × 0.6333 = 0.825, zhzf 0.125 + 0.1125 = 0.2375
WHATIF = {CGJ: 0.825, ZHZF: 0.2375}
# the scheme change: 三率 80/10/10 → cgj 0.8 + 0.1 × (0.6667 + 0.6333) = 0.93, zhzf 0.05 + 0.045 = 0.095
CHANGED = {CGJ: 0.93, ZHZF: 0.095}


def t(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=CST)


def events() -> list:
    out: list[tuple] = []

    def add(payload, at):
        out.append((payload.model_copy(update={"occurred_at": at}), at))

    def where(**kw):
        return {"grid_id": GRID, **kw}

    def dispatch(case, dept, day, redispatch=False):
        add(CaseDispatched(case_id=case, department=dept, assignee_id="staff-1", due_at=t(day + 5),
                           accept_due_at=t(day, 12), contact_due_at=t(day, 14), redispatch=redispatch, **where()),
            t(day, 10))

    def accept(case, dept, day, on_time):
        add(CaseAccepted(case_id=case, department=dept, accepted_by="a", on_time=on_time, **where()), t(day, 11))

    def contact(case, dept, day, on_time):
        add(CaseContacted(case_id=case, department=dept, channel="phone", contacted_by="a", on_time=on_time,
                          **where()), t(day, 13))

    def close(case, dept, day, on_time):
        add(CaseClosed(case_id=case, department=dept, on_time=on_time, handling_seconds=86400, **where()), t(day))

    def feedback(case, day, satisfaction, resolved):
        add(CaseFeedback(case_id=case, satisfaction=satisfaction, resolved=resolved, **where()), t(day, 15))

    for case, acc, sat in (("c1", True, "satisfied"), ("c2", True, "basically_satisfied")):
        dispatch(case, CGJ, 5)
        accept(case, CGJ, 5, acc)
        contact(case, CGJ, 5, True)
        close(case, CGJ, 8, True)
        feedback(case, 9, sat, True)
    dispatch("c3", CGJ, 5)
    accept("c3", CGJ, 5, False)
    contact("c3", CGJ, 5, True)
    add(CaseSupervised(case_id="c3", supervision="yellow_card", level="community", stage="accept", due_at=t(5, 12),
                       department=CGJ, **where()), t(5, 12))
    add(CaseExtensionGranted(case_id="c3", department=CGJ, stage="handle", previous_due_at=t(10), due_at=t(14),
                             **where()), t(9))
    close("c3", CGJ, 16, False)
    feedback("c3", 17, "unsatisfied", False)
    dispatch("c4", CGJ, 6)
    accept("c4", CGJ, 6, True)
    contact("c4", CGJ, 6, False)
    add(CaseReturnReviewed(case_id="c4", department=CGJ, approved=True, **where()), t(7))
    dispatch("c4", ZHZF, 7, redispatch=True)
    accept("c4", ZHZF, 7, True)
    add(CaseSupervised(case_id="c4", supervision="red_card", level="street", stage="contact", due_at=t(7, 14),
                       department=ZHZF, **where()), t(7, 15))
    close("c4", ZHZF, 14, False)
    feedback("c4", 15, "unsatisfied", False)
    dispatch("z1", ZHZF, 8)
    contact("z1", ZHZF, 8, True)
    add(CaseExclusionReviewed(case_id="z1", department=ZHZF, approved=True, **where()), t(9))
    feedback("z1", 12, "unsatisfied", False)
    dispatch("z2", ZHZF, 8)
    accept("z2", ZHZF, 8, True)
    contact("z2", ZHZF, 8, False)
    close("z2", ZHZF, 11, True)
    feedback("z2", 12, "basically_satisfied", True)
    add(WhistleBlown(whistle_id="w1", street_id=STREET, departments=(CGJ, ZHZF), report_by=t(15, 12),
                     matter="底商违规外摆", blown_by="street-officer-02"), t(15))
    add(WhistleAnswered(whistle_id="w1", street_id=STREET, department=CGJ, answered_by="a", on_time=True), t(15, 11))
    add(WhistleMissed(whistle_id="w1", street_id=STREET, department=ZHZF, report_by=t(15, 12)), t(15, 12))
    add(WhistleRated(whistle_id="w1", street_id=STREET, department=CGJ, rating=5), t(16))
    add(WhistleRated(whistle_id="w1", street_id=STREET, department=ZHZF, rating=2), t(16))
    return [envelope_for(p, source="/services/grid", id=f"d-{n:03d}", time=at) for n, (p, at) in enumerate(out)]


EVENTS = events()


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("assessment-departments")
    w = Worker("services.assessment.app", {
        "KAFKA_BOOTSTRAP_SERVERS": module_kafka, "DATABASE_URL": module_database_url, "TOPIC_PARTITIONS": "4",
        "ASSESSMENT_CLOSE_CHECK_SECONDS": "3600", **CLOCK,
    }, prefix="ASSESSMENT_", log=d / "worker.log").start()
    try:
        await w.wait_ready()
        w.kafka = module_kafka
        w.database_url = module_database_url
        w.dir = d
        yield w
    finally:
        code = w.stop()
        assert code == 0, (d / "worker.log").read_text()[-4000:]


async def post(w: Worker, type_: str, data: dict):
    return await http("POST", w.url + "/v1/commands", token=TOKEN,
                      json={"id": str(uuid.uuid4()), "type": type_, "data": data})


async def recorded(w: Worker, count: int, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _, text = await http("GET", w.url + "/metrics")
        n = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("assessment_events_recorded_total{"))
        if n >= count:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{n} events recorded, expected {count}"
        await asyncio.sleep(0.3)


def department_cards(events_: list[dict], scheme_id: str) -> dict[str, dict]:
    return {e["data"]["entity_id"]: e["data"] for e in events_
            if e["type"] == SCORECARD and e["data"]["entity_type"] == "department"
            and e["data"]["scheme_id"] == scheme_id}


async def fed(w: Worker) -> None:
    """The month's department events sent and recorded (again: the inbox keeps each once)."""
    await send(w.kafka, "grid.events.v1", *EVENTS)
    await recorded(w, sum(e.type in CONSUMED_TYPES for e in EVENTS))  # a missed whistle is not kept


async def closed(w: Worker) -> None:
    """The month fed and closed under the default scheme, by this call or by the test before it:
    each test runs on its own too, not only after the first."""
    await fed(w)
    status, body = await post(w, "assessment.period.close.v1", {"period": PERIOD})
    assert status == 200 or (status == 409 and body["error"] == "no_change"), body


async def test_a_month_of_department_events_closes_into_department_scorecards_with_the_three_rates(worker):
    await fed(worker)

    status, body = await post(worker, "assessment.period.close.v1", {"period": PERIOD})
    assert status == 200, body
    cards = department_cards(body["events"], "default-2026")
    assert set(cards) == {CGJ, ZHZF}
    for dept, rates in ((CGJ, CGJ_RATES), (ZHZF, ZHZF_RATES)):
        assert {k: cards[dept]["indicators"][k] for k in rates} == rates, dept
        assert cards[dept]["parent_id"] == DISTRICT and cards[dept]["rank_of"] == 2
        assert cards[dept]["details"]["three_rates"]["pillar"] == "satisfaction"
    assert (cards[CGJ]["rank"], cards[ZHZF]["rank"]) == (1, 2)
    assert cards[CGJ]["score"] > cards[ZHZF]["score"]

    # published on the topic, with the alerts (约谈 warnings) of each department
    recs = await read_all(worker.kafka, "assessment.events.v1", min_count=len(body["events"]))
    assert department_cards([r["value"] for r in recs if isinstance(r["value"], dict)], "default-2026").keys() == {
        CGJ, ZHZF}
    alerts = {(a["data"]["entity_id"], a["data"]["indicator"]) for a in of_type(recs, ALERT)
              if a["data"]["entity_type"] == "department"}
    assert alerts == ALERTS

    # and answered by the queries, like any other entity type
    status, card = await http("GET", worker.url + f"/v1/scorecards/department/{CGJ}?period={PERIOD}", token=TOKEN)
    assert status == 200 and card["indicators"]["three_rates"] == 0.755
    officer = token("dept-officer-1", ["department_officer"], scope={"departments": [CGJ]})
    status, card = await http("GET", worker.url + f"/v1/scorecards/department/{CGJ}?period={PERIOD}", token=officer)
    assert status == 200 and card["entity_id"] == CGJ
    status, _ = await http("GET", worker.url + f"/v1/scorecards/department/{ZHZF}?period={PERIOD}", token=officer)
    assert status == 404  # another department's: as an unknown one
    status, r = await http("GET", worker.url + f"/v1/rankings?entity_type=department&parent_id={DISTRICT}"
                                               f"&period={PERIOD}", token=TOKEN)
    assert status == 200 and [i["entity_id"] for i in r["items"]] == [CGJ, ZHZF]
    status, al = await http("GET", worker.url + f"/v1/alerts?period={PERIOD}&entity_type=department"
                                                "&indicator=three_rates", token=TOKEN)
    assert status == 200 and {a["entity_id"] for a in al["items"]} == {CGJ, ZHZF}


async def test_the_recompute_shows_what_other_three_rates_weights_would_make_of_the_composite(worker):
    await closed(worker)
    d = yaml.safe_load(DEFAULT_SCHEME_PATH.read_text(encoding="utf-8"))
    d["scheme_id"] = "whatif-3r"
    d["parameters"]["three_rates"] = {"response_rate": 50, "resolution_rate": 25, "satisfaction_rate": 25}
    path = worker.dir / "whatif-3r.yaml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    done = await asyncio.to_thread(run_recompute, worker, "--period", PERIOD, "--scheme", str(path))
    assert done.returncode == 0, done.stderr
    changes = {c["entity_id"]: c for c in map(orjson.loads, done.stdout.splitlines())
               if c["entity_type"] == "department"}
    assert {k: c["indicators_changed"]["three_rates"] for k, c in changes.items()} == {
        CGJ: [CGJ_RATES["three_rates"], WHATIF[CGJ]], ZHZF: [ZHZF_RATES["three_rates"], WHATIF[ZHZF]]}
    assert all(set(c["indicators_changed"]) == {"three_rates"} for c in changes.values())


async def test_a_scheme_change_of_the_three_rates_weights_changes_the_composite_of_the_next_close(worker):
    await closed(worker)
    status, body = await post(worker, "assessment.scheme.change.v1", {
        "scheme_id": "3r-80-10-10", "effective_from": "2026-10-20T00:00:00+08:00",
        "weights": {"three_rates.response_rate": 0.8, "three_rates.resolution_rate": 0.1,
                    "three_rates.satisfaction_rate": 0.1, "basically_satisfied_weight": 0.9}})
    assert status == 200, body
    [ev] = body["events"]
    assert ev["data"]["weights"]["three_rates.response_rate"] == 0.8

    status, body = await post(worker, "assessment.period.close.v1", {"period": PERIOD})
    assert status == 200, body
    cards = department_cards(body["events"], "3r-80-10-10")
    assert {k: c["indicators"]["three_rates"] for k, c in cards.items()} == CHANGED
    assert cards[CGJ]["indicators"]["response_rate"] == CGJ_RATES["response_rate"]  # the rates themselves stay

    status, body = await post(worker, "assessment.scheme.change.v1", {
        "scheme_id": "3r-bad", "effective_from": "2026-10-21T00:00:00+08:00",
        "weights": {"basically_satisfied_weight": 1.5}})
    assert status == 409 and body["error"] == "invalid_scheme", body
