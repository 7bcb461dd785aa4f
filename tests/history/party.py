"""The party service's part of a generated history, made by the party worker's own handler.

The party projection is not written row by row: every command and every event the worker would
have handled goes through :class:`~services.party.app.handler.PartyHandler` on the kit's path
(the inbox, :func:`~services.kit.handlers.dispatch` with the sender's policy, one transaction per
batch, the unit of work's flush), at the time it would have been handled (``uow.now``), and the
timers run as the worker's timers run them. What the handler emits becomes the party's events
topic (the outbox is not written: nothing of the past is left to publish) and enters the
assessment's event log with the other services' events, where the organisation pillar is
scored from it. A refusal or a fault stops the generator: what it sends is what a console
would send.

Over the years of the history, for the district's streets, communities and grids:

- **the tree** (党组织): at the start a street working committee (街道党工委) in every street, a
  community committee (社区党委) in every community, a grid branch (网格党支部) in most grids and
  two building groups (楼栋党小组) under each branch; the other grids get their branch within the
  first two years, and until then their members are attached to the community committee (so
  the coverage timer reports them as gaps once they count three);
- **members** (组织关系): each Party member the orders service registers (双报到) is attached,
  days later, to the branch or a building group of a grid of their community; about one in
  twelve is transferred (转接) later to another grid of the community; the first member of each
  building group is its 党员中心户;
- **organisational life** (三会一课, 主题党日): each kind an organisation must hold, in each period
  (month or quarter, Asia/Shanghai), held with 92 % likelihood at a random moment of the
  period and recorded within two days by the secretary, the organisation's members present
  (a sixth absent); a period without one is reported overdue by the timer;
- **units** (单位报到): a member's unit reports, once, to the community where it sits, weeks after
  its first member registers (one in ten never does: the member timer reports its members),
  signs a co-building agreement (共建协议) a few weeks later and renews it every year;
- **councils** (大工委, 大党委): proposed a month in, a third or more of the seats part-time members
  from resident units, effective after the 5-day 公示; the street councils re-composed (换届) in
  the third year; a joint meeting in 90 % of the quarters, four in five seats present, adopting
  one to three resolutions, most completed by their owner units, some late or never;
- **projects** (项目清单): about one and a half a month in each community, most claimed by a
  reported unit, completed and rated;
- **commitments** (承诺、践诺、评诺): every member attached makes one each year, most fulfil it,
  and it is rated at the end of the year;
- the orders service's events the party consumes (members' registrations, completed and
  evaluated orders): handled as the worker handles them, for the members' follow-up and the
  quarterly feedback (双重管理).

The timers run once a day (00:30 in Shanghai; organisational life on the first of each month,
the quarterly feedback on the first days of each quarter): what the worker's timers find
within a minute or an hour, the history finds at most a day later.
"""
from __future__ import annotations

import heapq
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator
from zoneinfo import ZoneInfo

import asyncpg

from schemas.codes import community_id_of, street_id_of
from schemas.envelope import Message, envelope_for
from schemas.registry import model_for
from schemas.orders import MemberMoved, MemberRegistered, OrderCompleted, OrderEvaluated
from schemas.party import (
    AttachMember, ClaimProject, CompleteProject, CompleteResolution, CouncilLevel, CouncilSeat, EstablishOrg,
    FulfilCommitment, HoldMeeting, MakeCommitment, MarkCentralHousehold, OrgKind, PostProject,
    ProposeCouncil, RateCommitment, RateProject, RecordOrgLife, ReportUnit, ResolutionItem, SignAgreement,
)
from services.kit.consumer import claim
from services.kit.handlers import dispatch
from services.kit.identity import Principal, Scope
from services.kit.runtime import user_source
from services.kit.uow import UnitOfWork
from services.party.app.handler import PartyHandler
from services.party.app.settings import PartySettings
from tests.history.orders import _uuid
from tests.history.topics import Pub, Sender, Spill

