"""The assessment worker as a real process (one per module) over a real broker and PostgreSQL:
a scripted month of grid and order events → two-way reviews → period close → scorecards that
match the hand-computed values; duplicated input changes nothing; the recompute CLI's
what-if difference and its publication (with the assessor's token); scheme changes; HTTP
401/403/409/422; every query; metrics. Who may do what: test_assessment_policy.py.

The tests run in file order and build on each other (one worker, one history).
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

import orjson
import pytest
import yaml

from services.assessment.domain.scheme import DEFAULT_SCHEME_PATH
from tests.support.kafka import of_type, read_all, send
from tests.support.identity import all_streets, command_token, token
from tests.support.procs import ROOT, Worker, http

from .scenario import (
    COMMUNITY,
    COMMUNITY_INDICATORS,
    GRID_A,
    GRID_A_DETAILS,
    GRID_A_INDICATORS,
    GRID_A_PILLARS,
    GRID_A_SCORE,
    GRID_ALERTS,
    GRID_B,
    GRID_B_SCORE,
    MEMBER_INDICATORS,
    PERIOD,
    WHATIF_GRID_A,
    WHATIF_GRID_B,
    grid_events,
    order_events,
)

pytestmark = pytest.mark.integration

TOKEN = token(sub="console")  # community officer (no scope), points operator, assessor, auditor
OFFICER = token(sub="officer-1", roles=["community_officer"], scope={"streets": all_streets()})
GRID_EVENTS = grid_events()
ORDER_EVENTS = order_events()
UPSTREAM = len(GRID_EVENTS) + len(ORDER_EVENTS)
# the case events once more re-wrapped (new envelope ids, as after a producer retry)
# The worker's domain clock is pinned to a simulated 2026-11-06 (its month runs at real speed for
# a week), so which periods have ended does not depend on the day the tests run: 2026-10 and
# earlier have, 2026-11 and 2026-Q4 have not.
CLOCK = {"SIM_CLOCK_START": "2026-11-01T00:00:00+08:00", "SIM_CLOCK_REAL_START": f"{time.time() - 5 * 86400:.3f}",
         "SIM_MONTH_SECONDS": str(7 * 86400)}
# The scripted history is dated in the simulated past and sent now, as a replay would be: its
# records' timestamps say nothing of the events' times, so the skew bound is off here (the
# bound itself: tests/integration/test_provenance.py).
CLOCK["EVENT_TIME_MAX_SKEW_SECONDS"] = "0"
REWRAPPED = [e.model_copy(update={"id": "re-" + e.id}) for e in GRID_EVENTS if e.type != "grid.patrol.logged.v1"]
SCORECARD = "assessment.scorecard.published.v1"
ALERT = "assessment.alert.raised.v1"


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("assessment-worker")
    w = Worker("services.assessment.app", {
        "KAFKA_BOOTSTRAP_SERVERS": module_kafka, "DATABASE_URL": module_database_url, "TOPIC_PARTITIONS": "4",
        "ASSESSMENT_CLOSE_CHECK_SECONDS": "1",
        **CLOCK,
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


async def get(w: Worker, path: str):
    return await http("GET", w.url + path, token=TOKEN)


async def post(w: Worker, type_: str, data: dict, id: str | None = None, token: str = TOKEN):
    return await http("POST", w.url + "/v1/commands", token=token,
                      json={"id": id or str(uuid.uuid4()), "type": type_, "data": data})


async def review(w: Worker, data: dict, role: str | None = None):
    """A review, sent by an officer who may record it (the policy's first grant, or ``role``)."""
    body = {"type": "assessment.review.record.v1", "data": data}
    return await post(w, body["type"], data, token=command_token(body, role=role))


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def eventually_metric(w: Worker, name: str, at_least: float, timeout: float = 30.0, **labels) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _, text = await http("GET", w.url + "/metrics")
        value = metric(text, name, **labels)
        if value >= at_least:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{name}{labels} = {value}, expected ≥ {at_least}"
        await asyncio.sleep(0.3)


async def scorecards_on_topic(w: Worker, min_count: int, scheme_id: str | None = None) -> list[dict]:
    recs = await read_all(w.kafka, "assessment.events.v1", min_count=min_count, predicate=lambda r: isinstance(
        r["value"], dict) and r["value"].get("type") == SCORECARD and (
        scheme_id is None or r["value"]["data"]["scheme_id"] == scheme_id))
    return [r["value"] for r in recs]


def by_entity(cards: list[dict]) -> dict[tuple[str, str], dict]:
    return {(c["data"]["entity_type"], c["data"]["entity_id"]): c["data"] for c in cards}


async def test_a_scripted_month_closes_into_the_hand_computed_scorecards(worker):
    await send(worker.kafka, "grid.events.v1", *GRID_EVENTS)
    await send(worker.kafka, "orders.events.v1", *ORDER_EVENTS)
    await eventually_metric(worker, "assessment_events_recorded_total", UPSTREAM)

    # two-way reviews (双向评议): the community reviews its resident unit (recorded by a community
    # officer), the unit the community (its opinion recorded by the street)
    status, body = await review(worker, {
        "review_id": "rv-1", "reviewer_id": COMMUNITY, "subject_type": "unit", "subject_id": "u-1",
        "period": PERIOD, "score": 80})
    assert status == 200 and body["events"][0]["type"] == "assessment.review.recorded.v1", body
    status, body = await review(worker, {
        "review_id": "rv-2", "reviewer_id": "u-1", "subject_type": "community", "subject_id": COMMUNITY,
        "period": PERIOD, "score": 70}, role="street_officer")
    assert status == 200, body

    status, body = await post(worker, "assessment.period.close.v1", {"period": PERIOD})
    assert status == 200, body
    types = [e["type"] for e in body["events"]]
    assert types.count(SCORECARD) == 8 and types.count(ALERT) == 11

    cards = by_entity(await scorecards_on_topic(worker, 8))
    assert len(cards) == 8
    a = cards[("grid", GRID_A)]
    assert {k: v for k, v in a["indicators"].items() if k in GRID_A_INDICATORS} == GRID_A_INDICATORS
    for name, (num, den) in GRID_A_DETAILS.items():
        assert (a["details"][name]["numerator"], a["details"][name]["denominator"]) == (num, den)
    assert a["pillars"] == GRID_A_PILLARS
    assert (a["score"], a["rank"], a["grade"], a["rank_of"], a["parent_id"]) == (GRID_A_SCORE, 1, "fair", 2, COMMUNITY)
    b = cards[("grid", GRID_B)]
    assert (b["score"], b["rank"], b["grade"]) == (GRID_B_SCORE, 2, "poor")
    c = cards[("community", COMMUNITY)]
    assert {k: c["indicators"][k] for k in COMMUNITY_INDICATORS} == COMMUNITY_INDICATORS
    assert c["indicators"]["review_score"] == 70.0
    assert cards[("unit", "u-1")]["indicators"]["review_score"] == 80.0
    m = cards[("member", "m-1")]
    assert {k: m["indicators"][k] for k in MEMBER_INDICATORS} == MEMBER_INDICATORS
    assert cards[("grid_worker", "gw-1")]["indicators"]["patrols_logged"] == 2.0

    alerts = of_type(await read_all(worker.kafka, "assessment.events.v1", min_count=19), ALERT)
    assert {(x["data"]["entity_id"], x["data"]["indicator"]) for x in alerts
            if x["data"]["entity_type"] == "grid"} == GRID_ALERTS
    assert len(alerts) == 11
    # grid workers on their own duties: gw-1 reported 4 cases, 3 registered (0.75), patrolled 2 of
    # October's 4 weeks; gw-2 none
    assert {(x["data"]["entity_id"], x["data"]["indicator"]) for x in alerts if x["data"]["entity_type"] == "grid_worker"} \
        == {("gw-1", "report_timeliness"), ("gw-1", "patrol_coverage"), ("gw-2", "patrol_coverage")}


async def test_the_same_input_delivered_twice_changes_no_indicator(worker):
    await send(worker.kafka, "grid.events.v1", *GRID_EVENTS)
    await send(worker.kafka, "orders.events.v1", *ORDER_EVENTS)
    await send(worker.kafka, "grid.events.v1", *REWRAPPED)
    await eventually_metric(worker, "kit_records_duplicate_total", UPSTREAM, service="assessment")
    await eventually_metric(worker, "assessment_events_recorded_total", UPSTREAM + len(REWRAPPED))

    status, body = await post(worker, "assessment.period.close.v1", {"period": PERIOD})
    assert (status, body["error"]) == (409, "no_change"), body  # nothing changed: nothing re-published
    assert [e["type"] for e in body["events"]] == ["assessment.command.rejected.v1"]

    status, card = await get(worker, f"/v1/scorecards/grid/{GRID_A}?period={PERIOD}")
    assert status == 200 and card["status"] == "published" and card["revision"] == 1
    assert card["score"] == GRID_A_SCORE
    assert {k: v for k, v in card["indicators"].items() if k in GRID_A_INDICATORS} == GRID_A_INDICATORS
    assert len(await scorecards_on_topic(worker, 8)) == 8  # never a duplicate on the topic


async def test_http_refuses_without_token_bad_input_and_broken_rules(worker):
    assert (await http("GET", worker.url + f"/v1/rankings?entity_type=grid&period={PERIOD}"))[0] == 401
    assert (await http("POST", worker.url + "/v1/commands", json={"id": "x", "type": "assessment.period.close.v1",
                                                                   "data": {"period": PERIOD}}))[0] == 401

    status, body = await post(worker, "assessment.period.close.v1", {"period": "2026-11"})
    assert status == 409 and body["error"] == "period_not_ended" and body["field"] == "period"
    status, body = await post(worker, "assessment.period.close.v1", {"period": "2026-13"})
    assert status == 422 and body["field"] == "data.period"
    status, body = await post(worker, "assessment.period.close.v1", {"period": PERIOD, "scheme_id": "nope"})
    assert status == 409 and body["error"] == "unknown_scheme"
    # a community reviewing a community: no role records that (the domain would refuse the direction)
    status, body = await post(worker, "assessment.review.record.v1", {
        "review_id": "rv-x", "reviewer_id": COMMUNITY, "subject_type": "community", "subject_id": "110105001003",
        "period": PERIOD, "score": 50}, token=OFFICER)
    assert status == 403 and body["error"] == "forbidden"
    status, body = await post(worker, "assessment.review.record.v1", {
        "review_id": "rv-y", "reviewer_id": COMMUNITY, "subject_type": "unit", "subject_id": "u-1",
        "period": PERIOD, "score": 101}, token=OFFICER)
    assert status == 422 and body["field"] == "data.score"

    for path, field in [(f"/v1/scorecards/planet/x?period={PERIOD}", "entity_type"),
                        (f"/v1/scorecards/grid/{GRID_A}?period=2026-13", "period"),
                        (f"/v1/scorecards/grid/{GRID_A}", "period"),
                        ("/v1/rankings?entity_type=grid&period=26-10", "period"),
                        (f"/v1/rankings?entity_type=planet&period={PERIOD}", "entity_type"),
                        (f"/v1/rankings?period={PERIOD}", "entity_type"),
                        ("/v1/alerts?period=2026-Q5", "period"),
                        ("/v1/alerts?indicator=happiness", "indicator"),
                        ("/v1/alerts?entity_type=planet", "entity_type"),
                        ("/v1/schemes/current?at=yesterday", "at")]:
        status, body = await get(worker, path)
        assert (status, body.get("field")) == (422, field), (path, body)


async def test_queries_answer_scorecards_rankings_alerts_and_the_scheme(worker):
    status, card = await get(worker, f"/v1/scorecards/grid/{GRID_A}?period={PERIOD}")
    assert status == 200
    d = card["details"]["on_time_closure_rate"]
    assert (d["numerator"], d["denominator"], d["value"], d["pillar"]) == (1.0, 3.0, 0.3333, "organisation")
    assert (await get(worker, f"/v1/scorecards/grid/110105001002999?period={PERIOD}"))[0] == 404

    # the quarter is not closed: a provisional scorecard, computed from its counters
    status, q = await get(worker, f"/v1/scorecards/grid/{GRID_A}?period=2026-Q4")
    assert status == 200 and q["status"] == "provisional" and q["period"] == "2026-Q4"
    assert q["indicators"]["registration_rate"] == 0.75

    status, r = await get(worker, f"/v1/rankings?entity_type=grid&parent_id={COMMUNITY}&period={PERIOD}")
    assert status == 200 and r["total"] == 2
    assert [(i["entity_id"], i["rank"], i["score"], i["grade"]) for i in r["items"]] == [
        (GRID_A, 1, GRID_A_SCORE, "fair"), (GRID_B, 2, GRID_B_SCORE, "poor")]
    status, r = await get(worker, f"/v1/rankings?entity_type=community&period={PERIOD}&limit=1")
    assert status == 200 and [i["entity_id"] for i in r["items"]] == [COMMUNITY]
    assert (await get(worker, "/v1/rankings?entity_type=grid&period=2026-09"))[0] == 404

    status, al = await get(worker, f"/v1/alerts?period={PERIOD}&entity_type=grid")
    assert status == 200 and al["total"] == 4
    assert {(x["entity_id"], x["indicator"]) for x in al["items"]} == GRID_ALERTS
    status, al = await get(worker, "/v1/alerts?indicator=satisfaction_rate")
    assert {x["entity_type"] for x in al["items"]} == {"grid", "community", "street"}  # not grid workers
    assert all(x["value"] < x["threshold"] and x["direction"] == "below_minimum" for x in al["items"])

    status, s = await get(worker, "/v1/schemes/current")
    assert status == 200 and s["scheme_id"] == "default-2026"
    assert s["weights"]["grid.organisation"] == 0.4 and s["definition"]["grades"]["excellent"] == 90


def whatif_scheme(path) -> None:
    d = yaml.safe_load(DEFAULT_SCHEME_PATH.read_text(encoding="utf-8"))
    d["scheme_id"] = "whatif-1"
    d["effective_from"] = "2026-10-20T00:00:00+08:00"
    pillars = d["entity_types"]["grid"]["pillars"]
    pillars["organisation"]["weight"], pillars["member_role"]["weight"], pillars["satisfaction"]["weight"] = 20, 20, 60
    path.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")


ASSESSOR = token(sub="assessor-1", roles=["assessor"])


def run_recompute(worker, *args: str, api_token: str | None = ASSESSOR) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "API_TOKEN"}
    env["KAFKA_BOOTSTRAP_SERVERS"] = worker.kafka
    env["DATABASE_URL"] = worker.database_url
    if api_token is not None:
        env["API_TOKEN"] = api_token
    return subprocess.run([sys.executable, "-m", "services.assessment.app.recompute", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


async def test_recompute_prints_the_difference_a_scheme_makes_and_publishes_it(worker):
    path = worker.dir / "whatif.yaml"
    whatif_scheme(path)
    done = await asyncio.to_thread(run_recompute, worker, "--period", PERIOD, "--scheme", str(path))
    assert done.returncode == 0, done.stderr
    changes = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert {(c["entity_type"], c["entity_id"]): (c["score_before"], c["score_after"], c["rank_before"],
                                                 c["rank_after"]) for c in changes} == {
        ("grid", GRID_A): (GRID_A_SCORE, WHATIF_GRID_A, 1, 1), ("grid", GRID_B): (GRID_B_SCORE, WHATIF_GRID_B, 2, 2)}
    assert all(c["change"] == "changed" and c["indicators_changed"] == {} for c in changes)
    summary = orjson.loads(done.stderr.strip().splitlines()[-1])
    assert summary["counters"] > 0  # the period's stored counters, no event replayed
    assert summary["scheme_in_force"] == "default-2026"

    assert (await asyncio.to_thread(run_recompute, worker, "--period", "2026-14", "--scheme", str(path))).returncode == 2
    # publishing sends commands as the assessor: not without a token
    done = await asyncio.to_thread(run_recompute, worker, "--period", PERIOD, "--scheme", str(path), "--publish",
                                   api_token=None)
    assert done.returncode == 2 and "no_token" in done.stderr, done.stderr

    done = await asyncio.to_thread(run_recompute, worker, "--period", PERIOD, "--scheme", str(path), "--publish")
    assert done.returncode == 0, done.stderr
    cards = by_entity(await scorecards_on_topic(worker, 8, scheme_id="whatif-1"))
    assert len(cards) == 8
    assert cards[("grid", GRID_A)]["score"] == WHATIF_GRID_A and cards[("grid", GRID_B)]["score"] == WHATIF_GRID_B
    assert cards[("community", COMMUNITY)]["indicators"]["review_score"] == 70.0

    status, s = await get(worker, "/v1/schemes/current")
    assert s["scheme_id"] == "whatif-1" and s["weights"]["grid.satisfaction"] == 0.6
    status, card = await get(worker, f"/v1/scorecards/grid/{GRID_A}?period={PERIOD}")
    assert (card["scheme_id"], card["score"]) == ("whatif-1", WHATIF_GRID_A)
    status, card = await get(worker, f"/v1/scorecards/grid/{GRID_A}?period={PERIOD}&scheme_id=default-2026")
    assert (card["scheme_id"], card["score"]) == ("default-2026", GRID_A_SCORE)

    # the recompute against the scheme now in force shows no difference
    done = await asyncio.to_thread(run_recompute, worker, "--period", PERIOD, "--scheme", str(path))
    assert done.returncode == 0 and done.stdout == "", done.stderr


async def test_scheme_changes_are_validated_idempotent_and_immutable(worker):
    change = {"scheme_id": "w-2", "weights": {"grid.member_role": 0.5}, "effective_from": "2026-11-01T00:00:00+08:00"}
    cid = str(uuid.uuid4())
    status, body = await post(worker, "assessment.scheme.change.v1", change, id=cid)
    assert status == 200, body
    [ev] = body["events"]
    assert ev["type"] == "assessment.scheme.changed.v1" and ev["data"]["base_scheme_id"] == "whatif-1"
    w = ev["data"]["weights"]
    assert abs(w["grid.member_role"] - 0.5 / 1.3) < 1e-6  # 0.5 against 0.2 + 0.6, re-normalised
    status, again = await post(worker, "assessment.scheme.change.v1", change, id=cid)
    assert status == 200 and again["replayed"] is True
    status, body = await post(worker, "assessment.scheme.change.v1", {**change, "weights": {"grid.member_role": 0.9}})
    assert status == 409 and body["error"] == "scheme_exists"
    status, body = await post(worker, "assessment.scheme.change.v1", {**change, "scheme_id": "w-3",
                                                                      "weights": {"happiness": 1}})
    assert status == 409 and body["error"] == "invalid_scheme"

    assert (await get(worker, "/v1/schemes/current"))[1]["scheme_id"] == "w-2"
    assert (await get(worker, "/v1/schemes/current?at=2026-10-25T00:00:00%2B08:00"))[1]["scheme_id"] == "whatif-1"
    # October is still governed by whatif-1 (w-2 takes effect in November): re-closing changes nothing
    status, body = await post(worker, "assessment.period.close.v1", {"period": PERIOD})
    assert (status, body["error"]) == (409, "no_change"), body


async def test_metrics_count_publications_alerts_events_and_lag(worker):
    _, text = await http("GET", worker.url + "/metrics")
    assert metric(text, "assessment_scorecards_published_total", entity_type="grid") == 4.0  # 2 schemes × 2 grids
    assert metric(text, "assessment_scorecards_published_total") == 16.0
    assert metric(text, "assessment_alerts_raised_total", indicator="rework_rate") == 2.0
    assert metric(text, "assessment_events_recorded_total", topic="grid.events.v1") == len(GRID_EVENTS) + len(REWRAPPED)
    assert metric(text, "assessment_events_recorded_total", topic="orders.events.v1") == len(ORDER_EVENTS)
    assert metric(text, "assessment_projection_lag_seconds") > 86400  # the newest event is from October
    assert 'assessment_periods_closed_total{trigger="command"}' in text
