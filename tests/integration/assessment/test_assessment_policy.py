"""Who may do what in assessment, against a live worker over a real broker and PostgreSQL:
every role × every command over HTTP; the Kafka intake without a token and with a forbidden one;
the recorder of a review filled from the token; reads limited to the caller's scope; and the
attack (any token closes periods or changes the scheme) doing no harm.

The tests run in file order and build on each other (one worker, one history).
"""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from schemas.assessment import ChangeScheme, ClosePeriod
from schemas.envelope import CONTENT_TYPE, encode
from schemas.topics import ASSESSMENT
from services.kit.identity import ROLES
from tests.support.identity import all_streets, token
from tests.support.kafka import command, produce, read_all, send
from tests.support.procs import Worker, http

from .scenario import COMMUNITY, GRID_A, GRID_B, PERIOD, grid_events, order_events

pytestmark = pytest.mark.integration

STREET = COMMUNITY[:9]
OTHER_COMMUNITY = STREET + "003"
ASSESSOR = token(sub="assessor-1", roles=["assessor"])
CLOCK = {"SIM_CLOCK_START": "2026-11-01T00:00:00+08:00", "SIM_CLOCK_REAL_START": f"{time.time() - 5 * 86400:.3f}",
         "SIM_MONTH_SECONDS": str(7 * 86400)}
# The scripted history is dated in the simulated past and sent now, as a replay would be: its
# records' timestamps say nothing of the events' times, so the skew bound is off here (the
# bound itself: tests/integration/test_provenance.py).
CLOCK["EVENT_TIME_MAX_SKEW_SECONDS"] = "0"


def as_role(role: str, sub: str | None = None, **scope) -> str:
    return token(sub or f"{role}-1", [role], scope=scope or {"streets": all_streets()})


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("assessment-policy")
    w = Worker("services.assessment.app", {
        "KAFKA_BOOTSTRAP_SERVERS": module_kafka, "DATABASE_URL": module_database_url, "TOPIC_PARTITIONS": "4",
        "ASSESSMENT_CLOSE_TIMER": "false", **CLOCK,
    }, prefix="ASSESSMENT_", log=d / "worker.log").start()
    try:
        await w.wait_ready()
        w.kafka = module_kafka
        yield w
    finally:
        code = w.stop()
        assert code == 0, (d / "worker.log").read_text()[-4000:]


async def post(w: Worker, type_: str, data: dict, tok: str | None):
    return await http("POST", w.url + "/v1/commands", token=tok,
                      json={"id": str(uuid.uuid4()), "type": type_, "data": data})


async def get(w: Worker, path: str, tok: str):
    return await http("GET", w.url + path, token=tok)


def review(n: str, reviewer: str, subject_type: str, subject: str) -> dict:
    return {"review_id": f"rv-{n}-{uuid.uuid4().hex[:8]}", "reviewer_id": reviewer, "subject_type": subject_type,
            "subject_id": subject, "period": PERIOD, "score": 75}


# (command type, data of a fresh command, roles that may send it); every shape the policy knows
def matrix() -> list[tuple[str, str, dict, set[str]]]:
    r = "assessment.review.record.v1"
    return [
        ("community_reviews_unit", r, review("c", COMMUNITY, "unit", "u-9"), {"community_officer", "street_officer"}),
        ("street_reviews_unit", r, review("s", STREET, "unit", "u-9"), {"street_officer"}),
        ("unit_reviews_community", r, review("u", "u-9", "community", COMMUNITY), {"street_officer"}),
        ("unit_reviews_street", r, review("us", "u-9", "street", STREET), {"assessor"}),
        ("change_scheme", "assessment.scheme.change.v1",
         {"scheme_id": f"m-{uuid.uuid4().hex[:8]}", "weights": {"grid.organisation": 0.5},
          "effective_from": "2031-01-01T00:00:00+08:00"}, {"assessor"}),
        ("close_period", "assessment.period.close.v1", {"period": "2026-09"}, {"assessor"}),
        ("erase_person", "assessment.person.erase.v1", {"person_id": f"p-{uuid.uuid4().hex[:8]}", "reason": "matrix"},
         {"data_protection_officer"}),
    ]


