"""The regional council, units and projects in the party worker, on a real broker and database.

A council takes effect at the end of its 公示, a meeting with a quorum adopts resolutions and one
without adopts nothing, a resolution past its deadline is supervised once, a quarter without a
meeting is reported once, the 1/3 rule and another area's secretary are refused, and an erased
member's seat loses its name. A unit reports, signs and renews an agreement, and claims, completes
and has rated a project; a unit that did not report cannot claim.

The council's calendar (a 5-day 公示, quarters, deadlines) is played in the test process on the
worker's database with a later ``now``, each batch and each timer round committed as the kit
does, in 2030 (after the real clock, so that the worker's own council timer never finds these
councils due); the worker answers ``GET /v1/councils/{council_id}``. Units and projects go
through the worker itself, over Kafka and HTTP; and the worker's own council timer makes a council
whose 公示 has ended effective, once."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import orjson
import pytest
from prometheus_client import REGISTRY

from schemas.envelope import Message, envelope_for
from schemas.party import (
    ClaimProject, CompleteProject, CompleteResolution, CouncilLevel, CouncilSeat, ErasePerson, HoldMeeting,
    PostProject, ProposeCouncil, RateProject, ReportUnit, ResolutionItem, SignAgreement,
)
from schemas.topics import PARTY
from services.kit.clock import SHANGHAI
from services.kit.db import create_pool
from services.kit.handlers import dispatch
from services.kit.identity import Principal, Scope
from services.kit.outbox import write as write_outbox
from services.kit.uow import UnitOfWork
from services.party.app.handler import PartyHandler
from services.party.app.settings import PartySettings
from services.party.domain.council import CouncilState
from services.party.projection.councils import council_answer
from tests.support.identity import command_token, token
from tests.support.kafka import command, of_type, read_all, send
from tests.support.procs import Worker, http

from .support import party_worker, run_timer, uid, wait_for

pytestmark = pytest.mark.integration

READER = token(sub="auditor-1", roles=["auditor"])
STREET, COMMUNITY = "110105001", "110105001005"
OUTSIDER = token(sub="sec-9", roles=["party_secretary"], scope={"streets": ["110105002"]})
SECRETARY = Principal("sec-1", frozenset({"party_secretary"}), Scope.of(communities=[COMMUNITY]))
T0 = datetime(2030, 1, 6, 10, 0, tzinfo=SHANGHAI)  # 2030-Q1; the 公示 ends 2030-01-11


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("party-council") / "worker.log"
    async with party_worker(module_kafka, module_database_url, log, PARTY_COUNCIL_INTERVAL_SECONDS="0.3") as w:
        yield w


@pytest.fixture
async def pool(worker, module_database_url):
    """The worker's database (migrated by the worker)."""
    p = await create_pool(module_database_url, "party", service="party", max_size=2)
    yield p
    await p.close()


@pytest.fixture(scope="module")
def handler() -> PartyHandler:
    return PartyHandler(PartySettings())



async def run(pool, handler: PartyHandler, payload, now: datetime) -> UnitOfWork:
    """One command as a batch sent by the community's secretary, committed as the kit's consumer does."""
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "party", now)
        msg = Message(envelope=envelope_for(payload, source="/tests"), payload=payload, principal=SECRETARY)
        assert await dispatch(handler, uow, [msg]) == []
        await uow.flush()
        await write_outbox(conn, uow.records)
    uow.committed()
    return uow


def refusals(uow: UnitOfWork) -> list[str]:
    return [e.reason for _, e in uow.rejected]


def emitted(uow: UnitOfWork) -> list[str]:
    return [e.type for e in uow.emitted if not e.type.endswith(".rejected.v1")]


async def timer_round(pool, handler: PartyHandler, now: datetime) -> tuple[int, list[str]]:
    """One round of the council timer (councils checked, event types), committed as the kit does."""
    checked, uow = await run_timer(pool, handler.check_councils, now)
    return checked, emitted(uow)


