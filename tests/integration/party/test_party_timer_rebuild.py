"""The party's timer rounds, run again by ``python -m services.party.app rebuild``: a party
worker on a stepped calendar (a simulated month every 20 s) lives through May, June and July,
and each of its five timers publishes in that time:

- coverage: a grid counts three members and has no grid branch (May);
- organisational life: May's committee meetings and theme days missed (June), and June's and
  the second quarter's (July);
- members' reports: a member whose unit never reported is flagged (June); one who registers with
  a unit that has reported, and one whose unit reports after they registered, are settled when
  that is learnt (no event: the unit's report is one), and not flagged;
- quarterly feedback: the three registered members get the second quarter's, with the orders
  one of them served (July);
- councils: a proposal made effective when its 公示 has ended (dated then, found in June), and a
  resolution past its deadline (July).

The rebuilt projection equals the live one row for row."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import asyncpg
import orjson
import pytest

from schemas.orders import MemberRegistered, OrderCompleted, OrderEvaluated
from schemas.party import (
    AttachMember, CouncilLevel, EstablishOrg, HoldMeeting, OrgKind, OrgLifeKind, ProposeCouncil, RecordOrgLife,
    ReportUnit, ResolutionItem,
)
from services.kit import clock
from services.kit.clock import SHANGHAI
from tests.support.kafka import command, read_all
from tests.support.procs import Worker
from tests.support.rebuild import Phases, differences, report, run_rebuild, snapshot

from .support import TIMER_OF, uid
from .test_party_rebuild import seats

pytestmark = pytest.mark.integration

STREET, COMMUNITY, GRID = "110105001", "110105001002", "110105001002007"
ORDERS_SOURCE = "/services/orders"
MONTH_SECONDS = 20.0
TIMERS = ("party.coverage.gap.v1", "party.org_life.overdue.v1", "party.member.report_overdue.v1",
          "party.member.feedback.v1", "party.council.effective.v1", "party.resolution.overdue.v1")


async def test_every_timers_rounds_are_run_again(kafka, database_url, tmp_path):
    real_start = time.time()
    env = {"SIM_CLOCK_START": datetime(2026, 5, 1, tzinfo=SHANGHAI).isoformat(),
           "SIM_CLOCK_REAL_START": f"{real_start:.6f}", "SIM_MONTH_SECONDS": f"{MONTH_SECONDS:g}"}
    calendar = clock.from_env(env)
    w = Worker("services.party.app", {
        "KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": database_url, "TOPIC_PARTITIONS": "4", **env,
        **{f"PARTY_{t}_INTERVAL_SECONDS": "0.3" for t in ("COVERAGE", "ORG_LIFE", "MEMBER", "COUNCIL")},
    }, prefix="PARTY_", log=tmp_path / "worker.log").start()
    phase = Phases(kafka, database_url, "party")

    async def month(n: int) -> None:
        """Until the n-th simulated month (0: May) has begun, and the timers have had a round in it."""
        await asyncio.sleep(max(0.0, real_start + n * MONTH_SECONDS + 1.5 - time.time()))

    def published(*types: str):
        return lambda r: r["value"]["type"] in types and not r["value"].get("causationid")

    street, community = uid("o-s"), uid("o-c")
    members = [uid("pm") for _ in range(3)]
    flagged, settled, late = members
    council, people = uid("rc"), [uid("p") for _ in range(7)]
    try:
        await w.wait_ready()
        await phase("party.intake.v1", command(EstablishOrg(org_id=street, kind=OrgKind.STREET_WORKING_COMMITTEE,
                                                            area_id=STREET, name="街道党工委")))
        await phase("party.intake.v1",
                    command(EstablishOrg(org_id=community, kind=OrgKind.COMMUNITY_COMMITTEE, area_id=COMMUNITY,
                                         parent_id=street, name="社区党委")),
                    command(ProposeCouncil(council_id=council, level=CouncilLevel.COMMUNITY, area_id=COMMUNITY,
                                           seats=seats(people, 3))),
                    command(ReportUnit(unit_id="unit-reported", name="区医院", community_id=COMMUNITY)))
        # three members living in a grid without a branch: a coverage gap
        await phase("party.intake.v1", *(command(AttachMember(org_id=community, member_id=m, grid_id=GRID))
                                         for m in members))
        await phase("party.intake.v1", command(RecordOrgLife(
            org_id=community, meeting_id=uid("m"), kind=OrgLifeKind.COMMITTEE_MEETING, held_at=calendar.now(),
            attendees=members[:2], absentees=members[2:], topic="学习")))
        order, at = uid("o"), calendar.now()  # orders dates them on the same calendar
        await phase("orders.events.v1",
                    command(MemberRegistered(member_id=flagged, community_id=COMMUNITY, unit_id="unit-never", at=at),
                            source=ORDERS_SOURCE),
                    command(MemberRegistered(member_id=settled, community_id=COMMUNITY, unit_id="unit-reported",
                                             at=at), source=ORDERS_SOURCE),
                    command(MemberRegistered(member_id=late, community_id=COMMUNITY, unit_id="unit-late", at=at),
                            source=ORDERS_SOURCE),
                    command(OrderCompleted(order_id=order, assignee_id=flagged, service_minutes=60, at=at),
                            source=ORDERS_SOURCE))
        await phase("orders.events.v1", command(OrderEvaluated(order_id=order, assignee_id=flagged, rating=5,
                                                               passed=True, evaluator_id="officer-1", at=at),
                                                source=ORDERS_SOURCE))
        assert await _settled(database_url) == {settled}  # its unit had reported
        await phase("party.intake.v1", command(ReportUnit(unit_id="unit-late", name="街道卫生院",
                                                          community_id=COMMUNITY)))
        assert calendar.now().astimezone(SHANGHAI).month == 5, "May's part took longer than a simulated month"
        await read_all(kafka, "party.events.v1", min_count=1, timeout=30, predicate=published(TIMERS[0]))

        await month(1)  # June: the council's 公示 has ended; May's meetings missed; a member overdue
        await read_all(kafka, "party.events.v1", min_count=1, timeout=30, predicate=published(TIMERS[4]))
        held_at = calendar.now()
        await phase("party.intake.v1", command(HoldMeeting(
            council_id=council, meeting_id=uid("cm"), held_at=held_at, attendees=people[:6], absentees=people[6:],
            resolutions=(ResolutionItem(resolution_id=uid("r"), title="楼道照明", owner_unit_id="unit-0",
                                        due_at=held_at + timedelta(days=2)),))))
        assert calendar.now().astimezone(SHANGHAI).month == 6, "June's part took longer than a simulated month"

        await month(2)  # July: the resolution is late; the second quarter's feedback
        await read_all(kafka, "party.events.v1", min_count=2, timeout=30, predicate=published(TIMERS[3], TIMERS[5]))
        await phase.handled()
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-4000:]
    records = [r["value"] for r in await read_all(kafka, "party.events.v1", timeout=2)]
    timed = [r for r in records if not r.get("causationid")]
    assert {r["type"] for r in timed} >= set(TIMERS), sorted({r["type"] for r in timed})
    assert {r["subject"] for r in timed if r["type"] == "party.member.report_overdue.v1"} == {flagged}
    effective = next(r for r in timed if r["type"] == "party.council.effective.v1")
    assert datetime.fromisoformat(effective["time"]).astimezone(SHANGHAI).month == 5  # dated when its 公示 ended

    live = await snapshot(database_url, "party")
    assert await _settled(database_url) == {settled, late}  # settled when their unit's report was learnt
    done = await asyncio.to_thread(run_rebuild, "party", w.env)
    assert done.returncode == 0, done.stderr[-4000:]
    outcome = orjson.loads(done.stdout.strip().splitlines()[-1])
    diffs = differences(live, await snapshot(database_url, "party"))
    assert not diffs, f"{outcome}\n{report(diffs)}"
    # every live round that published, run again (a council's effective proposal at its 公示's end)
    assert outcome["timer_rounds"] == len({(r["time"], TIMER_OF[r["type"]]) for r in timed}), outcome
    assert outcome["not_published_again"] == {"party.events.v1": len({r["id"] for r in records})}, outcome


async def _settled(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r[0] for r in await conn.fetch("SELECT member_id FROM party.member_follow_ups WHERE report_settled")}
    finally:
        await conn.close()


async def test_a_command_that_makes_a_council_effective_first_is_replayed_when_it_was_handled(
        kafka, database_url, tmp_path):
    """A meeting held on a council whose 公示 ended before its timer got to it: the command makes
    the proposal effective first, in an event dated at the 公示's end, then holds the meeting. The
    rebuild handles it at the time of its latest event (at its first, the meeting would be held a
    month before it was, and refused as in the future)."""
    real_start = time.time()
    env = {"SIM_CLOCK_START": datetime(2026, 5, 1, tzinfo=SHANGHAI).isoformat(),
           "SIM_CLOCK_REAL_START": f"{real_start:.6f}", "SIM_MONTH_SECONDS": "10"}
    calendar = clock.from_env(env)
    w = Worker("services.party.app", {
        "KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": database_url, "TOPIC_PARTITIONS": "4", **env,
        "PARTY_COUNCIL_INTERVAL_SECONDS": "3600",  # the council timer does not get to it
    }, prefix="PARTY_", log=tmp_path / "worker.log").start()
    phase = Phases(kafka, database_url, "party")
    council, people = uid("rc"), [uid("p") for _ in range(7)]
    meeting = uid("cm")
    try:
        await w.wait_ready()
        await phase("party.intake.v1", command(ProposeCouncil(council_id=council, level=CouncilLevel.COMMUNITY,
                                                              area_id=COMMUNITY, seats=seats(people, 3))))
        assert calendar.now().astimezone(SHANGHAI).month == 5
        await asyncio.sleep(max(0.0, real_start + 10.5 - time.time()))  # June: the 公示 has ended
        await phase("party.intake.v1", command(HoldMeeting(
            council_id=council, meeting_id=meeting, held_at=calendar.now(), attendees=people[:6],
            absentees=people[6:])))
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-4000:]
    records = [r["value"] for r in await read_all(kafka, "party.events.v1", timeout=2)
               if r["value"]["subject"] == council]
    times = {r["type"]: datetime.fromisoformat(r["time"]).astimezone(SHANGHAI).month for r in records}
    assert times == {"party.council.proposed.v1": 5, "party.council.effective.v1": 5, "party.meeting.held.v1": 6}
    assert len({r["causationid"] for r in records if r["type"] != "party.council.proposed.v1"}) == 1

    live = await snapshot(database_url, "party")
    done = await asyncio.to_thread(run_rebuild, "party", w.env)
    assert done.returncode == 0, done.stderr[-4000:]
    outcome = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["rejected"] == {} and outcome["timer_rounds"] == 0, outcome
    diffs = differences(live, await snapshot(database_url, "party"))
    assert not diffs, f"{outcome}\n{report(diffs)}"
