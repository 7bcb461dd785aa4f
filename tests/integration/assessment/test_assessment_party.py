"""组织建设 assessed over a real broker and PostgreSQL: a scripted October of Party organisation
facts on ``party.events.v1`` (and members' 双报到 on ``orders.events.v1``) → period close →
community, street and unit scorecards whose organisation pillar comes from them.

Community 110105001002 (street 110105001), October 2026:

- grids 003 and 005 get a grid branch, 004 is reported as a coverage gap → 组织覆盖率 2/3;
- branch b1 holds its 支委会 (4 present, 1 absent) and its 党小组会 (3 present, 1 absent) and
  misses its 主题党日 → 三会一课按期召开率 2/3, 党员参学率 7/9;
- the community's 大党委 meets (6 present, 2 absent, quorate) → 联席会议出勤率 6/8 (按期召开率
  is quarterly: no value in a month); resolution r1 (owner unit-017) is completed, r2
  (owner unit-018) goes overdue → 议定事项办结率 1/2;
- projects p1 (claimed by unit-017, completed), p2 (claimed by unit-018), p3 (unclaimed)
  → 项目认领率 2/3, 项目完成率 1/2;
- members m1 and m2 register (unit-017), m3 (unit-018) is reported overdue → 党员报到率 2/3;
- unit-017 reports to the community, unit-018 only signs a 共建协议 → 单位报到率 1/2.

Unit unit-017: 单位报到率 1, 项目完成率 1/1, 议定事项办结率 1/1, 党员报到率 2/2 → organisation 100.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from schemas.envelope import envelope_for
from schemas.orders import MemberRegistered
from schemas.party import (
    AgreementSigned, CoverageGap, MeetingHeld, MemberReportOverdue, OrgEstablished, OrgLifeHeld, OrgLifeOverdue,
    ProjectClaimed, ProjectCompleted, ProjectPosted, ResolutionCompleted, ResolutionOverdue, ResolutionItem,
    UnitReported,
)
from services.assessment.domain import CONSUMED_TYPES
from tests.support.identity import token
from tests.support.kafka import send
from tests.support.procs import Worker, http

from .test_assessment_departments import recorded
from .test_assessment_worker import CLOCK

pytestmark = pytest.mark.integration

CST = timezone(timedelta(hours=8))
PERIOD = "2026-10"
COMMUNITY, STREET = "110105001002", "110105001"
G1, G2, G3 = "110105001002003", "110105001002004", "110105001002005"
UNIT, UNIT_B = "unit-017", "unit-018"
TOKEN = token(sub="console")
SCORECARD = "assessment.scorecard.published.v1"

COMMUNITY_RATES = {"org_coverage_rate": 0.6667, "org_life_on_time_rate": 0.6667, "org_life_attendance_rate": 0.7778,
                   "unit_report_rate": 0.5, "council_attendance_rate": 0.75, "resolution_completion_rate": 0.5,
                   "project_claim_rate": 0.6667, "project_completion_rate": 0.5, "member_report_rate": 0.6667,
                   "council_meeting_on_time_rate": None, "commitment_fulfilment_rate": None}
# the organisation pillar: weights 2 (coverage), 2 (org life on time), 1 each for the other seven with a value
ORGANISATION = round((2 * 66.67 + 2 * 66.67 + 77.78 + 50 + 75 + 50 + 66.67 + 50 + 66.67) / 11, 2)
UNIT_RATES = {"unit_report_rate": 1.0, "project_completion_rate": 1.0, "resolution_completion_rate": 1.0,
              "member_report_rate": 1.0}


def t(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=CST)


def events() -> tuple[list, list]:
    party_: list[tuple] = []
    orders_: list[tuple] = []

    def add(payload, at):
        party_.append((payload.model_copy(update={"occurred_at": at}), at))

    for org_id, grid, day in (("b1", G1, 3), ("b3", G3, 4)):
        add(OrgEstablished(org_id=org_id, kind="grid_branch", parent_id="cc", area_id=grid, name=org_id), t(day))
    add(CoverageGap(grid_id=G2, community_id=COMMUNITY, street_id=STREET, members=4), t(5))
    add(OrgLifeHeld(org_id="b1", meeting_id="l1", kind="committee_meeting", held_at=t(8), attendees=("a1", "a2", "a3", "a4"),
                    absentees=("a5",)), t(8))
    add(OrgLifeHeld(org_id="b1", meeting_id="l2", kind="group_meeting", held_at=t(15), attendees=("a1", "a2", "a3"),
                    absentees=("a4",)), t(15))
    add(OrgLifeOverdue(org_id="b1", kind="theme_day", period=PERIOD), t(31, 23))
    add(UnitReported(unit_id=UNIT, name="区税务局", community_id=COMMUNITY), t(1))
    add(AgreementSigned(agreement_id="ag1", unit_id=UNIT_B, community_id=COMMUNITY, commitments=("共建",),
                        valid_from=t(4), valid_until=t(4) + timedelta(days=365)), t(4))
    add(MeetingHeld(council_id="c1", meeting_id="cm1", held_at=t(20), area_id=COMMUNITY, quorum=True,
                    attendees=tuple(f"s{i}" for i in range(6)), absentees=("s6", "s7"),
                    resolutions=(ResolutionItem(resolution_id="r1", title="停车", owner_unit_id=UNIT, due_at=t(27)),
                                 ResolutionItem(resolution_id="r2", title="照明", owner_unit_id=UNIT_B,
                                                due_at=t(27)))), t(20))
    add(ResolutionCompleted(council_id="c1", resolution_id="r1", owner_unit_id=UNIT, on_time=True), t(25))
    add(ResolutionOverdue(council_id="c1", resolution_id="r2", owner_unit_id=UNIT_B, due_at=t(27)), t(28))
    for pid, day in (("p1", 2), ("p2", 3), ("p3", 10)):
        add(ProjectPosted(project_id=pid, community_id=COMMUNITY, title=pid), t(day))
    add(ProjectClaimed(project_id="p1", community_id=COMMUNITY, unit_id=UNIT), t(5))
    add(ProjectClaimed(project_id="p2", community_id=COMMUNITY, unit_id=UNIT_B), t(6))
    add(ProjectCompleted(project_id="p1", community_id=COMMUNITY, unit_id=UNIT), t(20))
    add(MemberReportOverdue(member_id="m3", unit_id=UNIT_B, community_id=COMMUNITY), t(10))
    for member, day in (("m1", 2), ("m2", 3)):
        orders_.append((MemberRegistered(member_id=member, community_id=COMMUNITY, unit_id=UNIT, at=t(day)), t(day)))
    return ([envelope_for(p, source="/services/party", id=f"p-{n:03d}", time=at) for n, (p, at) in enumerate(party_)],
            [envelope_for(p, source="/services/orders", id=f"o-{n:03d}", time=at) for n, (p, at) in enumerate(orders_)])


PARTY_EVENTS, ORDERS_EVENTS = events()


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("assessment-party")
    w = Worker("services.assessment.app", {
        "KAFKA_BOOTSTRAP_SERVERS": module_kafka, "DATABASE_URL": module_database_url, "TOPIC_PARTITIONS": "4",
        "ASSESSMENT_CLOSE_CHECK_SECONDS": "3600", **CLOCK,
    }, prefix="ASSESSMENT_", log=d / "worker.log").start()
    try:
        await w.wait_ready()
        w.kafka = module_kafka
        yield w
    finally:
        code = w.stop()
        assert code == 0, (d / "worker.log").read_text()[-4000:]


def cards(events_: list[dict]) -> dict[tuple[str, str], dict]:
    return {(e["data"]["entity_type"], e["data"]["entity_id"]): e["data"] for e in events_
            if e["type"] == SCORECARD and e["data"]["scheme_id"] == "default-2026"}


async def test_a_month_of_party_facts_makes_the_organisation_pillar_of_community_street_and_unit(worker):
    await send(worker.kafka, "party.events.v1", *PARTY_EVENTS)
    await send(worker.kafka, "orders.events.v1", *ORDERS_EVENTS)
    await recorded(worker, sum(e.type in CONSUMED_TYPES for e in PARTY_EVENTS + ORDERS_EVENTS))

    status, body = await http("POST", worker.url + "/v1/commands", token=TOKEN, json={
        "id": str(uuid.uuid4()), "type": "assessment.period.close.v1", "data": {"period": PERIOD}})
    assert status == 200, body
    published = cards(body["events"])

    for key in (("community", COMMUNITY), ("street", STREET)):
        card = published[key]
        assert {k: card["indicators"].get(k) for k in COMMUNITY_RATES} == COMMUNITY_RATES, key
        assert card["pillars"]["organisation"] == pytest.approx(ORGANISATION, abs=0.01), key
        org = {n for n, d in card["details"].items() if d["pillar"] == "organisation"}
        assert not org & {"on_time_closure_rate", "closure_rate", "rework_rate", "registration_rate"}
        # 党员作用发挥 is 0 (its counts, points and volunteers, always have a value), 群众满意度 has none
        assert card["pillars"]["member_role"] == 0.0 and card["pillars"]["satisfaction"] is None
        assert card["score"] == pytest.approx(ORGANISATION / 2, abs=0.01)

    unit = published[("unit", UNIT)]
    assert {k: unit["indicators"][k] for k in UNIT_RATES} == UNIT_RATES
    assert unit["pillars"]["organisation"] == 100.0
    assert published[("unit", UNIT_B)]["indicators"]["unit_report_rate"] == 0.0
    assert not any(et == "grid" for et, _ in published)  # the tree is scored from the community up

    status, card = await http("GET", worker.url + f"/v1/scorecards/community/{COMMUNITY}?period={PERIOD}",
                              token=TOKEN)
    assert status == 200 and card["pillars"]["organisation"] == pytest.approx(ORGANISATION, abs=0.01)
