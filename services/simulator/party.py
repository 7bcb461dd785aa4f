"""The party secretaries' stories (党建): the org tree of the district, organisational life,
members' commitments, units' projects and the street councils' joint meetings.

Mixed into :class:`~.flows.Stories`; every command is sent by the secretary of the organisation
it concerns (``ps-<area>``, scoped to their street, community or grid), a unit's report (单位报到)
by the community office. A child organisation is sent only once its parent was established.
"""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta

from schemas.party import (
    AttachMember, ClaimProject, CompleteProject, CompleteResolution, CouncilSeat, EstablishOrg, FulfilCommitment,
    HoldMeeting, MakeCommitment, OrgKind, OrgLifeKind, PostProject, ProposeCouncil, RateCommitment, RateProject,
    RecordOrgLife, ReportUnit, ResolutionItem, SignAgreement,
)
from schemas.codes import street_id_of
from services.kit.clock import month_label

from .client import Outcome
# -- 党建 ---------------------------------------------------------------------
ESTABLISHED = "party.org.established.v1"
COUNCIL_EFFECTIVE = "party.council.effective.v1"
ORG_LIFE_MISSED = 0.1  # the share of an organisation's monthly 主题党日 that are not held (the timer notices)
PROJECT_TITLES = ["老旧小区加装电梯协调", "社区养老驿站共建", "背街小巷绿化美化", "青少年暑期托管", "便民服务日"]


def org_id(kind: str, area_id: str) -> str:
    """The id a console gives the Party organisation of an area (fixed: the setup is idempotent)."""
    return f"po-{kind}-{area_id.replace(':', '-')}"


