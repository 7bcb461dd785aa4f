"""The party worker as a real process: Kafka intake and HTTP commands build an organisation tree,
a member is transferred between two organisations, a bad parent is refused, and the coverage
timer reports a grid with members and no branch exactly once."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from schemas.party import AttachMember, ErasePerson, EstablishOrg, MarkCentralHousehold, OrgKind
from schemas.topics import PARTY
from tests.support.identity import command_token, token
from tests.support.kafka import command, of_type, read_all, send
from tests.support.procs import Worker, http

from .support import party_worker, uid, wait_for

pytestmark = pytest.mark.integration

READER = token(sub="auditor-1", roles=["auditor"])
STREET, COMMUNITY = "110105001", "110105001002"
GRID = "110105001002003"
K = OrgKind


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("party") / "worker.log"
    async with party_worker(module_kafka, module_database_url, log, PARTY_COVERAGE_INTERVAL_SECONDS="0.3") as w:
        yield w



async def get(w: Worker, path: str, tok: str = READER):
    return await http("GET", w.url + path, token=tok)


async def org_when(w: Worker, org_id: str, predicate=lambda o: True) -> dict:
    async def probe():
        status, body = await get(w, f"/v1/orgs/{org_id}")
        return body if status == 200 and predicate(body) else None
    return await wait_for(probe)


async def post_command(w: Worker, payload, tok: str | None = None):
    body = {"id": str(uuid.uuid4()), "type": payload.TYPE, "data": payload.model_dump(mode="json", exclude_none=True)}
    return await http("POST", w.url + "/v1/commands", json=body, token=tok or command_token(body))


def establish(org_id: str, kind: OrgKind, area_id: str, parent_id: str | None = None) -> EstablishOrg:
    return EstablishOrg(org_id=org_id, kind=kind, parent_id=parent_id, area_id=area_id, name=f"{org_id} 党组织")


async def test_a_tree_over_kafka_and_http_a_transfer_and_a_bad_parent(worker, module_kafka):
    street, community, branch, group = uid("o-s"), uid("o-c"), uid("o-g"), uid("o-b")
    # records of different organisations are not ordered with each other: a child is sent once
    # its parent is there (before, it is refused unknown_parent)
    await send(module_kafka, PARTY.intake.name, command(establish(street, K.STREET_WORKING_COMMITTEE, STREET)))
    await org_when(worker, street)
    await send(module_kafka, PARTY.intake.name, command(establish(community, K.COMMUNITY_COMMITTEE, COMMUNITY, street)))
    await org_when(worker, community)
    status, body = await post_command(worker, establish(branch, K.GRID_BRANCH, GRID, community))
    assert status == 200 and [e["type"] for e in body["events"]] == ["party.org.established.v1"], body
    status, body = await post_command(worker, establish(group, K.BUILDING_GROUP, f"{GRID}:7号楼", branch))
    assert status == 200, body

    # a bad parent: over HTTP a 409 naming the rule, over Kafka a rejection
    status, body = await post_command(worker, establish(uid("o-x"), K.GRID_BRANCH, "110105001002004", street))
    assert (status, body["error"], body["field"]) == (409, "parent_kind_mismatch", "parent_id"), body
    bad = command(establish(uid("o-y"), K.BUILDING_GROUP, f"{GRID}:1号楼", community))
    await send(module_kafka, PARTY.intake.name, bad)
    refused = of_type(await read_all(module_kafka, PARTY.rejections.name, min_count=1,
                                     predicate=lambda r: isinstance(r["value"], dict)
                                     and r["value"]["data"].get("command_id") == bad.id),
                      "party.command.rejected.v1")
    assert [r["data"]["reason"] for r in refused if r["data"]["command_id"] == bad.id] == ["parent_kind_mismatch"]

    # a member attached to the building group, marked 党员中心户, then transferred to the community committee
    member = uid("pm")
    status, body = await post_command(worker, AttachMember(org_id=group, member_id=member))
    assert status == 200 and body["events"][0]["data"]["grid_id"] == GRID, body
    status, body = await post_command(worker, MarkCentralHousehold(org_id=group, member_id=member))
    assert status == 200 and body["events"], body
    status, body = await post_command(worker, AttachMember(org_id=group, member_id=member))
    assert (status, body["error"]) == (409, "already_member"), body
    await send(module_kafka, PARTY.intake.name,
               command(AttachMember(org_id=community, member_id=member, grid_id=GRID, reason="搬迁")))
    moved = await org_when(worker, community, lambda o: o["members"])
    assert [(m["member_id"], m["from_org_id"], m["grid_id"], m["central_household"]) for m in moved["members"]] == [
        (member, group, GRID, False)]
    assert moved["history"][-1]["type"] == "party.member.attached.v1"
    left = await org_when(worker, group)
    assert left["members"] == [] and left["member_count"] == 0
    assert [h["type"] for h in left["history"]] == [
        "party.org.established.v1", "party.member.attached.v1", "party.household.marked.v1",
        "party.member.detached.v1"]
    assert left["history"][-1]["data"]["to_org_id"] == community

    tree = await org_when(worker, community, lambda o: len(o["children"]) == 1)
    assert [c["org_id"] for c in tree["children"]] == [branch]
    status, page = await get(worker, f"/v1/orgs?area_id={COMMUNITY}&kind=grid_branch")
    assert status == 200 and [o["org_id"] for o in page["items"]] == [branch]

    # a secretary of another street sees none of it, and cannot attach anyone to it
    outsider = token(sub="sec-2", roles=["party_secretary"], scope={"streets": ["110105002"]})
    assert (await get(worker, f"/v1/orgs/{community}", outsider))[0] == 404
    status, page = await get(worker, "/v1/orgs", outsider)
    assert status == 200 and page["total"] == 0
    status, body = await post_command(worker, AttachMember(org_id=community, member_id=uid("pm")), outsider)
    assert (status, body["error"]) == (409, "unknown_org"), body


async def test_a_grid_with_three_members_and_no_branch_is_reported_once(worker, module_kafka):
    street, community = uid("o-s"), uid("o-c")
    for payload in (establish(street, K.STREET_WORKING_COMMITTEE, STREET),
                    establish(community, K.COMMUNITY_COMMITTEE, "110105001007", street)):
        status, body = await post_command(worker, payload)
        assert status == 200, body
    grid = "110105001007009"
    await send(module_kafka, PARTY.intake.name,
               *[command(AttachMember(org_id=community, member_id=uid("pm"), grid_id=grid)) for _ in range(3)])

    def gaps(records):
        return [r for r in of_type(records, "party.coverage.gap.v1") if r["data"]["grid_id"] == grid]

    found = await read_all(module_kafka, PARTY.events.name, min_count=1,
                           predicate=lambda r: isinstance(r["value"], dict) and r["value"]["type"] ==
                           "party.coverage.gap.v1" and r["value"]["data"]["grid_id"] == grid)
    assert [g["data"]["members"] for g in gaps(found)] == [3]
    await asyncio.sleep(1.5)  # several more rounds of the timer
    assert len(gaps(await read_all(module_kafka, PARTY.events.name))) == 1

    status, cov = await get(worker, f"/v1/coverage?street_id={STREET}")
    assert status == 200, cov
    row = next(g for g in cov["grids"] if g["grid_id"] == grid)
    assert (row["members"], row["branch_id"], row["gap"], cov["gaps"]) == (3, None, True, 1)
    assert row["gap_reported_at"] is not None

    # a branch closes the gap, and nothing is reported again
    branch = uid("o-g")
    status, body = await post_command(worker, establish(branch, K.GRID_BRANCH, grid, community))
    assert status == 200, body
    status, cov = await get(worker, f"/v1/coverage?street_id={STREET}")
    row = next(g for g in cov["grids"] if g["grid_id"] == grid)
    assert (row["branch_id"], row["gap"], cov["covered"], cov["rate"]) == (branch, False, 1, 1.0)


async def test_an_erased_member_becomes_the_pseudonym_in_the_org_and_its_history_loses_their_words(worker):
    street, community = uid("o-s"), uid("o-c")
    for payload in (establish(street, K.STREET_WORKING_COMMITTEE, STREET),
                    establish(community, K.COMMUNITY_COMMITTEE, "110105001008", street)):
        status, body = await post_command(worker, payload)
        assert status == 200, body
    member, other = uid("pm"), uid("pm")
    for m in (member, other):
        status, body = await post_command(worker, AttachMember(org_id=community, member_id=m, reason=f"{m} 的转入说明"))
        assert status == 200, body
    status, body = await post_command(worker, ErasePerson(person_id=member, reason="个人信息删除申请"))
    assert status == 200, body
    pseudonym = body["events"][0]["data"]["pseudonym"]

    org = await org_when(worker, community)
    assert sorted(m["member_id"] for m in org["members"]) == sorted([pseudonym, other])
    attached = {h["data"]["member_id"]: h["data"] for h in org["history"] if h["type"] == "party.member.attached.v1"}
    assert set(attached) == {pseudonym, other}
    assert "reason" not in attached[pseudonym] and attached[other]["reason"] == f"{other} 的转入说明"
    assert member not in str(org)
    # the state keeps the member under the pseudonym: attaching them again is still `already_member`
    status, body = await post_command(worker, AttachMember(org_id=community, member_id=pseudonym))
    assert (status, body["error"]) == (409, "already_member"), body