async def test_every_role_sends_exactly_the_commands_the_policy_allows(worker):
    """Each role with a scope covering the whole district, so that only the role decides."""
    for role in ROLES:
        for name, type_, data, allowed in matrix():
            status, body = await post(worker, type_, data, as_role(role))
            if role in allowed:  # admitted (a close of a month with nothing to score publishes nothing: no_change)
                assert status == 200 or (name, status, body["error"]) == ("close_period", 409, "no_change"), \
                    (role, name, body)
            else:
                assert status == 403 and body["error"] == "forbidden", (role, name, status, body)
    status, _ = await post(worker, "assessment.period.close.v1", {"period": "2026-09"}, None)
    assert status == 401


async def test_the_kafka_intake_refuses_a_command_without_a_token_or_from_a_forbidden_role(worker):
    anonymous = command(ClosePeriod(period="2026-08"), id=f"anon-{uuid.uuid4()}")
    await produce(worker.kafka, ASSESSMENT.intake.name,
                  [(anonymous.subject, encode(anonymous), [("content-type", CONTENT_TYPE.encode())])])
    forged = command(ChangeScheme(scheme_id="forged", weights={"grid.satisfaction": 9},
                                  effective_from="2026-01-01T00:00:00+08:00"), id=f"forged-{uuid.uuid4()}")
    await send(worker.kafka, ASSESSMENT.intake.name, forged, token=as_role("community_officer"))
    allowed = command(ClosePeriod(period="2026-08"), id=f"ok-{uuid.uuid4()}")
    await send(worker.kafka, ASSESSMENT.intake.name, allowed, token=ASSESSOR)

    ids = {anonymous.id, forged.id}
    recs = await read_all(worker.kafka, ASSESSMENT.rejections.name, min_count=2, timeout=30, predicate=lambda r: (
        isinstance(r["value"], dict) and r["value"]["data"]["command_id"] in ids))
    reasons = {r["value"]["data"]["command_id"]: r["value"]["data"]["reason"] for r in recs}
    assert reasons == {anonymous.id: "unauthenticated", forged.id: "forbidden"}
    status, s = await get(worker, "/v1/schemes/current", ASSESSOR)
    assert status == 200 and s["scheme_id"] != "forged"


async def test_the_recorder_of_a_review_is_the_caller(worker):
    officer = as_role("community_officer", "officer-7", communities=[COMMUNITY])
    data = review("rec", COMMUNITY, "unit", "u-1")
    status, body = await post(worker, "assessment.review.record.v1", {**data, "recorded_by": "officer-8"}, officer)
    assert status == 403 and body["error"] == "forbidden" and body["field"] == "recorded_by"
    status, body = await post(worker, "assessment.review.record.v1", data, officer)
    assert status == 200, body
    [ev] = body["events"]
    assert ev["data"]["recorded_by"] == "officer-7" and ev["data"]["reviewer_id"] == COMMUNITY
    # another community's review, and units' opinions of the officer's own community: not theirs
    status, body = await post(worker, "assessment.review.record.v1", review("x", OTHER_COMMUNITY, "unit", "u-1"),
                              officer)
    assert status == 403
    status, body = await post(worker, "assessment.review.record.v1", review("y", "u-1", "community", COMMUNITY),
                              officer)
    assert status == 403


