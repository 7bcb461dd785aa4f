"""The party worker's organisational life, commitments and member half of 双报到 as a real
process on a stepped calendar (one simulated month every few seconds): a meeting recorded and
a missed month reported once by the timer; a commitment made, fulfilled and rated; a member
registered in orders flagged once when their unit has not reported, and flagged again when they
move; a quarter's feedback from the member's orders."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta

import asyncpg
import pytest

from schemas.orders import MemberMoved, MemberRegistered, OrderCompleted, OrderEvaluated
from schemas.party import (
    AttachMember, ErasePerson, EstablishOrg, FulfilCommitment, MakeCommitment, OrgKind, OrgLifeKind, RateCommitment, RecordOrgLife,
)
from schemas.topics import ORDERS, PARTY
from services.kit.clock import SHANGHAI, SteppedCalendar, month_start, next_month
from services.party.app.life import previous_quarter
from services.party.domain.members import quarter_bounds
from tests.support.identity import token
from tests.support.kafka import command, read_all, send
from tests.support.procs import Worker, http

from .support import party_worker, uid, wait_for

pytestmark = pytest.mark.integration

MONTH_SECONDS = 8.0
SIM_START = datetime(2026, 5, 1, tzinfo=SHANGHAI)
STREET, COMMUNITY, OTHER_COMMUNITY = "110105001", "110105001002", "110105001003"
READER = token(sub="auditor-1", roles=["auditor"])
SECRETARY = token(sub="sec-1", roles=["party_secretary"], scope={"streets": [STREET]})
OUTSIDER = token(sub="sec-2", roles=["party_secretary"], scope={"streets": ["110105002"]})


@pytest.fixture(scope="module")
async def sim(module_kafka, module_database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("party-life") / "worker.log"
    real_start = time.time()
    async with party_worker(
            module_kafka, module_database_url, log, SIM_CLOCK_START=SIM_START.isoformat(),
            SIM_CLOCK_REAL_START=str(real_start), SIM_MONTH_SECONDS=str(MONTH_SECONDS),
            PARTY_ORG_LIFE_INTERVAL_SECONDS="0.3", PARTY_MEMBER_INTERVAL_SECONDS="0.3",
            PARTY_METRICS_INTERVAL_SECONDS="0.3", PARTY_MEMBER_REPORT_WINDOW_DAYS="20") as w:
        yield w, SteppedCalendar(SIM_START, real_start, MONTH_SECONDS)



async def until(clock: SteppedCalendar, at: datetime) -> None:
    """Sleep until the simulated clock has reached ``at``."""
    while clock.now() < at:
        await asyncio.sleep(0.1)


async def post_command(w: Worker, payload, tok: str):
    body = {"id": str(uuid.uuid4()), "type": payload.TYPE, "data": payload.model_dump(mode="json", exclude_none=True)}
    return await http("POST", w.url + "/v1/commands", json=body, token=tok)


async def events_of(bootstrap: str, type_: str, pick) -> list[dict]:
    records = await read_all(bootstrap, PARTY.events.name)
    return [r["value"]["data"] for r in records
            if isinstance(r["value"], dict) and r["value"]["type"] == type_ and pick(r["value"]["data"])]


async def a_community_with_a_member(w: Worker, area: str = COMMUNITY) -> tuple[str, str]:
    street, community, member = uid("o-s"), uid("o-c"), uid("pm")
    for payload in (EstablishOrg(org_id=street, kind=OrgKind.STREET_WORKING_COMMITTEE, area_id=STREET, name="街道党工委"),
                    EstablishOrg(org_id=community, kind=OrgKind.COMMUNITY_COMMITTEE, area_id=area, parent_id=street,
                                 name="社区党委"),
                    AttachMember(org_id=community, member_id=member)):
        status, body = await post_command(w, payload, SECRETARY)
        assert status == 200, body
    return community, member


async def test_a_meeting_held_and_a_missed_month_reported_once(sim, module_kafka):
    w, clock = sim
    community, member = await a_community_with_a_member(w)
    status, org = await http("GET", f"{w.url}/v1/orgs/{community}", token=READER)
    established = datetime.fromisoformat(org["established_at"])
    first = next_month(established) if month_start(established) < established else established
    period = first.astimezone(SHANGHAI).strftime("%Y-%m")

    await until(clock, first)
    meeting = RecordOrgLife(org_id=community, meeting_id=uid("m"), kind=OrgLifeKind.THEME_DAY, held_at=clock.now(),
                            attendees=[member], topic="学习")
    status, body = await post_command(w, meeting, SECRETARY)
    assert status == 200 and [e["type"] for e in body["events"]] == ["party.org_life.held.v1"], body
    # the same meeting again changes nothing; a building group's kind is not the community's; outside the scope: unknown
    status, body = await post_command(w, meeting, SECRETARY)
    assert (status, body["error"]) == (409, "no_change"), body
    status, body = await post_command(w, meeting.model_copy(update={"meeting_id": uid("m"),
                                                                    "kind": OrgLifeKind.GROUP_MEETING}), SECRETARY)
    assert (status, body["error"]) == (409, "org_life_not_applicable"), body
    status, body = await post_command(w, meeting.model_copy(update={"meeting_id": uid("m")}), OUTSIDER)
    assert (status, body["error"]) == (409, "unknown_org"), body

    # the month closes: the committee meeting it lacked is reported, once; the theme day it held is not
    await until(clock, next_month(first))

    async def missed():
        return await events_of(module_kafka, "party.org_life.overdue.v1",
                               lambda d: d["org_id"] == community and d["period"] == period)
    found = await wait_for(missed)
    await asyncio.sleep(1.5)  # several more rounds of the timer
    found = await missed()
    assert [d["kind"] for d in found] == ["committee_meeting"], found

    status, life = await http("GET", f"{w.url}/v1/orgs/{community}/life?period={period}", token=READER)
    assert status == 200, life
    assert (life["held"], life["missed"], life["total"], life["next_cursor"]) == (1, 1, 2, None), life
    assert {(e["kind"], e["held"]) for e in life["entries"]} == {("theme_day", True), ("committee_meeting", False)}
    assert (await http("GET", f"{w.url}/v1/orgs/{community}/life", token=OUTSIDER))[0] == 404

    async def counted():
        status, text = await http("GET", w.url + "/metrics")
        return 'party_org_life_held_total{kind="theme_day"}' in text and \
            'party_org_life_overdue_total{kind="committee_meeting"}' in text and text
    text = await wait_for(counted)
    assert 'party_org_life_held_total{kind="theme_day"} 0.0' not in text


async def test_a_commitment_made_fulfilled_and_rated_and_its_member_erased(sim, module_database_url):
    w, clock = sim
    community, member = await a_community_with_a_member(w)
    year = clock.now().astimezone(SHANGHAI).year
    make = MakeCommitment(member_id=member, commitment_id=uid("c"), year=year, text="每月参加一次志愿服务")
    status, body = await post_command(w, make, OUTSIDER)
    assert (status, body["error"]) == (409, "unknown_member"), body
    status, body = await post_command(w, make, SECRETARY)
    assert status == 200 and [e["type"] for e in body["events"]] == ["party.commitment.made.v1"], body
    rate = RateCommitment(member_id=member, commitment_id=make.commitment_id, rating=5)
    status, body = await post_command(w, rate, SECRETARY)
    assert (status, body["error"]) == (409, "commitment_not_due"), body
    status, body = await post_command(w, FulfilCommitment(member_id=member, commitment_id=make.commitment_id,
                                                          note="已完成"), SECRETARY)
    assert status == 200 and [e["type"] for e in body["events"]] == ["party.commitment.fulfilled.v1"], body
    status, body = await post_command(w, rate, SECRETARY)
    assert status == 200 and body["events"][0]["data"]["rating"] == 5, body
    status, body = await post_command(w, rate.model_copy(update={"rating": 3}), SECRETARY)
    assert (status, body["error"]) == (409, "already_rated"), body

    # erased: the member becomes the pseudonym in their commitments and in a meeting's attendance
    status, body = await post_command(w, RecordOrgLife(org_id=community, meeting_id=uid("m"),
                                                       kind=OrgLifeKind.THEME_DAY, held_at=clock.now(),
                                                       attendees=[member]), SECRETARY)
    assert status == 200 and body["events"], body
    status, body = await post_command(w, ErasePerson(person_id=member, reason="个人信息删除申请"),
                                      token(sub="dpo-1", roles=["data_protection_officer"]))
    assert status == 200, body
    pseudonym = body["events"][0]["data"]["pseudonym"]
    conn = await asyncpg.connect(module_database_url)
    try:
        kept = await conn.fetchval("SELECT state FROM party.commitments WHERE member_id = $1", pseudonym)
        life = await conn.fetchval("SELECT state::text FROM party.org_life WHERE org_id = $1", community)
    finally:
        await conn.close()
    assert kept is not None and "志愿服务" not in kept and member not in kept
    assert member not in life and pseudonym in life


def orders_event(payload):
    return command(payload, source="/services/orders")


async def test_a_member_overdue_once_a_move_flagged_and_a_quarters_feedback(sim, module_kafka, module_database_url):
    w, clock = sim
    member, unit = uid("pm"), uid("unit")
    registered = clock.now()
    await send(module_kafka, ORDERS.events.name, orders_event(MemberRegistered(
        member_id=member, community_id=COMMUNITY, unit_id=unit, at=registered)))

    # the unit has not reported within 20 days of the registration: flagged once
    await until(clock, registered + timedelta(days=20))

    async def overdue(moved: bool):
        return await events_of(module_kafka, "party.member.report_overdue.v1",
                               lambda d: d["member_id"] == member and d.get("moved", False) is moved)
    flagged = await wait_for(lambda: overdue(False))
    await asyncio.sleep(1.5)
    assert len(await overdue(False)) == 1
    assert (flagged[0]["unit_id"], flagged[0]["community_id"]) == (unit, COMMUNITY)

    # a later registration with another community: a move, flagged once
    await send(module_kafka, ORDERS.events.name, orders_event(MemberRegistered(
        member_id=member, community_id=OTHER_COMMUNITY, unit_id=unit, at=clock.now())))
    moved = await wait_for(lambda: overdue(True))
    assert (moved[0]["from_community_id"], moved[0]["community_id"]) == (COMMUNITY, OTHER_COMMUNITY)

    # 双重管理: once a quarter has ended, a member registered in it gets its feedback, from the
    # quarter's orders (the quarter has two simulated months to run: the timer sees it as the last one)
    while clock.now().astimezone(SHANGHAI).month % 3 != 1:
        await asyncio.sleep(0.1)
    quarter = previous_quarter(clock.now())
    start, _ = quarter_bounds(quarter)
    served = uid("pm")
    march = start + timedelta(days=20)
    o1, o2 = uid("o"), uid("o")
    await send(module_kafka, ORDERS.events.name,
               orders_event(OrderCompleted(order_id=o1, assignee_id=served, service_minutes=60, at=march)),
               orders_event(OrderEvaluated(order_id=o1, assignee_id=served, rating=4, passed=True,
                                           evaluator_id="officer-1", at=march + timedelta(days=1))),
               orders_event(OrderEvaluated(order_id=o2, assignee_id=served, rating=2, passed=False,
                                           evaluator_id="officer-1", at=march + timedelta(days=2))))
    conn = await asyncpg.connect(module_database_url)
    try:
        async def counted():
            return await conn.fetchval("SELECT count(*) FROM party.member_orders WHERE member_id = $1 "
                                       "AND evaluated_at IS NOT NULL", served) == 2
        await wait_for(counted)
    finally:
        await conn.close()
    await send(module_kafka, ORDERS.events.name, orders_event(MemberRegistered(
        member_id=served, community_id=COMMUNITY, unit_id=unit, at=start)))

    async def feedback():
        return await events_of(module_kafka, "party.member.feedback.v1",
                               lambda d: d["member_id"] == served and d["quarter"] == quarter)
    got = await wait_for(feedback)
    await asyncio.sleep(1.0)
    got = await feedback()
    assert [(d["orders_completed"], d["orders_passed"], d["average_rating"], d["unit_id"]) for d in got] == [
        (1, 1, 3.0, unit)], got


async def test_a_member_who_moved_is_flagged_into_their_orgs_history_and_overdue_by_the_moves_deadline(
        sim, module_kafka):
    """orders.member.moved.v1: the move is flagged once (with the new deadline) and written into the
    组织关系 history of the member's organisation; once the deadline passes without their unit
    reporting, the member is overdue in the new community."""
    w, clock = sim
    org, member = await a_community_with_a_member(w)
    unit = uid("unit")
    await send(module_kafka, ORDERS.events.name, orders_event(MemberRegistered(
        member_id=member, community_id=COMMUNITY, unit_id=unit, at=clock.now())))
    now = clock.now()
    report_by = now + timedelta(days=2)
    await send(module_kafka, ORDERS.events.name, orders_event(MemberMoved(
        member_id=member, community_id=OTHER_COMMUNITY, from_community_id=COMMUNITY, unit_id=unit,
        report_by=report_by, occurred_at=now + timedelta(seconds=1))))

    async def flags(moved: bool):
        return await events_of(module_kafka, "party.member.report_overdue.v1",
                               lambda d: d["member_id"] == member and d.get("moved", False) is moved)
    (flag,) = await wait_for(lambda: flags(True))
    assert (flag["community_id"], flag["from_community_id"], flag["unit_id"]) == (OTHER_COMMUNITY, COMMUNITY, unit)
    assert datetime.fromisoformat(flag["due_at"]) == report_by

    status, body = await http("GET", f"{w.url}/v1/orgs/{org}", token=READER)
    assert status == 200, body
    assert [h["type"] for h in body["history"] if h["data"].get("member_id") == member] == [
        "party.member.attached.v1", "party.member.report_overdue.v1"]

    await until(clock, report_by)  # the move's deadline, not the 20-day window after the registration
    (late,) = await wait_for(lambda: flags(False))
    assert (late["community_id"], datetime.fromisoformat(late["due_at"])) == (OTHER_COMMUNITY, report_by)
    assert len(await flags(True)) == 1