class PartyStories:
    """The party secretaries' part (mixed into :class:`Stories`): the org tree at start, then the
    months' organisational life, commitments, units' projects and the councils' joint meetings."""


    def _established(self, out: Outcome) -> bool:
        return bool(out.of_type(ESTABLISHED)) or out.reason == "org_exists"

    async def party_setup(self, rng: random.Random | None = None) -> dict[str, int]:
        """The district's org tree (a street working committee per street, a community committee per
        community, a grid branch per grid, two building groups per grid), each sent only once its
        parent was established; members attached to their community's grid branches; units report
        to their community; a regional council per street proposed (its 公示 runs on the calendar)."""

        rng = rng or self.rng_for(-1)
        done: Counter = Counter()

        async def establish(kind: OrgKind, area: str, parent: str | None, name: str, by: str) -> bool:
            out = await self.step(EstablishOrg(org_id=org_id(kind.value, area), kind=kind, parent_id=parent,
                                               area_id=area, name=name), self.cast.party_secretary(by))
            ok = self._established(out)
            done["orgs" if ok else "orgs_refused"] += 1
            return ok

        async def grid_tree(grid_id: str, parent: str) -> None:
            if not await establish(OrgKind.GRID_BRANCH, grid_id, parent, f"{grid_id[-3:]}网格党支部", grid_id):
                return
            branch = org_id("grid_branch", grid_id)
            await asyncio.gather(*(establish(OrgKind.BUILDING_GROUP, f"{grid_id}:{b}", branch, f"{b}号楼党小组",
                                             grid_id) for b in (1, 2)))

        async def community_tree(c) -> None:
            parent = org_id("street_working_committee", street_id_of(c.community_id))
            if not await establish(OrgKind.COMMUNITY_COMMITTEE, c.community_id, parent, f"{c.name}党委",
                                   c.community_id):
                return
            grids = [g for g in self.d.grids if g.community_id == c.community_id]
            await asyncio.gather(*(grid_tree(g.grid_id, org_id("community_committee", c.community_id))
                                   for g in grids))
            office = self.cast.community_officer(c.community_id)
            for i, m in enumerate(self.d.members_of(c.community_id)):
                g = grids[i % len(grids)].grid_id
                out = await self.step(AttachMember(org_id=org_id("grid_branch", g), member_id=m.member_id, grid_id=g),
                                      self.cast.party_secretary(g))
                done["attached" if not out.rejected else "attach_refused"] += 1
            for u in [u for u in self.d.units if u.community_id == c.community_id]:
                out = await self.step(ReportUnit(unit_id=u.unit_id, name=u.name, community_id=c.community_id,
                                                 resources=("活动场地", "志愿者")), office)
                done["units"] += 0 if out.rejected else 1
                if not out.rejected:  # 共建协议 with the community for the year
                    now = self.now()
                    await self.step(SignAgreement(agreement_id=f"ag-{u.unit_id}-{now.year}", unit_id=u.unit_id,
                                                  community_id=c.community_id, commitments=("共享活动场地",),
                                                  valid_from=now, valid_until=now + timedelta(days=365)),
                                    self.cast.party_secretary(c.community_id))

        async def street_tree(s) -> None:
            if not await establish(OrgKind.STREET_WORKING_COMMITTEE, s.street_id, None, f"{s.name}党工委",
                                   s.street_id):
                return
            await asyncio.gather(*(community_tree(c) for c in self.d.communities if street_id_of(c.community_id) == s.street_id))
            members = [m for c in self.d.communities if street_id_of(c.community_id) == s.street_id
                       for m in self.d.members_of(c.community_id)][:8]
            seats = [CouncilSeat(person_id=f"ps-{s.street_id}", role="secretary")] + [
                CouncilSeat(person_id=m.member_id, unit_id=m.unit_id, part_time=True,
                            role="deputy" if i == 0 else "member") for i, m in enumerate(members)]
            sec = self.cast.party_secretary(s.street_id)
            out = await self.step(ProposeCouncil(council_id=council_id(s.street_id), level="street",
                                                 area_id=s.street_id, seats=tuple(seats), proposed_by=sec.sub), sec)
            done["councils" if not out.rejected else "council_refused"] += 1
            if out.of_type(COUNCIL_EFFECTIVE) or out.reason == "council_exists":
                self.effective.add(council_id(s.street_id))
            elif not out.rejected:  # its 公示 passes on the calendar: the worker's timer makes it effective
                self.spawn(self._await_effective(council_id(s.street_id)))

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

    async def party_month(self, rng: random.Random) -> None:
        """A month of Party life: 主题党日 in every grid branch (some missed), a member's commitment
        made, fulfilled and rated, a project per community posted, claimed by a reported unit,
        completed and rated; in a quarter's last month each street council's joint meeting, whose
        resolutions the owning units then complete."""

        now = self.now()
        label = month_label(now)
        for g in self.d.grids:
            members = [m for i, m in enumerate(self.d.members_of(g.community_id))
                       if [x.grid_id for x in self.d.grids if x.community_id == g.community_id][
                           i % sum(1 for x in self.d.grids if x.community_id == g.community_id)] == g.grid_id]
            if not members or rng.random() < ORG_LIFE_MISSED:
                continue
            sec = self.cast.party_secretary(g.grid_id)
            absent = [m.member_id for m in members if rng.random() < 0.15]
            await self.step(RecordOrgLife(org_id=org_id("grid_branch", g.grid_id), meeting_id=f"ol-{g.grid_id}-{label}",
                                          kind=OrgLifeKind.THEME_DAY, held_at=now - timedelta(hours=1),
                                          attendees=tuple(m.member_id for m in members if m.member_id not in absent),
                                          absentees=tuple(absent), topic="主题党日：为民服务"), sec)
            m = rng.choice(members)
            cid = f"cm-{m.member_id}-{label}"
            out = await self.step(MakeCommitment(member_id=m.member_id, commitment_id=cid, year=now.year,
                                                 text="每月参加一次社区志愿服务"), sec)
            if not out.rejected and rng.random() < 0.8:
                out = await self.step(FulfilCommitment(member_id=m.member_id, commitment_id=cid, note="已兑现"), sec)
                if not out.rejected:
                    await self.step(RateCommitment(member_id=m.member_id, commitment_id=cid,
                                                   rating=rng.choice([3, 4, 5])), sec)
        for c in self.d.communities:
            units = [u for u in self.d.units if u.community_id == c.community_id]
            if not units:
                continue
            sec = self.cast.party_secretary(c.community_id)
            pid = f"pj-{c.community_id}-{label}"
            out = await self.step(PostProject(project_id=pid, community_id=c.community_id,
                                              title=rng.choice(PROJECT_TITLES), need="居民需求"), sec)
            if out.rejected:
                continue
            unit = rng.choice(units)
            out = await self.step(ClaimProject(project_id=pid, unit_id=unit.unit_id), sec)
            if out.rejected or rng.random() < 0.2:  # some projects stay open for a while
                continue
            out = await self.step(CompleteProject(project_id=pid, unit_id=unit.unit_id, result="项目完成"), sec)
            if not out.rejected:
                await self.step(RateProject(project_id=pid, rating=rng.choice([3, 4, 5]), comment="居民满意"), sec)
        if now.month % 3 == 0:
            await asyncio.gather(*(self.joint_meeting(s.street_id, rng) for s in self.d.streets))

    async def joint_meeting(self, street_id: str, rng: random.Random) -> None:
        """The street council's joint meeting (联席会议) of the quarter, once its 公示 has passed."""

        cid = council_id(street_id)
        if cid not in self.effective:
            return  # still in its 公示 (or never proposed): no meeting yet
        now = self.now()
        members = [f"ps-{street_id}"] + [m.member_id for c in self.d.communities if street_id_of(c.community_id) == street_id
                                         for m in self.d.members_of(c.community_id)][:8]
        absent = [p for p in members[1:] if rng.random() < 0.1]
        label = month_label(now)
        units = [u for u in self.d.units if u.street_id == street_id]
        items = tuple(ResolutionItem(resolution_id=f"rs-{street_id}-{label}-{i}", title=t,
                                     owner_unit_id=rng.choice(units).unit_id, due_at=now + timedelta(days=30))
                      for i, t in enumerate(["共建资源清单更新", "联合开展志愿服务"]))
        sec = self.cast.party_secretary(street_id)
        out = await self.step(HoldMeeting(council_id=cid, meeting_id=f"mt-{street_id}-{label}",
                                          held_at=now - timedelta(hours=2),
                                          attendees=tuple(p for p in members if p not in absent),
                                          absentees=tuple(absent), resolutions=items, recorded_by=sec.sub), sec)
        if out.rejected or out.timed_out:
            return
        for r in items:
            if rng.random() < 0.85:
                await self.step(CompleteResolution(council_id=cid, resolution_id=r.resolution_id, note="已落实"), sec)


def council_id(street_id: str) -> str:
    return f"council-{street_id}"