async def test_reads_are_limited_to_the_caller_s_scope(worker):
    await send(worker.kafka, "grid.events.v1", *grid_events("pg"))
    await send(worker.kafka, "orders.events.v1", *order_events("po"))
    for _ in range(100):  # the close counts what the log holds: wait for the facts to be recorded
        b = await get(worker, f"/v1/scorecards/grid/{GRID_B}?period={PERIOD}", ASSESSOR)
        m = await get(worker, f"/v1/scorecards/member/m-1?period={PERIOD}", ASSESSOR)
        if b[0] == m[0] == 200 and b[1]["indicators"].get("closure_rate") is not None and \
                m[1]["indicators"].get("completion_rate") is not None:
            break
        await asyncio.sleep(0.3)
    status, body = await post(worker, "assessment.period.close.v1", {"period": PERIOD}, ASSESSOR)
    assert status == 200, body

    mine = as_role("community_officer", communities=[COMMUNITY])
    other = as_role("community_officer", communities=[OTHER_COMMUNITY])
    street = as_role("street_officer", streets=[STREET])
    card = f"/v1/scorecards/grid/{GRID_A}?period={PERIOD}"
    for tok in (ASSESSOR, as_role("auditor"), mine, street):
        assert (await get(worker, card, tok))[0] == 200
    status, body = await get(worker, card, other)
    unknown = await get(worker, f"/v1/scorecards/grid/{STREET}003099?period={PERIOD}", other)
    assert status == 404 and (status, body["error"]) == (unknown[0], unknown[1]["error"])  # as an unknown one
    assert (await get(worker, f"/v1/scorecards/grid_worker/gw-1?period={PERIOD}", other))[0] == 404
    assert (await get(worker, f"/v1/scorecards/street/{STREET}?period={PERIOD}", mine))[0] == 404
    assert (await get(worker, f"/v1/scorecards/street/{STREET}?period={PERIOD}", street))[0] == 200

    # a grid worker and a party member read their own scorecard only
    assert (await get(worker, f"/v1/scorecards/grid_worker/gw-1?period={PERIOD}", as_role("grid_worker", "gw-1")))[0] == 200
    assert (await get(worker, f"/v1/scorecards/grid_worker/gw-2?period={PERIOD}", as_role("grid_worker", "gw-1")))[0] == 404
    assert (await get(worker, f"/v1/scorecards/member/m-1?period={PERIOD}", as_role("party_member", "m-1")))[0] == 200
    assert (await get(worker, card, as_role("party_member", "m-1")))[0] == 404
    for role in ("resident", "merchant", "points_operator"):
        assert (await get(worker, card, as_role(role)))[0] == 403, role
        assert (await get(worker, f"/v1/alerts?period={PERIOD}", as_role(role)))[0] == 403, role
    # a department officer reads their departments' scorecards only (the lists are the district's)
    assert (await get(worker, card, as_role("department_officer", departments=["110105.cgj"])))[0] == 404
    assert (await get(worker, f"/v1/alerts?period={PERIOD}", as_role("department_officer")))[0] == 403
    assert (await get(worker, f"/v1/rankings?entity_type=grid&period={PERIOD}", as_role("grid_worker", "gw-1")))[0] == 403

    # lists: filtered to the scope, ranks as among all
    ranking = f"/v1/rankings?entity_type=grid&period={PERIOD}"
    _, everyone = await get(worker, ranking, ASSESSOR)
    _, theirs = await get(worker, ranking, mine)
    _, none = await get(worker, ranking, other)
    assert {i["entity_id"] for i in everyone["items"]} >= {GRID_A, GRID_B}
    assert {i["entity_id"] for i in theirs["items"]} == {GRID_A, GRID_B} and theirs["total"] == 2
    assert none["items"] == [] and none["total"] == 0
    _, all_alerts = await get(worker, f"/v1/alerts?period={PERIOD}", ASSESSOR)
    _, their_alerts = await get(worker, f"/v1/alerts?period={PERIOD}", mine)
    _, no_alerts = await get(worker, f"/v1/alerts?period={PERIOD}", other)
    assert all_alerts["total"] > 0 and no_alerts["total"] == 0 and no_alerts["items"] == []
    assert 0 < their_alerts["total"] <= all_alerts["total"]
    assert all(a["entity_type"] != "street" for a in their_alerts["items"])  # the street is not the community's
    _, street_alerts = await get(worker, f"/v1/alerts?period={PERIOD}", street)
    assert their_alerts["total"] <= street_alerts["total"] <= all_alerts["total"]


async def test_anyone_but_the_assessor_closes_no_period_and_changes_no_scheme(worker):
    """The attack: with one valid token (of every role but the assessor's, with the
    whole district in scope) close a period under a scheme of one's own making. Nothing changes."""
    _, before = await get(worker, "/v1/schemes/current", ASSESSOR)
    _, card_before = await get(worker, f"/v1/scorecards/grid/{GRID_A}?period={PERIOD}", ASSESSOR)
    mallory = token("mallory", [r for r in ROLES if r != "assessor"], scope={"streets": all_streets()})
    status, body = await post(worker, "assessment.scheme.change.v1", {
        "scheme_id": "mallory", "weights": {"grid.satisfaction": 100}, "effective_from": "2026-01-01T00:00:00+08:00"},
        mallory)
    assert status == 403 and body["error"] == "forbidden"
    status, body = await post(worker, "assessment.period.close.v1", {"period": PERIOD, "scheme_id": "default-2026"},
                              mallory)
    assert status == 403 and body["error"] == "forbidden"
    _, after = await get(worker, "/v1/schemes/current", ASSESSOR)
    assert {**after, "at": None} == {**before, "at": None} and after["scheme_id"] != "mallory"
    _, card_after = await get(worker, f"/v1/scorecards/grid/{GRID_A}?period={PERIOD}", ASSESSOR)
    assert card_after == card_before
    assert (await get(worker, f"/v1/scorecards/grid/{GRID_A}?period={PERIOD}&scheme_id=mallory", ASSESSOR))[0] == 404
