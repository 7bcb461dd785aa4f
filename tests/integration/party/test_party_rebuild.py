"""``python -m services.party.app rebuild`` against a real party worker: commands on
``party.intake.v1`` (the organisation tree, members attached and transferred, a central
household, a regional council proposed, units reporting and signing, a project's life,
organisational life, a commitment's life, an erasure, refusals, a repeat, a poison record) and
the upstream events it consumes (orders' members registered and moved and their orders
completed and evaluated; grid's erasure) are handled live; the rebuilt projection equals the
live one row for row.

Its timers (coverage, organisational life, members' reports, councils) find nothing due
within the test; their rounds, run again by a rebuild, are ``test_party_timer_rebuild.py``'s."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from schemas.grid import PersonErased as GridPersonErased
from schemas.orders import MemberMoved, MemberRegistered, OrderCompleted, OrderEvaluated
from schemas.party import (
    AttachMember, ClaimProject, CompleteProject, CouncilLevel, CouncilSeat, ErasePerson, EstablishOrg,
    FulfilCommitment, MakeCommitment, MarkCentralHousehold, OrgKind, OrgLifeKind, PostProject, ProposeCouncil,
    RateCommitment, RateProject, RecordOrgLife, ReportUnit, SignAgreement,
)
from services.kit.clock import SHANGHAI
from tests.support.kafka import command, produce, read_all
from tests.support.rebuild import Phases, differences, live_and_rebuilt, report

from .support import party_worker, uid

pytestmark = pytest.mark.integration

STREET, COMMUNITY, OTHER, GRID = "110105001", "110105001002", "110105001003", "110105001002003"
ORDERS_SOURCE = "/services/orders"


def seats(people: list[str], part_time: int) -> tuple[CouncilSeat, ...]:
    return tuple(CouncilSeat(person_id=p, name=f"委员{i}", role="secretary" if i == 0 else "member",
                             part_time=i < part_time, unit_id=f"unit-{i}" if i < part_time else None)
                 for i, p in enumerate(people))


@pytest.fixture(scope="module")
async def compared(module_kafka, module_database_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("party-rebuild")
    kafka, db = module_kafka, module_database_url
    phase = Phases(kafka, db, "party")

    async with party_worker(kafka, db, d / "worker.log") as w:
        street, community, branch, group, unit_org = (uid(p) for p in ("o-s", "o-c", "o-g", "o-b", "o-u"))
        m1, m2, m3, m4 = (uid("pm") for _ in range(4))
        await phase("party.intake.v1", command(EstablishOrg(org_id=street, kind=OrgKind.STREET_WORKING_COMMITTEE,
                                                            area_id=STREET, name="街道党工委")))
        await phase("party.intake.v1",
                    command(EstablishOrg(org_id=community, kind=OrgKind.COMMUNITY_COMMITTEE, area_id=COMMUNITY,
                                         parent_id=street, name="社区党委", secretary_id=m1)),
                    command(EstablishOrg(org_id=uid("o-x"), kind=OrgKind.COMMUNITY_COMMITTEE, area_id=COMMUNITY,
                                         parent_id=uid("o-none"), name="无上级")))  # refused: no such parent
        await phase("party.intake.v1",
                    command(EstablishOrg(org_id=branch, kind=OrgKind.GRID_BRANCH, area_id=GRID, parent_id=community,
                                         name="第三网格党支部")),
                    command(EstablishOrg(org_id=unit_org, kind=OrgKind.UNIT_ORG, area_id=COMMUNITY,
                                         parent_id=community, name="区医院党支部")))
        await phase("party.intake.v1",
                    command(EstablishOrg(org_id=group, kind=OrgKind.BUILDING_GROUP, area_id=f"{GRID}:3", parent_id=branch,
                                         name="3号楼党小组")))
        attach = command(AttachMember(org_id=community, member_id=m1))
        await phase("party.intake.v1", attach, command(AttachMember(org_id=community, member_id=m2)),
                    command(AttachMember(org_id=branch, member_id=m3)),
                    command(AttachMember(org_id=group, member_id=m4)))
        await phase("party.intake.v1", attach,  # a repeat: handled once
                    command(AttachMember(org_id=branch, member_id=m2, reason="转接")),  # a transfer
                    command(MarkCentralHousehold(org_id=group, member_id=m4)))
        # 区域化党建: a council proposed (its 公示 runs; the timer would make it effective), one refused
        council, people = uid("rc"), [uid("p") for _ in range(7)]
        unit, project, agreement = uid("unit"), uid("pj"), uid("ag")
        start = datetime(2027, 1, 1, tzinfo=SHANGHAI)
        await phase("party.intake.v1",
                    command(ProposeCouncil(council_id=council, level=CouncilLevel.COMMUNITY, area_id=COMMUNITY,
                                           seats=seats(people, 3))),
                    command(ProposeCouncil(council_id=uid("rc"), level=CouncilLevel.COMMUNITY, area_id=COMMUNITY,
                                           seats=seats(people, 2))),  # refused: the 1/3 rule
                    command(ReportUnit(unit_id=unit, name="区医院", community_id=COMMUNITY, org_id=unit_org,
                                       resources=("义诊", "会议室"))),
                    command(PostProject(project_id=project, community_id=COMMUNITY, title="楼道照明改造",
                                        need="12 个楼道")))
        await phase("party.intake.v1",
                    command(SignAgreement(agreement_id=agreement, unit_id=unit, community_id=COMMUNITY,
                                          commitments=("义诊",), valid_from=start, valid_until=start.replace(year=2028))),
                    command(ClaimProject(project_id=project, unit_id=unit)),
                    command(SignAgreement(agreement_id=uid("ag"), unit_id=uid("unit"), community_id=COMMUNITY,
                                          commitments=("场地",), valid_from=start,
                                          valid_until=start.replace(year=2028))))  # refused: not reported
        await phase("party.intake.v1",
                    command(SignAgreement(agreement_id=agreement, unit_id=unit, community_id=COMMUNITY,
                                          commitments=("义诊", "讲座"), valid_from=start.replace(year=2028),
                                          valid_until=start.replace(year=2029))),  # a renewal
                    command(CompleteProject(project_id=project, unit_id=unit, result="已完成")))
        await phase("party.intake.v1", command(RateProject(project_id=project, rating=5, comment="满意")))
        # organisational life and a member's commitment
        commitment = uid("c")
        year = datetime.now(SHANGHAI).year
        await phase("party.intake.v1",
                    command(RecordOrgLife(org_id=community, meeting_id=uid("m"), kind=OrgLifeKind.THEME_DAY,
                                          held_at=datetime.now(timezone.utc),
                                          attendees=[m1, m2], absentees=[], topic="学习")),
                    command(MakeCommitment(member_id=m1, commitment_id=commitment, year=year, text="每月一次志愿服务")))
        await phase("party.intake.v1", command(FulfilCommitment(member_id=m1, commitment_id=commitment, note="已完成")))
        await phase("party.intake.v1", command(RateCommitment(member_id=m1, commitment_id=commitment, rating=4)))
        # orders: members registered (one moves), their orders completed and evaluated
        now = datetime.now(timezone.utc)
        o1 = uid("o")
        await phase("orders.events.v1",
                    command(MemberRegistered(member_id=m2, community_id=COMMUNITY, unit_id=unit, at=now),
                            source=ORDERS_SOURCE),
                    command(MemberRegistered(member_id=m3, community_id=COMMUNITY, unit_id=uid("unit"), at=now),
                            source=ORDERS_SOURCE),
                    command(OrderCompleted(order_id=o1, assignee_id=m2, service_minutes=60, at=now),
                            source=ORDERS_SOURCE))
        await phase("orders.events.v1",
                    command(MemberMoved(member_id=m3, community_id=OTHER, from_community_id=COMMUNITY,
                                        unit_id=uid("unit"), report_by=now + timedelta(days=30), occurred_at=now),
                            source=ORDERS_SOURCE),
                    command(OrderEvaluated(order_id=o1, assignee_id=m2, rating=4, passed=True,
                                           evaluator_id="officer-1", at=now), source=ORDERS_SOURCE))
        # erasures: a command, and grid's event
        await phase("party.intake.v1", command(ErasePerson(person_id=m4, reason="本人申请", requested_by="dpo-1")))
        await phase("grid.events.v1", command(GridPersonErased(pseudonym="erased-" + "ef" * 8, person_id=people[6],
                                                               occurred_at=now), source="/services/grid"))
        await produce(kafka, "party.intake.v1", [("poison", b'{"specversion": "1.0", "id": "broken')])
        await phase.handled(positions=1)
        rejections = [r["value"]["data"]["reason"] for r in await read_all(kafka, "party.rejections.v1", timeout=2)]
    live, rebuilt = await live_and_rebuilt(db, "party", w.env)
    return live, rebuilt, rejections


async def test_a_rebuilt_party_projection_equals_the_live_one_row_for_row(compared):
    live, rebuilt, rejections = compared
    assert sorted(rejections) == ["part_time_below_third", "unit_not_reported", "unknown_parent"], rejections
    diffs = differences(live, rebuilt)
    assert not diffs, report(diffs)