SH = ZoneInfo("Asia/Shanghai")
SERVICE = "party"
HELD = 0.92  # a meeting of organisational life held in its period
BRANCHLESS = 8  # one grid in this many has no branch at first
CONSUMED = (MemberRegistered, MemberMoved, OrderCompleted, OrderEvaluated)
"""The orders service's events the party worker handles (its erasures consumer; no erasure is
in a history)."""
BATCH = 500  # consecutive orders events handled in one transaction, as a worker's batch
BACKDATED = timedelta(days=7)
"""How much earlier than it is handled an event may be published: the councils' timer events carry
the instant they fell due (a meeting overdue at its deadline), which the daily tick finds within a
day. The spill of the party's events holds this much back (and refuses an event older than that)."""


class Refused(RuntimeError):
    """The handler refused a command the generator sent, or failed on one: the generator's bug."""


@dataclass
class _Council:
    council_id: str
    level: CouncilLevel
    area_id: str
    sender: Principal
    compositions: list[tuple[datetime, tuple[CouncilSeat, ...]]]  # (effective from, seats)


class PartyWorld:
    """The party's history, planned in time order and handled by the party worker's handler."""

    def __init__(self, plan: Any, rng: random.Random, seq, grids: Iterable[str]):
        self.plan, self.rng, self.seq = plan, rng, seq
        self.handler = PartyHandler(PartySettings())
        by_community: dict[str, list[str]] = defaultdict(list)
        for g in sorted(grids):
            by_community[community_id_of(g)].append(g)
        self.grids = dict(by_community)
        self.communities = sorted(self.grids)
        self.streets = sorted({street_id_of(c) for c in self.communities})
        self.pubs = Spill()  # on disk, in time order
        self.intake = Spill()  # the commands, as their senders sent them on the intake topic
        self.handled = 0  # messages
        self._queue: list[tuple[datetime, int, str, Any]] = []
        self._n = 0
        self._orders_pubs: Iterable[Pub] = ()  # the orders events, read again as they are handled
        self._first_event = 0  # the schedule's number of the first of them
        self._planned_events = 0  # how many of them are handled
        self._senders: dict[str, Principal] = {}
        self._branch_at: dict[str, datetime] = {}  # grid -> when its branch is established
        self._groups: dict[str, list[str]] = {}  # grid -> its building groups
        self._reported: dict[str, dict[str, datetime]] = defaultdict(dict)  # community -> unit -> when
        self._units: dict[str, str] = {}  # unit -> the community where it sits

    # -- who sends ---------------------------------------------------------------------------

    def sender(self, area: str) -> Principal:
        """The secretary of a street or a community (its officer too), whose scope is the area."""
        found = self._senders.get(area)
        if found is None:
            street = len(area) == len(self.streets[0])
            scope = Scope.of(streets=[area]) if street else Scope.of(communities=[area])
            found = self._senders[area] = Principal(
                sub=f"party-secretary-{area}",
                roles=frozenset({"party_secretary", "street_officer" if street else "community_officer"}),
                scope=scope)
        return found

    # -- the schedule ------------------------------------------------------------------------

    def _at(self, at: datetime, what: str, arg: Any) -> None:
        if self.plan.start <= at <= self.plan.end:
            self._n += 1
            heapq.heappush(self._queue, (at, self._n, what, arg))

    def _cmd(self, at: datetime, area: str, command: Any) -> None:
        self._at(at, "command", (self.sender(area), command))

    def _days(self, at: datetime, lo: float, hi: float) -> datetime:
        return at + timedelta(days=self.rng.uniform(lo, hi))

    def plan_all(self, orders_pubs: Iterable[Pub]) -> None:
        """Everything the history holds, from the orders service's events (the members) on."""
        self._plan_tree()
        self._plan_councils()
        self._plan_projects()
        members = self._plan_orders_events(orders_pubs)
        self._plan_members(members)
        self._plan_life()
        self._plan_ticks()

    def _plan_tree(self) -> None:
        start = self.plan.start
        t = start + timedelta(minutes=5)
        for street in self.streets:
            self._cmd(t, street, EstablishOrg(org_id=f"org-sw-{street}", kind=OrgKind.STREET_WORKING_COMMITTEE,
                                              area_id=street, name=f"{street}街道党工委",
                                              secretary_id=f"sec-{street}"))
        t += timedelta(hours=1)
        for c in self.communities:
            self._cmd(t, c, EstablishOrg(org_id=f"org-cc-{c}", kind=OrgKind.COMMUNITY_COMMITTEE,
                                         parent_id=f"org-sw-{street_id_of(c)}", area_id=c, name=f"{c}社区党委",
                                         secretary_id=f"sec-{c}"))
        t += timedelta(hours=1)
        for c, grids in self.grids.items():
            for i, g in enumerate(grids):
                late = (i + 3) % BRANCHLESS == 0
                at = self._days(start, 120, 700) if late else t
                self._branch_at[g] = at
                self._cmd(at, c, EstablishOrg(org_id=f"org-gb-{g}", kind=OrgKind.GRID_BRANCH,
                                              parent_id=f"org-cc-{c}", area_id=g, name=f"{g}网格党支部",
                                              secretary_id=f"sec-{g}"))
                groups = self._groups[g] = [f"org-bg-{g}-{b}" for b in (1, 2)]
                for b, group in enumerate(groups, 1):
                    self._cmd(at + timedelta(minutes=10), c, EstablishOrg(
                        org_id=group, kind=OrgKind.BUILDING_GROUP, parent_id=f"org-gb-{g}", area_id=f"{g}:{b}号楼",
                        name=f"{g}网格{b}号楼党小组"))

    def _org_of(self, grid: str, at: datetime) -> str:
        """The organisation a member living in ``grid`` joins at ``at``."""
        if self._branch_at[grid] > at:
            return f"org-cc-{community_id_of(grid)}"
        if self.rng.random() < 0.3:
            return self.rng.choice(self._groups[grid])
        return f"org-gb-{grid}"

    def _plan_orders_events(self, pubs: Iterable[Pub]) -> list[tuple[datetime, MemberRegistered]]:
        """The orders events the party handles, planned at their time (a second later: the worker
        reads them from the topic) but not held: :meth:`_consumed` reads them again from ``pubs``
        (in time order) as they fall due; the members' first registrations."""
        first: dict[str, tuple[datetime, MemberRegistered]] = {}
        self._orders_pubs, self._first_event = pubs, self._n + 1
        for p in pubs:
            if isinstance(p.payload, CONSUMED):
                self._n += 1  # its number in the schedule, as if it were queued now
                self._planned_events += self.plan.start <= p.at + timedelta(seconds=1) <= self.plan.end
                if isinstance(p.payload, MemberRegistered) and p.payload.member_id not in first:
                    first[p.payload.member_id] = (p.at, p.payload)
        return sorted(first.values(), key=lambda x: (x[0], x[1].member_id))

    def _consumed(self) -> Iterator[tuple[datetime, int, str, Pub]]:
        """The orders events to handle as the schedule's entries, in its order."""
        n = self._first_event
        for p in self._orders_pubs:
            if isinstance(p.payload, CONSUMED):
                at = p.at + timedelta(seconds=1)
                if self.plan.start <= at <= self.plan.end:
                    yield at, n, "event", p
                n += 1

    def _plan_members(self, members: list[tuple[datetime, MemberRegistered]]) -> None:
        rng = self.rng
        marked: set[str] = set()
        for registered, m in members:
            c = m.community_id
            grid = rng.choice(self.grids[c])
            at = self._days(registered, 1, 30)
            org = self._org_of(grid, at)
            self._cmd(at, c, AttachMember(org_id=org, member_id=m.member_id, grid_id=grid, reason="双报到后转入"))
            if org.startswith("org-bg-") and org not in marked:
                marked.add(org)
                self._cmd(self._days(at, 1, 60), c, MarkCentralHousehold(org_id=org, member_id=m.member_id))
            if org.startswith("org-cc-"):  # into the grid's branch once there is one
                self._cmd(self._branch_at[grid] + timedelta(days=rng.uniform(1, 20)), c,
                          AttachMember(org_id=f"org-gb-{grid}", member_id=m.member_id, reason="网格党支部成立"))
            elif rng.random() < 1 / 12:
                other = rng.choice(self.grids[c])
                moved = self._days(at, 90, 1200)
                if other != grid and self._branch_at[other] < moved:
                    self._cmd(moved, c, AttachMember(org_id=f"org-gb-{other}", member_id=m.member_id,
                                                     reason="居住地变更"))
            self._plan_commitments(m.member_id, c, at)
            unit = m.unit_id
            if unit not in self._units:  # a unit reports once, to the community where it sits
                home = self._units[unit] = self.communities[int(unit.rsplit("-", 1)[1]) % len(self.communities)]
                if rng.random() < 0.9:
                    self._report_unit(home, unit, self._days(registered, 2, 25))

    def _report_unit(self, c: str, unit: str, at: datetime) -> None:
        self._reported[c][unit] = at
        self._cmd(at, c, ReportUnit(unit_id=unit, name=f"驻区单位{unit[5:]}", community_id=c,
                                    resources=("会议室", "志愿者")))
        signed = self._days(at, 3, 40)
        while signed < self.plan.end:
            until = signed + timedelta(days=365)
            self._cmd(signed, c, SignAgreement(agreement_id=f"agr-{c}-{unit}", unit_id=unit, community_id=c,
                                               commitments=("共建党建阵地", "志愿服务"), valid_from=signed,
                                               valid_until=until))
            signed = until - timedelta(days=self.rng.uniform(0, 20))  # renewed before it runs out

    def _plan_commitments(self, member_id: str, c: str, attached: datetime) -> None:
        rng = self.rng
        local = attached.astimezone(SH)
        for year in range(local.year, self.plan.end.astimezone(SH).year + 1):
            jan = datetime(year, 1, 1, tzinfo=SH)
            made = max(attached + timedelta(hours=2), jan + timedelta(days=rng.uniform(10, 80)))
            if made.astimezone(SH).year != year:
                continue
            cid = f"cm-{member_id}-{year}"
            self._cmd(made, c, MakeCommitment(member_id=member_id, commitment_id=cid, year=year,
                                              text="每季度参加一次志愿服务"))
            fulfilled = rng.random() < 0.8
            if fulfilled:
                at = max(made + timedelta(days=1), jan + timedelta(days=rng.uniform(250, 350)))
                if at.astimezone(SH).year == year:
                    self._cmd(at, c, FulfilCommitment(member_id=member_id, commitment_id=cid, note="已完成"))
                else:
                    fulfilled = False
            rated = datetime(year + 1, 1, 1, tzinfo=SH) + timedelta(days=rng.uniform(2, 25))
            self._cmd(rated, c, RateCommitment(member_id=member_id, commitment_id=cid,
                                               rating=rng.randint(4, 5) if fulfilled else rng.randint(1, 3)))

    def _seats(self, area: str, level: CouncilLevel, units: list[str], term: int) -> tuple[CouncilSeat, ...]:
        rng = self.rng
        n = rng.randint(9, 15) if level is CouncilLevel.STREET else rng.randint(7, 11)
        part_time = max(-(-n // 3), min(len(units), n - 1 - rng.randint(2, 4)))
        seats = [CouncilSeat(person_id=f"sec-{area}", role="secretary")]
        for i in range(n - 1 - part_time):
            seats.append(CouncilSeat(person_id=f"cm-{area}-{term}-{i}", role="deputy" if i == 0 else "member"))
        for i in range(part_time):
            unit = units[i % len(units)]
            seats.append(CouncilSeat(person_id=f"{unit}-rep-{area}-{term}-{i}", unit_id=unit, part_time=True))
        return tuple(seats)

    def _plan_councils(self) -> None:
        rng, start, end = self.rng, self.plan.start, self.plan.end
        units = [f"unit-{i:03d}" for i in range(40)]
        councils = []
        for area, level in [(s, CouncilLevel.STREET) for s in self.streets] + \
                           [(c, CouncilLevel.COMMUNITY) for c in self.communities]:
            council = _Council(f"council-{area}", level, area, self.sender(area), [])
            proposed = self._days(start, 25, 40)
            terms = [proposed] + ([self._days(start, 900, 1000)] if level is CouncilLevel.STREET else [])
            for term, at in enumerate(terms):
                seats = self._seats(area, level, rng.sample(units, 12), term)
                council.compositions.append((at + timedelta(days=5), seats))
                self._at(at, "command", (council.sender, ProposeCouncil(council_id=council.council_id, level=level,
                                                                        area_id=area, seats=seats)))
            councils.append(council)
        for council in councils:
            first = council.compositions[0][0]
            q = _quarter_start(first.astimezone(SH))
            n = 0
            while q < end:
                nxt = _next_quarter(q)
                lo = max(q, first + timedelta(hours=1))
                if rng.random() < 0.9 and lo < nxt:
                    held = lo + (nxt - lo) * rng.uniform(0.05, 0.95)
                    self._plan_meeting(council, held, n)
                    n += 1
                q = nxt

    def _plan_meeting(self, council: _Council, held: datetime, n: int) -> None:
        rng = self.rng
        seats = [s for at, s in council.compositions if at <= held][-1]
        people = [s.person_id for s in seats]
        absent = set(rng.sample(people, len(people) // 5))
        units = sorted({s.unit_id for s in seats if s.unit_id})
        resolutions = []
        for i in range(rng.randint(1, 3)):
            due = held + timedelta(days=rng.uniform(30, 90))
            r = ResolutionItem(resolution_id=f"res-{council.council_id}-{n}-{i}", title="共建事项",
                               owner_unit_id=rng.choice(units), due_at=due)
            resolutions.append(r)
            if rng.random() < 0.85:
                done = held + timedelta(days=rng.uniform(5, 100))
                self._at(done, "command", (council.sender, CompleteResolution(
                    council_id=council.council_id, resolution_id=r.resolution_id, note="已办结")))
        self._at(held + timedelta(hours=rng.uniform(1, 48)), "command", (council.sender, HoldMeeting(
            council_id=council.council_id, meeting_id=f"jm-{council.council_id}-{n}", held_at=held,
            attendees=tuple(p for p in people if p not in absent), absentees=tuple(p for p in people if p in absent),
            resolutions=tuple(resolutions))))

    def _plan_projects(self) -> None:
        """Projects are posted now; they are claimed, completed and rated as they come (a
        claim needs a unit reported by then: see :meth:`_project`)."""
        rng, start, end = self.rng, self.plan.start, self.plan.end
        span = (end - start).total_seconds()
        for c in self.communities:
            n = round(1.5 * 12 * self.plan.years)
            for i in range(n):
                at = start + timedelta(seconds=rng.uniform(0.02, 1) * span)
                pid = f"proj-{c}-{i:05d}"
                self._cmd(at, c, PostProject(project_id=pid, community_id=c, title="社区微项目", need="需要共建单位支持"))
                self._at(self._days(at, 1, 14), "claim", (c, pid))

    def _project(self, at: datetime, c: str, pid: str) -> list[tuple[datetime, Principal, Any]]:
        """A project's claim by a unit reported by ``at``, then its completion and rating."""
        rng = self.rng
        units = sorted(u for u, when in self._reported[c].items() if when < at)
        if not units or rng.random() > 0.8:
            return []
        unit = rng.choice(units)
        out = [(at, ClaimProject(project_id=pid, unit_id=unit))]
        if rng.random() < 0.85:
            done = self._days(at, 7, 60)
            out.append((done, CompleteProject(project_id=pid, unit_id=unit, result="已完成")))
            if rng.random() < 0.9:
                out.append((self._days(done, 1, 10), RateProject(project_id=pid, rating=rng.randint(3, 5))))
        return [(t, self.sender(c), cmd) for t, cmd in out]

    def _plan_life(self) -> None:
        """Each organisation's meetings, period by period; who attends is known when it is held."""
        policy = self.handler.life_policy
        orgs: list[tuple[str, OrgKind, datetime, str]] = []
        t0 = self.plan.start + timedelta(minutes=5)
        orgs += [(f"org-sw-{s}", OrgKind.STREET_WORKING_COMMITTEE, t0, s) for s in self.streets]
        orgs += [(f"org-cc-{c}", OrgKind.COMMUNITY_COMMITTEE, t0 + timedelta(hours=1), c) for c in self.communities]
        for g, at in self._branch_at.items():
            orgs.append((f"org-gb-{g}", OrgKind.GRID_BRANCH, at, community_id_of(g)))
            orgs += [(grp, OrgKind.BUILDING_GROUP, at + timedelta(minutes=10), community_id_of(g))
                     for grp in self._groups[g]]
        for org_id, kind, established, area in orgs:
            for life_kind in policy.kinds_for(kind):
                every = policy.frequencies[life_kind].every
                p = _month_start(established.astimezone(SH)) if every == "month" else \
                    _quarter_start(established.astimezone(SH))
                while p < self.plan.end:
                    nxt = _next_month(p) if every == "month" else _next_quarter(p)
                    lo = max(p, established + timedelta(minutes=1))
                    if lo < nxt and self.rng.random() < HELD:
                        held = lo + (nxt - lo) * self.rng.uniform(0.02, 0.98)
                        recorded = held + timedelta(hours=self.rng.uniform(1, 48))
                        self._at(recorded, "life", (area, org_id, life_kind, held, p))
                    p = nxt

    def _plan_ticks(self) -> None:
        day = _month_start(self.plan.start.astimezone(SH)).replace(minute=30)
        while day <= self.plan.end:
            self._at(day, "tick", None)
            day = (day + timedelta(days=1, hours=2)).replace(hour=0, minute=30)

    # -- running ------------------------------------------------------------------------------

    async def run(self, conn: asyncpg.Connection, progress=None, task=None) -> None:
        """Handle everything planned, in time order, on ``conn`` (search path: the party schema)."""
        events: list[Pub] = []
        consumed = self._consumed()
        event = next(consumed, None)
        while self._queue or event is not None:
            if event is not None and (not self._queue or event[:2] < self._queue[0][:2]):
                (at, _, what, arg), event = event, next(consumed, None)
            else:
                at, _, what, arg = heapq.heappop(self._queue)
            self.pubs.release(at - BACKDATED)  # what is handled from now on is published after that
            self.intake.release(at)
            if what != "event" and events:
                await self._events(conn, events)
                events = []
            if what == "event":
                events.append(arg)
                if len(events) >= BATCH:
                    await self._events(conn, events)
                    events = []
            elif what == "command":
                await self._command(conn, at, *arg)
            elif what == "claim":
                for t, sender, cmd in self._project(at, *arg):
                    self._at(t, "command", (sender, cmd))
            elif what == "life":
                area, org_id, kind, held, period = arg
                # its members as the handler has attached them by now (the secretary, in one without)
                people = [r[0] for r in await conn.fetch(
                    "SELECT member_id FROM org_members WHERE org_id = $1 ORDER BY member_id", org_id)] or [
                    f"sec-{org_id}"]
                absent = set(self.rng.sample(people, len(people) // 6))
                await self._command(conn, at, self.sender(area), RecordOrgLife(
                    org_id=org_id, meeting_id=f"life-{org_id}-{kind.value}-{period:%Y%m}", kind=kind, held_at=held,
                    attendees=tuple(p for p in people if p not in absent),
                    absentees=tuple(p for p in people if p in absent), topic="学习贯彻会议精神"))
            else:
                await self._tick(conn, at)
            if progress is not None:
                progress.advance(task)
        if events:
            await self._events(conn, events)

    def planned(self) -> int:
        return len(self._queue) + self._planned_events

    async def _command(self, conn: asyncpg.Connection, at: datetime, sender: Principal, cmd: Any) -> None:
        env = envelope_for(cmd, source=user_source(sender), id=_uuid(self.rng), time=at)
        await self._handle(conn, at, [Message(envelope=env, payload=cmd, principal=sender)])
        self.intake.add(Pub(at, next(self.seq), SERVICE, env.id, cmd, sender=Sender.of(sender)))

    async def _events(self, conn: asyncpg.Connection, pubs: list[Pub]) -> None:
        msgs = [Message(envelope=envelope_for(p.payload, source=p.source, id=p.id, time=p.at,
                                              correlationid=p.story or p.id, causationid=p.cause), payload=p.payload)
                for p in pubs]
        await self._handle(conn, pubs[-1].at + timedelta(seconds=1), msgs)

    async def _handle(self, conn: asyncpg.Connection, now: datetime, msgs: list[Message]) -> None:
        """The consumer's path for one batch: the inbox, the handler, the flush; one transaction."""
        async with conn.transaction():
            uow = UnitOfWork(conn, SERVICE, now.astimezone(timezone.utc))  # the worker's clock is UTC
            new = await claim(conn, [(m.source, m.id) for m in msgs])
            faults = await dispatch(self.handler, uow, [m for m in msgs if (m.source, m.id) in new])
            if faults or uow.rejected:
                what = faults[0] if faults else uow.rejected[0]
                raise Refused(f"the party handler refused or failed on {what[0].type} "
                              f"{what[0].payload.model_dump(mode='json')}: {what[1]!r}")
            await uow.flush()
        self.handled += len(msgs)
        self._publish(uow)

    async def _tick(self, conn: asyncpg.Connection, now: datetime) -> None:
        """The worker's timers, each round in its transaction, as they would have run by ``now``."""
        local = now.astimezone(SH)
        h = self.handler
        rounds = [lambda uow: h.check_councils(uow, h.settings.council_batch),
                  lambda uow: h.check_member_reports(uow, h.settings.member_batch),
                  h.report_coverage_gaps]
        if local.day == 1:
            rounds.append(h.check_org_life)
        if local.day <= 3 and local.month in (1, 4, 7, 10):
            rounds.append(lambda uow: h.quarterly_feedback(uow, h.settings.member_batch))
        for fn in rounds:
            # a round takes a batch (or finds what is due): the next rounds take the rest, until none
            for _ in range(1000):
                async with conn.transaction():
                    uow = UnitOfWork(conn, SERVICE, now.astimezone(timezone.utc))
                    n = await fn(uow)
                    await uow.flush()
                self._publish(uow)
                if not n:
                    break
            else:
                raise RuntimeError(f"a party timer kept finding work at {now}")

    def _publish(self, uow: UnitOfWork) -> None:
        """What the unit of work emitted, as the history's pubs (the payloads read back from the
        envelopes, as a consumer of the topic reads them)."""
        for env in uow.emitted:
            payload = model_for(env.type).model_validate(env.data)
            self.pubs.add(Pub(env.time, next(self.seq), SERVICE, env.id, payload, env.causationid, env.correlationid))


def _month_start(t: datetime) -> datetime:
    return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(t: datetime) -> datetime:
    return t.replace(year=t.year + 1, month=1) if t.month == 12 else t.replace(month=t.month + 1)


def _quarter_start(t: datetime) -> datetime:
    return _month_start(t).replace(month=(t.month - 1) // 3 * 3 + 1)


def _next_quarter(t: datetime) -> datetime:
    return _next_month(_next_month(_next_month(t)))
