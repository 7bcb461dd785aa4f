"""The party secretaries' stories (党建): the org tree of the district, organisational life,
members' commitments and moves, units' projects and the councils' joint meetings.

Mixed into :class:`~.flows.Stories`. Every command is sent by whoever the rules say acts:

- the secretary of the organisation it concerns (``ps-<area>``, scoped to their street,
  community or grid) establishes the organisations, attaches members, marks 党员中心户, records
  organisational life and members' commitments, and proposes and convenes the councils;
- a unit's own Party secretary (``ps-<unit id>``, scoped to the community where the unit sits)
  claims and completes the community's projects for the unit (双向认领) — not the community;
- the community office takes a unit's report (单位报到) and records a member's move (搬迁).

An organisation is used only once its ``party.org.established.v1`` came back (a child is
established once its parent was, organisational life is recorded for established ones only),
and a council meets only once it has taken effect (``party.council.effective.v1``: a first
council has no composition in force during its 公示).
"""
from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from schemas.codes import street_id_of
from schemas.orders import MoveMember
from schemas.party import (
    AttachMember, ClaimProject, CompleteProject, CompleteResolution, CouncilSeat, EstablishOrg, FulfilCommitment,
    HoldMeeting, MakeCommitment, MarkCentralHousehold, OrgKind, OrgLifeKind, PostProject, ProposeCouncil,
    RateCommitment, RateProject, RecordOrgLife, ReportUnit, ResolutionItem, SignAgreement,
)
from services.kit.clock import SHANGHAI, add_months, month_label, month_start
from services.party.domain.life import OrgLifePolicy

from .client import Outcome
from .identities import Actor

ESTABLISHED = "party.org.established.v1"
COUNCIL_EFFECTIVE = "party.council.effective.v1"
ORG_LIFE_MISSED = 0.1  # the share of the meetings an organisation must hold that are not held (the timer notices)
FULFIL_A_MONTH = 0.2  # the share of open yearly commitments fulfilled in a month (践诺)
PROJECT_TITLES = ["老旧小区加装电梯协调", "社区养老驿站共建", "背街小巷绿化美化", "青少年暑期托管", "便民服务日"]
COMMUNITY_COUNCIL_MIN = 7  # a 大党委 has 7-11 members
ORG_LIFE_TABLE = Path(__file__).resolve().parents[1] / "party" / "policy" / "org_life.yaml"


def org_id(kind: str, area_id: str) -> str:
    """The id a console gives the Party organisation of an area (fixed: the setup is idempotent)."""
    return f"po-{kind}-{area_id.replace(':', '-')}"


def council_id(area_id: str) -> str:
    return f"council-{area_id}"