def counted(name: str, **labels: str) -> float:
    """A counter of the party service in this process (the handler's, run here)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def seats(people: list[str], part_time: int) -> tuple[CouncilSeat, ...]:
    return tuple(CouncilSeat(person_id=p, name=f"委员{i}", role="secretary" if i == 0 else "member",
                             part_time=i < part_time, unit_id=f"unit-{i}" if i < part_time else None)
                 for i, p in enumerate(people))


async def get(w: Worker, path: str, tok: str = READER):
    return await http("GET", w.url + path, token=tok)


async def post_command(w: Worker, payload, tok: str | None = None):
    body = {"id": str(uuid.uuid4()), "type": payload.TYPE, "data": payload.model_dump(mode="json", exclude_none=True)}
    return await http("POST", w.url + "/v1/commands", json=body, token=tok or command_token(body))



async def test_a_council_takes_effect_after_its_publication_meets_and_misses_a_quarter_once(worker, pool, handler):
    council = uid("rc")
    members = [uid("p") for _ in range(7)]
    # the 1/3 rule: two part-time members of seven are too few, and nothing is kept
    bad = await run(pool, handler, ProposeCouncil(council_id=council, level=CouncilLevel.COMMUNITY,
                                                  area_id=COMMUNITY, seats=seats(members, 2)), T0)
    assert refusals(bad) == ["part_time_below_third"] and emitted(bad) == []
    assert (await get(worker, f"/v1/councils/{council}"))[0] == 404

    proposed = await run(pool, handler, ProposeCouncil(council_id=council, level=CouncilLevel.COMMUNITY,
                                                       area_id=COMMUNITY, seats=seats(members, 3)), T0)
    assert emitted(proposed) == ["party.council.proposed.v1"]
    assert proposed.emitted[0].data["proposed_by"] == "sec-1"
    status, body = await get(worker, f"/v1/councils/{council}")
    assert status == 200 and (body["effective"], body["current"]) == (False, None), body
    assert body["pending"]["effective_at"].startswith("2030-01-11T")

    # during the 公示 nothing happens; at its end the council takes effect, once
    assert (await timer_round(pool, handler, T0 + timedelta(days=4)))[1] == []
    assert (await timer_round(pool, handler, T0 + timedelta(days=5, minutes=1)))[1] == [
        "party.council.effective.v1"]
    assert (await timer_round(pool, handler, T0 + timedelta(days=5, minutes=2)))[1] == []
    status, body = await get(worker, f"/v1/councils/{council}")
    assert status == 200 and body["effective"] and len(body["current"]["seats"]) == 7, body

    # a meeting with 4 of 7 has a quorum and adopts a resolution; 3 of 7 adopts nothing
    due = T0 + timedelta(days=40)
    held, overdue = counted("party_meetings_held_total", quorum="true"), counted("party_meetings_overdue_total")
    met = await run(pool, handler, HoldMeeting(
        council_id=council, meeting_id=uid("m"), held_at=T0 + timedelta(days=9), attendees=tuple(members[:4]),
        absentees=tuple(members[4:]), resolutions=(
            ResolutionItem(resolution_id="r-1", title="共建停车场", owner_unit_id="unit-0", due_at=due),
            ResolutionItem(resolution_id="r-2", title="老旧小区改造", owner_unit_id="unit-1", due_at=due))),
        T0 + timedelta(days=10))
    assert emitted(met) == ["party.meeting.held.v1"] and met.emitted[0].data["quorum"] is True
    thin = await run(pool, handler, HoldMeeting(
        council_id=council, meeting_id=uid("m"), held_at=T0 + timedelta(days=11), attendees=tuple(members[:3]),
        absentees=tuple(members[3:]), resolutions=(ResolutionItem(resolution_id="r-3", title="加装电梯",
                                                                  owner_unit_id="unit-1", due_at=due),)),
        T0 + timedelta(days=12))
    assert refusals(thin) == ["no_quorum"] and emitted(thin) == []
    done = await run(pool, handler, CompleteResolution(council_id=council, resolution_id="r-1"),
                     T0 + timedelta(days=20))
    assert emitted(done) == ["party.resolution.completed.v1"] and done.emitted[0].data["on_time"] is True
    # the other one, still open after its deadline, is supervised (督办) once
    assert (await timer_round(pool, handler, due + timedelta(hours=1)))[1] == ["party.resolution.overdue.v1"]
    assert (await timer_round(pool, handler, due + timedelta(hours=2)))[1] == []

    # the first whole quarter (2030-Q2) passes without a meeting: overdue once
    after_q2 = datetime(2030, 7, 1, 1, 0, tzinfo=SHANGHAI)
    assert (await timer_round(pool, handler, after_q2 - timedelta(hours=2)))[1] == []
    assert (await timer_round(pool, handler, after_q2))[1] == ["party.meeting.overdue.v1"]
    assert (await timer_round(pool, handler, after_q2 + timedelta(hours=1)))[1] == []
    assert counted("party_meetings_held_total", quorum="true") == held + 1
    assert counted("party_meetings_overdue_total") == overdue + 1
    status, body = await get(worker, f"/v1/councils/{council}")
    assert status == 200 and body["overdue_quarters"] == ["2030-Q2"] and body["met_quarters"] == ["2030-Q1"], body
    assert [(r["resolution_id"], r["on_time"], r["overdue"]) for r in body["resolutions"]] == [
        ("r-1", True, False), ("r-2", None, True)]
    # answered as kept beside the state (migration 014): the route's answer of the state, byte for byte
    async with pool.acquire() as conn:
        kept, state = await conn.fetchrow("SELECT answer, state::text FROM party.councils WHERE council_id = $1",
                                          council)
    assert kept == council_answer(CouncilState.model_validate_json(state)) and orjson.loads(kept) == body

    # another street's secretary neither reads it nor holds a meeting of it (as unknown)
    assert (await get(worker, f"/v1/councils/{council}", OUTSIDER))[0] == 404
    outsider = Principal("sec-9", frozenset({"party_secretary"}), Scope.of(streets=["110105002"]))
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "party", after_q2)
        cmd = CompleteResolution(council_id=council, resolution_id="r-1")
        await dispatch(handler, uow, [Message(envelope=envelope_for(cmd, source="/tests"), payload=cmd,
                                              principal=outsider)])
        assert refusals(uow) == ["unknown_council"]

    # a member erased: their seat keeps its role and unit, under the pseudonym, without a name
    status, body = await post_command(worker, ErasePerson(person_id=members[6], reason="个人信息删除申请"))
    assert status == 200, body
    pseudonym = body["events"][0]["data"]["pseudonym"]
    status, body = await get(worker, f"/v1/councils/{council}")
    seat = next(s for s in body["current"]["seats"] if s["person_id"] == pseudonym)
    assert seat["name"] is None and members[6] not in str(body)
    async with pool.acquire() as conn:  # the erasure's statement left no answer: the state answers
        assert await conn.fetchval("SELECT answer FROM party.councils WHERE council_id = $1", council) is None
    assert next(s for s in body["current"]["seats"] if s["person_id"] == members[5])["name"] == "委员5"


async def test_a_unit_reports_and_a_project_is_posted_claimed_completed_and_rated(worker, module_kafka):
    unit, stranger, project = uid("unit"), uid("unit"), uid("pj")
    await send(module_kafka, PARTY.intake.name, command(ReportUnit(unit_id=unit, name="区医院", community_id=COMMUNITY,
                                                                   resources=("义诊", "会议室"))))

    async def reported():
        status, page = await get(worker, f"/v1/units?community_id={COMMUNITY}")
        return page if status == 200 and any(u["unit_id"] == unit for u in page["items"]) else None
    page = await wait_for(reported)
    row = next(u for u in page["items"] if u["unit_id"] == unit)
    assert (row["street_id"], row["resources"]) == (STREET, ["义诊", "会议室"])

    # 共建协议 with the community, renewed under the same id; a unit that never reported there cannot sign
    agreement, start = uid("ag"), datetime(2027, 1, 1, tzinfo=SHANGHAI)
    for valid_from, renewal in ((start, False), (start.replace(year=2028), True)):
        status, body = await post_command(worker, SignAgreement(
            agreement_id=agreement, unit_id=unit, community_id=COMMUNITY, commitments=("义诊",),
            valid_from=valid_from, valid_until=valid_from.replace(year=valid_from.year + 1)))
        assert status == 200 and [e["data"]["renewal"] for e in body["events"]] == [renewal], body
    status, body = await post_command(worker, SignAgreement(
        agreement_id=uid("ag"), unit_id=stranger, community_id=COMMUNITY, commitments=("场地",),
        valid_from=start, valid_until=start.replace(year=2028)))
    assert (status, body["error"]) == (409, "unit_not_reported"), body
    status, page = await get(worker, f"/v1/units?community_id={COMMUNITY}")
    row = next(u for u in page["items"] if u["unit_id"] == unit)
    assert [(a["agreement_id"], a["renewals"]) for a in row["agreements"]] == [(agreement, 1)]

    status, body = await post_command(worker, PostProject(project_id=project, community_id=COMMUNITY,
                                                          title="楼道照明改造", need="12 个楼道"))
    assert status == 200 and [e["type"] for e in body["events"]] == ["party.project.posted.v1"], body
    # a unit that never reported to the community cannot claim it
    status, body = await post_command(worker, ClaimProject(project_id=project, unit_id=stranger))
    assert (status, body["error"], body["field"]) == (409, "unit_not_reported", "unit_id"), body
    # another street's secretary: the project is unknown to them
    status, body = await post_command(worker, ClaimProject(project_id=project, unit_id=unit), OUTSIDER)
    assert (status, body["error"]) == (409, "unknown_project"), body

    for payload, event in ((ClaimProject(project_id=project, unit_id=unit), "party.project.claimed.v1"),
                           (CompleteProject(project_id=project, unit_id=unit, result="已完成"),
                            "party.project.completed.v1"),
                           (RateProject(project_id=project, rating=5, comment="满意"), "party.project.rated.v1")):
        status, body = await post_command(worker, payload)
        assert status == 200 and [e["type"] for e in body["events"]] == [event], body
    status, body = await post_command(worker, RateProject(project_id=project, rating=3))
    assert (status, body["error"]) == (409, "already_rated"), body

    status, page = await get(worker, f"/v1/projects?community_id={COMMUNITY}&status=rated")
    assert status == 200, page
    row = next(p for p in page["items"] if p["project_id"] == project)
    assert (row["status"], row["unit_id"], row["rating"]) == ("rated", unit, 5)
    status, page = await get(worker, f"/v1/projects?community_id={COMMUNITY}&status=posted")
    assert status == 200 and project not in [p["project_id"] for p in page["items"]]
    # another street's secretary sees no unit and no project of the community
    for path in (f"/v1/units?community_id={COMMUNITY}", f"/v1/projects?community_id={COMMUNITY}"):
        status, page = await get(worker, path, OUTSIDER)
        assert (status, page["total"], page["items"]) == (200, 0, []), page


async def test_the_workers_council_timer_makes_a_council_effective_once_its_publication_has_ended(
        worker, pool, handler, module_kafka):
    council = uid("rc")
    proposed_at = datetime.now(SHANGHAI) - timedelta(days=6)  # its 公示 ended yesterday
    uow = await run(pool, handler, ProposeCouncil(council_id=council, level=CouncilLevel.COMMUNITY,
                                                  area_id=COMMUNITY, seats=seats([uid("p") for _ in range(7)], 3)),
                    proposed_at)
    assert emitted(uow) == ["party.council.proposed.v1"]

    async def effective():
        status, body = await get(worker, f"/v1/councils/{council}")
        return body if status == 200 and body["effective"] else None
    body = await wait_for(effective)
    assert body["pending"] is None and body["current"]["effective_at"] == body["compositions"][0]["effective_at"]
    found = await read_all(module_kafka, PARTY.events.name, min_count=1,
                           predicate=lambda r: isinstance(r["value"], dict)
                           and r["value"]["type"] == "party.council.effective.v1"
                           and r["value"]["data"]["council_id"] == council)
    await asyncio.sleep(1.0)  # several more rounds of the timer
    mine = [e for e in of_type(await read_all(module_kafka, PARTY.events.name), "party.council.effective.v1")
            if e["data"]["council_id"] == council]
    assert found and len(mine) == 1 and (mine[0]["data"]["members"], mine[0]["data"]["part_time_members"]) == (7, 3)