def life_policy() -> OrgLifePolicy:
    """The frequency table the party service holds organisations to (``PARTY_ORG_LIFE_PATH``)."""
    path = os.environ.get("PARTY_ORG_LIFE_PATH") or ORG_LIFE_TABLE
    return OrgLifePolicy.from_mapping(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def quarter_of(dt: datetime) -> str:
    local = dt.astimezone(SHANGHAI)
    return f"{local.year}-Q{(local.month - 1) // 3 + 1}"


def unit_secretary(unit) -> Actor:
    """A resident unit's Party secretary, acting for the unit in the community where it sits."""
    return Actor(f"ps-{unit.unit_id}", ("party_secretary",), communities=(unit.community_id,))


class PartyStories:
    """The party secretaries' part (mixed into :class:`Stories`): the org tree at start, then the
    months' organisational life, commitments, moves, units' projects and the councils' joint meetings."""

    # what the consoles know (set up by :meth:`_party_init`)
    party_orgs: dict[str, tuple[OrgKind, str]]  # established org id -> (kind, the area its secretary acts for)
    council_seats: dict[str, list[str]]  # council id -> its members (the secretary first)
    reported_units: set[str]
    quarterly_held: set[tuple[str, str, str]]  # (org, kind, quarter) held
    commitments: dict[str, tuple[str, bool]]  # member -> (this year's commitment id, fulfilled)
    homes: dict[str, tuple[str, str]]  # member -> (community, grid) after a move
    life: OrgLifePolicy

    def _party_init(self) -> None:
        if not hasattr(self, "party_orgs"):
            self.party_orgs, self.council_seats, self.reported_units = {}, {}, set()
            self.quarterly_held, self.commitments, self.homes = set(), {}, {}
            self.life = life_policy()

    # -- where members live ----------------------------------------------------------------

    def home_of(self, m) -> tuple[str, str]:
        """A member's community and grid (their community's grids in turn, or where they moved)."""
        if m.member_id in self.homes:
            return self.homes[m.member_id]
        grids = [g.grid_id for g in self.d.grids if g.community_id == m.community_id]
        i = [x.member_id for x in self.d.members_of(m.community_id)].index(m.member_id)
        return m.community_id, grids[i % len(grids)]

    def members_in(self, *, grid_id: str | None = None, community_id: str | None = None) -> list:
        return [m for m in self.d.members if (grid_id is None or self.home_of(m)[1] == grid_id)
                and (community_id is None or self.home_of(m)[0] == community_id)]

    def _established(self, out: Outcome) -> bool:
        return bool(out.of_type(ESTABLISHED)) or out.reason in ("org_exists", "no_change")

    # -- the tree, at start --------------------------------------------------------------

    async def party_setup(self, rng: random.Random | None = None) -> dict[str, int]:
        """The district's org tree (a street working committee per street, a community committee per
        community, a grid branch per grid with a building group, a Party organisation per resident
        unit), each sent only once its parent was established; in each grid one member is attached
        to the building group and their household marked 党员中心户, the others to the grid branch;
        units report to their community with their organisation and sign a 共建协议; a regional
        council per street (大工委) and per community (大党委) proposed (their 公示 runs on the calendar)."""
        self._party_init()
        done: Counter = Counter()

        async def establish(kind: OrgKind, area: str, parent: str | None, name: str, by: str) -> bool:
            oid = org_id(kind.value, area)
            out = await self.step(EstablishOrg(org_id=oid, kind=kind, parent_id=parent, area_id=area, name=name),
                                  self.cast.party_secretary(by))
            ok = self._established(out)
            done["orgs" if ok else "orgs_refused"] += 1
            if ok:
                self.party_orgs[oid] = (kind, by)
            return ok

        async def grid_tree(grid_id: str, parent: str) -> None:
            if not await establish(OrgKind.GRID_BRANCH, grid_id, parent, f"{grid_id[-3:]}网格党支部", grid_id):
                return
            branch, group = org_id("grid_branch", grid_id), org_id("building_group", f"{grid_id}:1")
            has_group = await establish(OrgKind.BUILDING_GROUP, f"{grid_id}:1", branch, "1号楼党小组", grid_id)
            sec = self.cast.party_secretary(grid_id)
            for i, m in enumerate(self.members_in(grid_id=grid_id)):
                into = group if i == 0 and has_group else branch
                out = await self.step(AttachMember(org_id=into, member_id=m.member_id, grid_id=grid_id), sec)
                attached = not out.rejected or out.reason in ("already_member", "no_change")
                done["attached" if attached else "attach_refused"] += 1
                if into == group and attached:
                    out = await self.step(MarkCentralHousehold(org_id=group, member_id=m.member_id), sec)
                    done["households" if not out.rejected or out.unchanged else "household_refused"] += 1

        async def community_tree(c) -> None:
            parent = org_id("street_working_committee", street_id_of(c.community_id))
            if not await establish(OrgKind.COMMUNITY_COMMITTEE, c.community_id, parent, f"{c.name}党委",
                                   c.community_id):
                return
            committee = org_id("community_committee", c.community_id)
            await asyncio.gather(*(grid_tree(g.grid_id, committee) for g in self.d.grids
                                   if g.community_id == c.community_id))
            office = self.cast.community_officer(c.community_id)
            for u in [u for u in self.d.units if u.community_id == c.community_id]:
                unit_org = org_id("unit_org", u.unit_id)
                has_org = await establish(OrgKind.UNIT_ORG, u.unit_id, committee, f"{u.name}党组织", c.community_id)
                out = await self.step(ReportUnit(unit_id=u.unit_id, name=u.name, community_id=c.community_id,
                                                 org_id=unit_org if has_org else None,
                                                 resources=("活动场地", "志愿者")), office)
                if out.rejected:
                    continue
                done["units"] += 1
                self.reported_units.add(u.unit_id)
                now = self.now()  # 共建协议 with the community for the year
                await self.step(SignAgreement(agreement_id=f"ag-{u.unit_id}-{now.year}", unit_id=u.unit_id,
                                              community_id=c.community_id, commitments=("共享活动场地",),
                                              valid_from=now, valid_until=now + timedelta(days=365)),
                                self.cast.party_secretary(c.community_id))
            members = self.d.members_of(c.community_id)[:10]
            if len(members) + 1 >= COMMUNITY_COUNCIL_MIN:  # 大党委: 7-11, part-time members from units
                await propose(c.community_id, "community", members)

        async def propose(area: str, level: str, members: list) -> None:
            cid = council_id(area)
            seats = [CouncilSeat(person_id=f"ps-{area}", role="secretary")] + [
                CouncilSeat(person_id=m.member_id, unit_id=m.unit_id, part_time=True,
                            role="deputy" if i == 0 else "member") for i, m in enumerate(members)]
            sec = self.cast.party_secretary(area)
            out = await self.step(ProposeCouncil(council_id=cid, level=level, area_id=area, seats=tuple(seats),
                                                 proposed_by=sec.sub), sec)
            proposed = not out.rejected or out.reason in ("council_exists", "no_change")
            done["councils" if proposed else "council_refused"] += 1
            if proposed:
                self.council_seats[cid] = [s.person_id for s in seats]
            if out.of_type(COUNCIL_EFFECTIVE) or out.reason == "council_exists":
                self.effective.add(cid)
            elif proposed:  # its 公示 passes on the calendar: the worker's timer makes it effective
                self.spawn(self._await_effective(cid))

        async def street_tree(s) -> None:
            if not await establish(OrgKind.STREET_WORKING_COMMITTEE, s.street_id, None, f"{s.name}党工委",
                                   s.street_id):
                return
            communities = [c for c in self.d.communities if street_id_of(c.community_id) == s.street_id]
            await asyncio.gather(*(community_tree(c) for c in communities))
            await propose(s.street_id, "street", [m for c in communities for m in self.d.members_of(c.community_id)][:8])

        await asyncio.gather(*(street_tree(s) for s in self.d.streets))
        return dict(done)

    async def _await_effective(self, cid: str) -> None:
        fut = self.client.expect(lambda e: e.type == COUNCIL_EFFECTIVE and e.data.get("council_id") == cid)
        with self.waiting():
            got = await self.client.wait_for(fut, timeout=4 * self.late_wait)
        if not fut.done():
            fut.cancel()
        if got is not None:
            self.effective.add(cid)

    def _is_effective(self, cid: str) -> bool:
        if cid not in self.effective and self.client.seen(cid, COUNCIL_EFFECTIVE) is not None:
            self.effective.add(cid)
        return cid in self.effective

    # -- a month of Party life -------------------------------------------------------------

    async def party_month(self, rng: random.Random) -> None:
        """A month of Party life: each established organisation holds what the frequency table
        asks of it (三会一课, 主题党日; a quarterly one once in the quarter), some missed; members
        make their yearly commitment and fulfil some (践诺, rated); one member a quarter moves to
        another community of their street; a project per community posted, claimed and completed
        by a reported unit's own secretary, and rated; in a quarter's last month each council's
        joint meeting, whose resolutions the owning units then complete."""
        self._party_init()
        now = self.now()
        local = now.astimezone(SHANGHAI)  # months, quarters and years are Shanghai's, as the services count them
        label = month_label(now)
        month_end = add_months(month_start(now), 1) - timedelta(seconds=1)
        # each organisation, member, community and council in parallel (the pace bounds the rate)
        meetings = [s.street_id for s in self.d.streets] + [c.community_id for c in self.d.communities] \
            if local.month % 3 == 0 else []
        await asyncio.gather(
            *(self._org_life(oid, kind, area, label, quarter_of(now), month_end, rng)
              for oid, (kind, area) in sorted(self.party_orgs.items())),
            *(self._project(c.community_id, label, rng) for c in self.d.communities),
            *(self.joint_meeting(a, rng) for a in meetings),
            # a commitment is for the year; in December members commit for the next one
            *(self._commitment(m, local.year + (local.month == 12), rng) for m in self.d.members))
        if local.month % 3 == 2:
            await self.member_moves(rng)

    def _attendance(self, kind: OrgKind, area: str, oid: str) -> list[str]:
        if kind is OrgKind.GRID_BRANCH:
            people = [m.member_id for m in self.members_in(grid_id=area)]
        elif kind is OrgKind.BUILDING_GROUP:
            people = [m.member_id for m in self.members_in(grid_id=area)][:1]
        elif kind is OrgKind.UNIT_ORG:
            unit = oid.removeprefix("po-unit_org-")
            people = [m.member_id for m in self.d.members if m.unit_id == unit]
        elif kind is OrgKind.COMMUNITY_COMMITTEE:
            people = [m.member_id for m in self.members_in(community_id=area)][:4]
        else:
            people = []
        return [f"ps-{area}"] + people

    async def _org_life(self, oid: str, kind: OrgKind, area: str, label: str, quarter: str, month_end: datetime,
                        rng: random.Random) -> None:
        sec = self.cast.party_secretary(area)
        for life in self.life.kinds_for(kind):
            quarterly = self.life.frequencies[life].every == "quarter"
            if quarterly and (oid, life.value, quarter) in self.quarterly_held:
                continue
            if rng.random() < ORG_LIFE_MISSED:
                continue  # missed this time (a quarterly one may still be held later in the quarter)
            people = self._attendance(kind, area, oid)
            absent = [p for p in people[1:] if rng.random() < 0.15]
            out = await self.step(RecordOrgLife(
                org_id=oid, meeting_id=f"ol-{oid}-{life.value}-{label}", kind=life,
                held_at=min(self.now(), month_end), attendees=tuple(p for p in people if p not in absent),
                absentees=tuple(absent), topic=TOPICS[life]), sec)
            if quarterly and (not out.rejected or out.reason in ("meeting_exists", "no_change")):
                self.quarterly_held.add((oid, life.value, quarter))

    def _member_secretary(self, m) -> Actor:
        return self.cast.party_secretary(self.home_of(m)[1])

    async def _commitment(self, m, year: int, rng: random.Random) -> None:
        """承诺、践诺、评诺: a member's commitment of the year, made once; an open one sometimes
        fulfilled and rated."""
        cid, fulfilled = self.commitments.get(m.member_id, ("", False))
        sec = self._member_secretary(m)
        if cid and not fulfilled and rng.random() < FULFIL_A_MONTH:
            out = await self.step(FulfilCommitment(member_id=m.member_id, commitment_id=cid, note="已兑现"), sec)
            if not out.rejected:
                self.commitments[m.member_id] = (cid, True)
                await self.step(RateCommitment(member_id=m.member_id, commitment_id=cid,
                                               rating=rng.choice([3, 4, 5])), sec)
        if not cid.endswith(f"-{year}"):
            cid = f"cm-{m.member_id}-{year}"
            out = await self.step(MakeCommitment(member_id=m.member_id, commitment_id=cid, year=year,
                                                 text="每月参加一次社区志愿服务"), sec)
            if not out.rejected or out.reason in ("commitment_exists", "no_change"):
                self.commitments[m.member_id] = (cid, False)

    async def member_moves(self, rng: random.Random) -> None:
        """One member moves to another community of their street: the new community's office records
        the move in orders (a fresh reporting deadline), and the new grid's secretary transfers
        their 组织关系 to its branch."""
        movers = [m for m in self.d.members if m.member_id not in self.homes]
        if not movers:
            return
        m = rng.choice(movers)
        here, _ = self.home_of(m)
        others = [c.community_id for c in self.d.communities
                  if street_id_of(c.community_id) == street_id_of(here) and c.community_id != here]
        if not others:
            return
        there = rng.choice(others)
        grid = rng.choice([g.grid_id for g in self.d.grids if g.community_id == there])
        out = await self.step(MoveMember(member_id=m.member_id, community_id=there), self.cast.community_officer(there))
        if out.rejected or out.timed_out:
            return
        self.homes[m.member_id] = (there, grid)
        if org_id("grid_branch", grid) in self.party_orgs:
            await self.step(AttachMember(org_id=org_id("grid_branch", grid), member_id=m.member_id, grid_id=grid,
                                         reason="居住地变更，组织关系转接"), self.cast.party_secretary(grid))

    async def _project(self, community_id: str, label: str, rng: random.Random) -> None:
        """项目清单: the community posts a project; a reported unit's own secretary claims it (双向认领)
        and reports it completed; the community rates it."""
        units = [u for u in self.d.units if u.community_id == community_id and u.unit_id in self.reported_units]
        if not units:
            return
        sec = self.cast.party_secretary(community_id)
        pid = f"pj-{community_id}-{label}"
        out = await self.step(PostProject(project_id=pid, community_id=community_id,
                                          title=rng.choice(PROJECT_TITLES), need="居民需求"), sec)
        if out.rejected:
            return
        unit = rng.choice(units)
        out = await self.step(ClaimProject(project_id=pid, unit_id=unit.unit_id), unit_secretary(unit))
        if out.rejected or rng.random() < 0.2:  # some projects stay open for a while
            return
        out = await self.step(CompleteProject(project_id=pid, unit_id=unit.unit_id, result="项目完成"),
                              unit_secretary(unit))
        if not out.rejected:
            await self.step(RateProject(project_id=pid, rating=rng.choice([3, 4, 5]), comment="居民满意"), sec)

    async def joint_meeting(self, area_id: str, rng: random.Random) -> None:
        """A council's joint meeting (联席会议) of the quarter, once it has taken effect (a first
        council has no composition in force during its 公示)."""
        self._party_init()
        cid = council_id(area_id)
        if cid not in self.council_seats or not self._is_effective(cid):
            return
        members = self.council_seats[cid]
        absent = [p for p in members[1:] if rng.random() < 0.1]
        now = self.now()
        label = month_label(now)
        units = [u for u in self.d.units if u.community_id == area_id] or \
            [u for u in self.d.units if u.street_id == street_id_of(area_id)]
        items = tuple(ResolutionItem(resolution_id=f"rs-{area_id}-{label}-{i}", title=t,
                                     owner_unit_id=rng.choice(units).unit_id, due_at=now + timedelta(days=30))
                      for i, t in enumerate(["共建资源清单更新", "联合开展志愿服务"])) if units else ()
        sec = self.cast.party_secretary(area_id)
        out = await self.step(HoldMeeting(council_id=cid, meeting_id=f"mt-{area_id}-{label}", held_at=now,
                                          attendees=tuple(p for p in members if p not in absent),
                                          absentees=tuple(absent), resolutions=items, recorded_by=sec.sub), sec)
        if out.rejected or out.timed_out:
            return
        for r in items:
            if rng.random() < 0.85:
                await self.step(CompleteResolution(council_id=cid, resolution_id=r.resolution_id, note="已落实"), sec)


TOPICS: dict[OrgLifeKind, str] = {
    OrgLifeKind.BRANCH_MEETING: "支部党员大会：学习传达上级精神",
    OrgLifeKind.COMMITTEE_MEETING: "委员会会议：研究本月工作",
    OrgLifeKind.GROUP_MEETING: "党小组会：楼栋议事",
    OrgLifeKind.PARTY_LECTURE: "党课：党建引领基层治理",
    OrgLifeKind.THEME_DAY: "主题党日：为民服务",
}
