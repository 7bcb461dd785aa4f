"""The district's stories: what residents, grid workers, members, merchants and consoles do.

A story is a short coroutine that plays one real-world flow through the public interface
only — commands to intake topics, outcomes followed by ``causationid`` (see
:mod:`.client`). Stories branch on what the services answer (a case dismissed as a duplicate,
an order declined or expired, a redemption refused for lack of points) exactly like a field
app would. Randomness comes from one seeded :class:`random.Random` per story, so a story's
choices are reproducible from the simulator seed and the story number.

Story kinds and their weights are :data:`MIX`; :func:`pick_kind` chooses one. A case goes to
the department the register's 权责清单 names, and the department behaves as diligently as the
seed made it (:class:`~.district.Department`): a step it is late with waits for the calendar's
next month, when the grid's timer has supervised the missed deadline (:meth:`Stories.next_month`).
Every command passes through :meth:`Stories.step`, which waits for the simulator's pace (RATE per second).

Every command is sent by the person or office that really sends it
(:class:`~.identities.Cast`), with their own token, and names them in its actor fields: a grid
worker reports in their grid and verifies its cases, the community office (``cw-<community>``)
registers, dispatches, reviews departments' returns and extensions, evaluates orders, reviews
deeds, opens residents' accounts and records its reviews of units, the street office
(``so-<street>``) escalates, blows whistles (吹哨) and rates the departments' response, decides
what leaves the rates (不合理诉求) and records its street's and its units' reviews, the officer of
a department of the department register (``do-<department>``) accepts, returns, contacts,
controls, asks for extensions and exclusions, handles and reports to whistles, the resident gives
feedback on their own report, places and rates orders, submits deeds and gives the
consent code a merchant's redemption presents, the Party member acts on their own posts and
orders, two points operators adjust and approve, the assessment office closes periods. The
services refuse anything else; a run of the simulator is refused nothing for lack of
a right (``forbidden`` / ``unauthenticated``): the launcher's summary flags such refusals.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Awaitable, Callable, Protocol

import orjson

from schemas.assessment import ClosePeriod, RecordReview
from schemas.codes import GridCode
from schemas.common import Command
from schemas.envelope import CloudEvent, encode, envelope_for
from schemas.grid import (
    AcceptCase, AnswerWhistle, BlowWhistle, CaseFeedback, Category, ContactChannel, ContactReporter, ControlHazard,
    DispatchCase, EscalateCase, Grade, HandleCase, Location, LogPatrol, RateWhistle, RegisterCase, ReportCase,
    Reporter, RequestExclusion, RequestExtension, ReturnCase, ReviewExclusion, ReviewExtension, ReviewReturn,
    VerifyCase,
)
from schemas.orders import (
    AcceptOrder, ClaimPost, CompleteOrder, DeclineOrder, DispatchOrder, EvaluateOrder, OrderCategory, PlaceOrder,
    RateOrder, RegisterMember,
)
from schemas.points import Adjust, OpenAccount, Redeem, ReviewDeed, SubmitDeed
from schemas.registry import model_for
from schemas.topics import BY_SERVICE

from services.kit import clock
from services.kit.clock import month_label

from .client import Outcome
from .district import Department, District, account_id
from .identities import Actor, Cast
from .party import PartyStories

log = logging.getLogger("simulator.flows")

DISPATCHED = "orders.order.dispatched.v1"
EXPIRED = "orders.order.dispatch_expired.v1"

# Story kinds and their relative weights (a modest, realistic mix; bad input ~4%).
MIX: dict[str, float] = {
    "hazard": 14, "dispute": 10, "environment": 8, "resident_need": 8, "order": 18, "deed": 14,
    "redemption": 8, "patrol": 10, "review": 4, "adjustment": 2, "bad_input": 4, "whistle": 1,
}
ADJUST_APPROVAL_ABOVE = 100  # an adjustment of more points takes effect when a second operator approves it
APPROVE_ADJUSTMENT = "points.adjust.approve.v1"  # {transfer_id, approver_id}; sent when the contract has it
RATE_SHARE = 0.85  # the share of completed orders their resident rates (评价) before the 考单
RATING_COMMENTS = {5: "非常满意", 4: "满意", 3: "一般", 2: "不太满意"}
CONSENT_FIELD = "consent_code"  # of points.redeem.v1: the resident's code (POST /v1/redemption-codes)

# The department's part of a case. How a department behaves follows its diligence d (0.6–0.98,
# drawn from the seed per department, see .district): the worse it is, the more often it is late.
PROPOSED_SHARE = 0.85  # registrations that leave the department to the register's 权责清单 (the rest name it)
RETURN_SHARE = (0.03, 0.25)  # 退单: a + b × (1 − d), about 8 % on average
RETURN_APPROVED = 0.75  # the community approves most returns (re-dispatch to another department)
EXTENSION_SHARE = 0.10  # 延期 asked for
EXTENSION_GRANTED = 0.8
EXCLUSION_SHARE = 0.02  # 不合理诉求 asked to be left out of the rates
EXCLUSION_APPROVED = 0.7  # by the street
WHISTLE_REPORT_HOURS = 4  # a whistle's report_by, from when it is blown
RETURN_REASONS = ["不属于本部门职责范围", "地址不在本部门管辖范围", "需其他部门牵头处置"]
EXCLUSION_REASONS = ["诉求人要求超出政策规定范围", "诉求人重复反映已办结事项且无新情况"]
WHISTLE_MATTERS = ["背街小巷环境综合整治", "老旧小区违建拆除", "占道经营集中整治", "群租房安全隐患排查",
                   "施工扰民联合执法", "汛期积水点联合处置"]

DEEDS = {"civility_persuasion": (10, 10), "lost_property": (5, 10), "mediation": (5, 10),
         "hardship_help": (10, 10), "disaster_relief": (20, 20)}
DESCRIPTIONS = {
    "hazard.fire": ["楼道堆放杂物堵塞消防通道", "电动自行车在楼道内充电", "灭火器过期未更换"],
    "hazard.production": ["施工工地未设置安全防护", "临街商铺违规储存液化气"],
    "hazard.food": ["早餐店无健康证从业", "小餐馆后厨卫生条件差"],
    "dispute.neighbour": ["楼上漏水影响楼下住户", "邻居装修噪音扰民"],
    "dispute.property": ["物业费收取争议", "小区停车位分配纠纷"],
    "dispute.labour": ["装修工人被拖欠工资", "保洁员加班费争议"],
    "environment": ["垃圾桶满溢未及时清运", "绿地内有建筑垃圾", "路面积水"],
    "public_facility": ["路灯不亮", "健身器材损坏", "井盖缺失"],
    "resident_need": ["独居老人需要上门助餐", "残疾居民需要代办证件", "老人家中水管需要维修"],
}


class Client(Protocol):
    """What the stories need from :class:`.client.CommandClient` (a fake in unit tests)."""

    async def send_and_follow(self, payload: Command, *, sender: Actor | None = ..., timeout: float = ...) -> Outcome: ...
    async def redemption_code(self, resident: Actor, amount: int) -> dict | None: ...
    async def send_raw(self, topic: str, value: bytes, *, key: str | None = None) -> None: ...
    def expect(self, predicate: Callable[[CloudEvent], bool]) -> asyncio.Future: ...
    def seen(self, subject: str, type_: str) -> CloudEvent | None: ...
    async def wait_for(self, predicate: Any, timeout: float = ...) -> CloudEvent | None: ...


def pick_kind(rng: random.Random, mix: dict[str, float] = MIX) -> str:
    """One story kind, by weight."""
    kinds = list(mix)
    return rng.choices(kinds, weights=[mix[k] for k in kinds])[0]


class Pace:
    """A token bucket: at most ``rate`` commands per second on average (bursts up to ``rate``)."""

    def __init__(self, rate: float):
        self.rate = max(rate, 0.01)
        self.tokens = 1.0
        self.last: float | None = None
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            while True:
                now = loop.time()
                if self.last is not None:
                    self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.last) * self.rate)
                self.last = now
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self.tokens) / self.rate)


class NoPace:
    async def take(self) -> None:
        return None


@dataclass
class Stats:
    """What the simulator did: commands by type and outcome, stories by kind."""

    commands: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    rejections: Counter = field(default_factory=Counter)
    stories: Counter = field(default_factory=Counter)
    bad_input: Counter = field(default_factory=Counter)
    periods_closed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"commands": sum(self.commands.values()), "outcomes": dict(self.outcomes),
                "rejections": dict(self.rejections), "stories": dict(self.stories),
                "bad_input": dict(self.bad_input), "periods_closed": list(self.periods_closed)}


class Stories(PartyStories):
    """The story library, bound to a district, a client, a pace and the simulated clock."""

    def __init__(self, district: District, client: Client, *, pace: Pace | NoPace | None = None,
                 seed: int = 7, follow_timeout: float = 20.0, expire_wait: float = 90.0,
                 now: Callable[[], datetime] | None = None, late_wait: float = 180.0, settle: float = 3.0):
        self.d = district
        self.client = client
        self.pace = pace or NoPace()
        self.seed = seed
        self.follow_timeout = follow_timeout
        self.expire_wait = expire_wait
        self._now = now or clock.now
        self.late_wait = late_wait  # how long a story waits for the calendar's next month (a late step)
        self.settle = settle  # after a month's step, time for the grid's timers to supervise what passed
        self.idle = 0  # stories waiting for the next month now (the runner does not count them as busy)
        self.stats = Stats()
        self._n = 0
        self._slot = 0  # location lattice slot, so unrelated reports are never within 250 m
        self.earners: list[str] = []  # accounts that earned points (deeds, resident reports, passed orders)
        self.cast = Cast(district)  # who sends what (each with their own token)
        self.tasks: set[asyncio.Task] = set()
        self.effective: set[str] = set()  # councils whose 公示 has passed

    def spawn(self, coro) -> None:
        """Run a follow-up story in the background (kept until done)."""
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    # -- plumbing ---------------------------------------------------------------------------
    def rng_for(self, n: int) -> random.Random:
        return random.Random(f"{self.seed}:{n}")

    def new_id(self, prefix: str, rng: random.Random) -> str:
        return f"{prefix}-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}"

    async def step(self, payload: Command, sender: Actor) -> Outcome:
        """``sender`` sends one command at the simulator's pace; its outcome, followed."""
        await self.pace.take()
        self.stats.commands[payload.TYPE] += 1
        out = await self.client.send_and_follow(payload, sender=sender, timeout=self.follow_timeout)
        key = "timed_out" if out.timed_out else "rejected" if out.rejected else "accepted"
        self.stats.outcomes[key] += 1
        if out.rejected:
            self.stats.rejections[f"{payload.TYPE}:{out.reason}"] += 1
        return out

    def now(self) -> datetime:
        """The services' time (the simulated calendar under ``make run``)."""
        return self._now()

    async def next_month(self) -> bool:
        """Wait until the calendar steps to the next month (and the grid's timers have come round):
        what a department left undone is then late, and supervised. False when it did not step
        within ``late_wait`` (on real time a month is long: the step is then never done)."""
        loop = asyncio.get_running_loop()
        month, until = month_label(self.now()), loop.time() + self.late_wait
        with self.waiting():
            while month_label(self.now()) == month:
                if loop.time() >= until:
                    return False
                await asyncio.sleep(0.25)
            await asyncio.sleep(self.settle)
            return True

    @contextlib.contextmanager
    def waiting(self):
        """A story that waits for the calendar or a timer (not for its next command) is idle."""
        self.idle += 1
        try:
            yield
        finally:
            self.idle -= 1

    def location(self, grid_id: str) -> Location:
        g = self.d.grid(grid_id)
        self._slot = (self._slot + 1) % 900
        row, col = divmod(self._slot, 30)
        return Location(lat=round(g.lat + row * 0.0035, 6), lon=round(g.lon + col * 0.0045, 6),
                        address=f"{self.d.name}{GridCode.parse(g.grid_id).grid}网格{row + 1}号楼{col + 1}单元")

    # -- entry points -----------------------------------------------------------------------
    async def run_one(self, kind: str | None = None) -> str:
        """Play one story (``kind`` or one picked by weight); returns its kind."""
        n = self._n
        self._n += 1
        rng = self.rng_for(n)
        kind = kind or pick_kind(rng)
        self.stats.stories[kind] += 1
        await getattr(self, f"story_{kind}")(rng)
        return kind

    async def setup(self, concurrency: int = 16) -> dict[str, int]:
        """Open accounts, register members and their posts (idempotent: ids are fixed)."""
        cast = self.cast
        operator = cast.points_operator()
        cmds: list[tuple[Command, Actor]] = []
        for c in self.d.communities:  # the district points office opens the issuers
            cmds.append((OpenAccount(account_id=account_id("issuer", c.community_id), holder_id=c.community_id,
                                     kind="issuer", community_id=c.community_id), operator))
        for m in self.d.merchants:  # the community office opens its merchants' and residents' accounts
            cmds.append((OpenAccount(account_id=m.account_id, holder_id=m.merchant_id, kind="merchant",
                                     community_id=m.community_id), cast.community_officer(m.community_id)))
        for p in self.d.residents:
            cmds.append((OpenAccount(account_id=account_id("resident", p.person_id), holder_id=p.person_id,
                                     kind="resident", community_id=p.community_id),
                         cast.community_officer(p.community_id)))
        for m in self.d.members:
            office = cast.community_officer(m.community_id)
            cmds.append((OpenAccount(account_id=account_id("resident", m.member_id), holder_id=m.member_id,
                                     kind="resident", community_id=m.community_id), office))
            cmds.append((RegisterMember(member_id=m.member_id, community_id=m.community_id, unit_id=m.unit_id,
                                        name=m.name, unit_name=m.unit_name), office))
        sem = asyncio.Semaphore(concurrency)
        result: Counter = Counter()

        async def one(cmd: Command, sender: Actor) -> None:
            async with sem:
                out = await self.client.send_and_follow(cmd, sender=sender, timeout=self.follow_timeout)
                result["rejected" if out.rejected else "timed_out" if out.timed_out else "accepted"] += 1
                if out.rejected:
                    self.stats.rejections[f"{cmd.TYPE}:{out.reason}"] += 1

        await asyncio.gather(*(one(c, by) for c, by in cmds))
        posts = [(ClaimPost(member_id=m.member_id, post_id=p.post_id, community_id=m.community_id,
                            categories=list(p.categories), capacity=p.capacity, title=p.title),
                  cast.member(m.member_id))
                 for m in self.d.members for p in m.posts]
        await asyncio.gather(*(one(c, by) for c, by in posts))
        result.update({f"party_{k}": v for k, v in (await self.party_setup()).items()})
        return dict(result)

    # -- grid cases -------------------------------------------------------------------------
    async def _case(self, rng: random.Random, category: Category, *, by_resident: bool, escalate: bool = False,
                    duplicate: bool = False,
                    on_register: Callable[[str], Callable[[], Awaitable[None]]] | None = None) -> str | None:
        cast = self.cast
        grid = rng.choice(self.d.grids)
        worker = cast.grid_worker(grid.grid_id)
        resident = rng.choice([r for r in self.d.residents if r.grid_id == grid.grid_id])
        reporter_actor = cast.resident(resident) if by_resident else worker
        reporter = Reporter(kind="resident" if by_resident else "grid_worker", id=reporter_actor.sub)
        office = cast.community_officer(grid.community_id)
        case_id = self.new_id("case", rng)
        grade = rng.choices(list(Grade), weights=[80, 17, 3])[0] if category.is_hazard else None
        loc = self.location(grid.grid_id)
        text = rng.choice(DESCRIPTIONS.get(category.value, ["其他问题"]))
        out = await self.step(ReportCase(case_id=case_id, grid_id=grid.grid_id, category=category, grade=grade,
                                         description=text, location=loc, reporter=reporter), reporter_actor)
        if out.rejected or out.timed_out or not out.of_type("grid.case.reported.v1"):
            return None
        if duplicate:  # a neighbour reports the same thing 20 m away: linked, not a second case
            other = rng.choice([r for r in self.d.residents if r.grid_id == grid.grid_id])
            dup = self.new_id("case", rng)
            near = Location(lat=loc.lat + 0.00018, lon=loc.lon, address=loc.address)
            await self.step(ReportCase(case_id=dup, grid_id=grid.grid_id, category=category, grade=grade,
                                       description=text, location=near,
                                       reporter=Reporter(kind="resident", id=other.person_id)), cast.resident(other))
        # 立案: most often the office leaves the department to the register's 权责清单, which proposes it
        named = self.d.responsible(category, grade, grid.street_id)
        then = on_register(case_id) if on_register is not None else None  # listen before sending
        out = await self.step(RegisterCase(case_id=case_id, department=None if rng.random() < PROPOSED_SHARE else named,
                                           registrar_id=office.sub), office)
        if out.rejected or out.timed_out:
            return None
        got = out.of_type("grid.case.registered.v1")
        department = (got[0].data.get("department") if got else None) or named
        if department is None:
            return None
        if by_resident:  # a registered resident report earns points (道德银行)
            self.earners.append(account_id("resident", reporter.id))
        if then is not None:
            await then()
        handler = cast.department_officer(department)
        out = await self.step(DispatchCase(case_id=case_id, department=department, assignee_id=handler.sub,
                                           dispatcher_id=office.sub), office)
        if out.rejected or out.timed_out:
            return None
        if escalate:  # a complex dispute goes to joint mediation by the departments (联合调解): the street decides
            street = cast.street_officer(grid.street_id)
            await self.step(EscalateCase(case_id=case_id, reason="涉及多个部门，需要联合调解", joint_mediation=True,
                                         requested_by=street.sub), street)
            if rng.random() < 0.5:  # and summons the departments to it (吹哨报到)
                self.stats.stories["whistle_on_case"] += 1
                others = [d for d in self.d.departments_of(grid.street_id) if d.department_id != department]
                summoned = [self.d.department(department), *rng.sample(others, min(len(others), rng.randint(1, 2)))]
                self.spawn(self.whistle(random.Random(rng.getrandbits(64)), grid.street_id, summoned, case_id=case_id))
        dispatched = out.of_type("grid.case.dispatched.v1")
        part = await self._department_part(rng, case_id, grid.street_id, department, office,
                                           severe=grade is Grade.SEVERE,
                                           due_at=dispatched[0].data.get("due_at") if dispatched else None)
        if part is None:
            return None
        handler, dept = part
        rework = rng.random() < 0.12
        for attempt in range(2 if rework else 1):
            out = await self.step(HandleCase(case_id=case_id, result="已现场处置" if attempt == 0 else "返工后已整改到位",
                                             handled_by=handler.sub), handler)
            if out.rejected or out.timed_out:
                return None
            passed = not (rework and attempt == 0)
            out = await self.step(VerifyCase(case_id=case_id, passed=passed, verifier_id=worker.sub,
                                             comment="" if passed else "整改不到位，返工"), worker)
            if out.rejected or out.timed_out:
                return None
        # 回访 (feedback) comes from the resident who reported; a grid worker's report has none. A
        # diligent department leaves more residents satisfied and problems solved.
        if rng.random() < 0.7 and by_resident:
            d = dept.diligence
            satisfaction = rng.choices(["satisfied", "basically_satisfied", "unsatisfied"],
                                       weights=[40 + 40 * d, 22, 3 + 30 * (1 - d)])[0]
            resolved = rng.random() < {"satisfied": 0.97, "basically_satisfied": 0.8, "unsatisfied": 0.25}[satisfaction]
            await self.step(CaseFeedback(case_id=case_id, satisfaction=satisfaction, reporter_id=reporter.id,
                                         resolved=resolved), reporter_actor)
        return case_id

    async def _department_part(self, rng: random.Random, case_id: str, street_id: str, department: str,
                               office: Actor, *, severe: bool, due_at: Any) -> tuple[Actor, Department] | None:
        """The department's part of a dispatched case, up to handling: 签收, perhaps 退单 (reviewed by
        the community: a re-dispatch to another department, which then does its part, or a refusal),
        先行联系, 管控 of a severe hazard, perhaps 不合理诉求 (reviewed by the street) and 延期
        (reviewed by the community). A step the department is late with waits for the next month
        (:meth:`next_month`): the grid's timer has supervised the missed deadline by then.

        Returns the officer who is to handle the case and their department (None: the story ends here)."""
        cast = self.cast
        late = False  # the department let a deadline pass: what it asks for now comes too late
        for attempt in range(2):  # the first department, and the one an approved return re-dispatches to
            dept = self.d.department(department)
            officer, d = cast.department_officer(department), dept.diligence
            if rng.random() < 0.5 * (1 - d):  # 签收 left for later: the accept deadline passes
                self.stats.stories["department_late_accept"] += 1
                if not await self.next_month():
                    return None
                late = True
            out = await self.step(AcceptCase(case_id=case_id, accepted_by=officer.sub), officer)
            if out.rejected or out.timed_out:
                return None
            if attempt == 0 and rng.random() < RETURN_SHARE[0] + RETURN_SHARE[1] * (1 - d):
                out = await self.step(ReturnCase(case_id=case_id, reason=rng.choice(RETURN_REASONS),
                                                 returned_by=officer.sub), officer)
                if out.rejected or out.timed_out:
                    return None
                others = [x for x in self.d.departments_of(street_id) if x.department_id != department]
                if others and rng.random() < RETURN_APPROVED:
                    other = rng.choice(others)
                    out = await self.step(ReviewReturn(case_id=case_id, approved=True, comment="同意退单，改派",
                                                       department=other.department_id,
                                                       assignee_id=cast.department_officer(other.department_id).sub,
                                                       reviewer_id=office.sub), office)
                    if out.rejected or out.timed_out:
                        return None
                    self.stats.stories["department_return_approved"] += 1
                    department = other.department_id
                    redispatched = out.of_type("grid.case.dispatched.v1")
                    due_at = redispatched[0].data.get("due_at") if redispatched else None
                    continue
                out = await self.step(ReviewReturn(case_id=case_id, approved=False, comment="属本部门职责，请按期办理",
                                                   reviewer_id=office.sub), office)
                if out.rejected or out.timed_out:
                    return None
                self.stats.stories["department_return_refused"] += 1
            break
        contact = rng.choices(["on_time", "late", "never"], weights=[d, 0.6 * (1 - d), 0.4 * (1 - d)])[0]
        self.stats.stories[f"department_contact_{contact}"] += 1
        if contact == "on_time":
            await self._contact(rng, case_id, officer)
        if severe:  # 管控 before rectification
            if rng.random() < 0.5 * (1 - d):
                if not await self.next_month():
                    return None
                late = True
            out = await self.step(ControlHazard(case_id=case_id, measures="设置警戒区域，停止使用，专人值守",
                                                controlled_by=officer.sub), officer)
            if out.rejected or out.timed_out:
                return None
        if rng.random() < EXCLUSION_SHARE:  # 不合理诉求: the street decides whether it leaves the rates
            self.stats.stories["department_exclusion"] += 1
            out = await self.step(RequestExclusion(case_id=case_id, reason=rng.choice(EXCLUSION_REASONS),
                                                   requested_by=officer.sub), officer)
            if not (out.rejected or out.timed_out):
                street = cast.street_officer(street_id)
                approved = rng.random() < EXCLUSION_APPROVED
                await self.step(ReviewExclusion(case_id=case_id, approved=approved, reviewer_id=street.sub,
                                                comment="经核实属不合理诉求" if approved else "诉求合理，计入考核"), street)
        if not late and rng.random() < EXTENSION_SHARE:  # 延期: asked before the handling deadline, reviewed by the community
            self.stats.stories["department_extension"] += 1
            due = datetime.fromisoformat(due_at) if isinstance(due_at, str) else due_at
            until = (due if isinstance(due, datetime) else self.now() + timedelta(days=10)) + timedelta(days=5)
            out = await self.step(RequestExtension(case_id=case_id, until=until, reason="需协调产权单位，整改周期较长",
                                                   requested_by=officer.sub), officer)
            if not (out.rejected or out.timed_out):
                granted = rng.random() < EXTENSION_GRANTED
                await self.step(ReviewExtension(case_id=case_id, granted=granted, reviewer_id=office.sub,
                                                comment="同意延期" if granted else "不同意延期，请按期办结"), office)
        if contact == "late" or rng.random() < 0.6 * (1 - d):  # the handling (and a late contact) after the step
            self.stats.stories["department_late_handling"] += 1
            if not await self.next_month():
                return None
            if contact == "late":
                await self._contact(rng, case_id, officer)
        return officer, dept

    async def _contact(self, rng: random.Random, case_id: str, officer: Actor) -> None:
        """先行联系: the department calls (or visits, texts...) the reporter."""
        channel = rng.choices(list(ContactChannel), weights=[70, 15, 10, 5])[0]
        await self.step(ContactReporter(case_id=case_id, channel=channel, note="已与诉求人联系，了解情况",
                                        contacted_by=officer.sub), officer)

    # -- 吹哨报到 -------------------------------------------------------------------------------
    async def story_whistle(self, rng: random.Random, street_id: str | None = None) -> None:
        """街乡吹哨、部门报到: a street summons two to four departments to a matter of its own."""
        street_id = street_id or rng.choice(self.d.streets).street_id
        candidates = self.d.departments_of(street_id)
        await self.whistle(rng, street_id, rng.sample(candidates, min(len(candidates), rng.randint(2, 4))))

    async def whistle(self, rng: random.Random, street_id: str, departments: list[Department], *,
                      case_id: str | None = None) -> str | None:
        """The street officer blows a whistle; each summoned department reports on time (most,
        as diligent as it is), late (after the next month's step, when the grid's timer has
        recorded it missing) or never; the street rates each one it can (a reported or missing
        department), lower the later it came."""
        street = self.cast.street_officer(street_id)
        whistle_id = self.new_id("whistle", rng)
        out = await self.step(BlowWhistle(whistle_id=whistle_id, street_id=street_id, case_id=case_id,
                                          departments=tuple(d.department_id for d in departments),
                                          report_by=self.now() + timedelta(hours=WHISTLE_REPORT_HOURS),
                                          matter=rng.choice(WHISTLE_MATTERS) if case_id is None else "案件联合处置",
                                          blown_by=street.sub), street)
        if out.rejected or out.timed_out:
            return None
        self.stats.stories["whistle"] += 1
        plans = {d.department_id: rng.choices(["on_time", "late", "never"],
                                              weights=[d.diligence, 0.6 * (1 - d.diligence), 0.4 * (1 - d.diligence)])[0]
                 for d in departments}
        for dept, plan in plans.items():
            if plan == "on_time":
                await self._answer(whistle_id, dept)
        if any(p != "on_time" for p in plans.values()) and await self.next_month():
            for dept, plan in plans.items():
                if plan == "late":
                    await self._answer(whistle_id, dept)
        else:  # nobody is still to come, or the month did not step: the rest cannot be rated yet
            plans = {k: v for k, v in plans.items() if v == "on_time"}
        for dept, plan in plans.items():
            rating = {"on_time": rng.choice([4, 5, 5]), "late": rng.choice([2, 3]), "never": 1}[plan]
            self.stats.stories[f"whistle_{plan}"] += 1
            await self.step(RateWhistle(whistle_id=whistle_id, department=dept, rating=rating, rated_by=street.sub,
                                        comment={5: "响应迅速", 4: "按时报到", 3: "报到不及时", 2: "报到迟缓",
                                                 1: "未报到"}[rating]), street)
        return whistle_id

    async def _answer(self, whistle_id: str, department: str) -> None:
        officer = self.cast.department_officer(department)
        await self.step(AnswerWhistle(whistle_id=whistle_id, department=department, answered_by=officer.sub,
                                      note="已到场对接"), officer)

    async def story_hazard(self, rng: random.Random) -> None:
        cat = rng.choice([Category.HAZARD_FIRE, Category.HAZARD_PRODUCTION, Category.HAZARD_FOOD])
        await self._case(rng, cat, by_resident=rng.random() < 0.3, duplicate=rng.random() < 0.15)

    async def story_dispute(self, rng: random.Random) -> None:
        cat = rng.choice([Category.DISPUTE_NEIGHBOUR, Category.DISPUTE_PROPERTY, Category.DISPUTE_LABOUR])
        await self._case(rng, cat, by_resident=True, escalate=rng.random() < 0.35)

    async def story_environment(self, rng: random.Random) -> None:
        cat = rng.choice([Category.ENVIRONMENT, Category.PUBLIC_FACILITY])
        await self._case(rng, cat, by_resident=rng.random() < 0.5, duplicate=rng.random() < 0.2)

    async def story_resident_need(self, rng: random.Random) -> None:
        """A need found in the grid: the registered case becomes a 四单 order (placed by the orders service)."""
        def follow_order(case_id: str) -> Callable[[], Awaitable[None]]:
            fut = self.client.expect(
                lambda e: e.type == "orders.order.placed.v1" and e.data.get("source_case_id") == case_id)

            async def then() -> None:
                placed = await self.client.wait_for(fut, timeout=self.follow_timeout)
                if placed is not None:
                    self.spawn(self._order_cycle(rng, placed.data["order_id"], placed.data["community_id"],
                                                 placed.data["resident_id"], by_resident=False))
                    self.stats.stories["order_from_case"] += 1
            return then

        await self._case(rng, Category.RESIDENT_NEED, by_resident=False, on_register=follow_order)

    # -- 四单式 orders ------------------------------------------------------------------------
    async def story_order(self, rng: random.Random) -> None:
        resident = rng.choice(self.d.residents)
        order_id = self.new_id("order", rng)
        category = rng.choice(list(OrderCategory))
        out = await self.step(PlaceOrder(order_id=order_id, resident_id=resident.person_id, grid_id=resident.grid_id,
                                         category=category, description=f"居民点单：{category.value}"),
                              self.cast.resident(resident))
        if out.rejected or out.timed_out:
            return
        first = out.of_type(DISPATCHED)  # the service dispatches automatically when it can
        await self._order_cycle(rng, order_id, resident.community_id, resident.person_id, first[0] if first else None)

    def _dispatched(self, order_id: str, after: CloudEvent | None = None) -> asyncio.Future:
        return self.client.expect(lambda e: e.type == DISPATCHED and e.data.get("order_id") == order_id
                                  and (after is None or e.id != after.id))

    async def _order_cycle(self, rng: random.Random, order_id: str, community_id: str, resident_id: str,
                           dispatched: CloudEvent | None = None, *, by_resident: bool = True) -> None:
        """派单 → (decline | expiry → 派单 again) → 接单 → complete → 评价 → 考单.

        The orders service dispatches automatically on placement, decline and expiry; the
        community console (this story) dispatches by hand only when nothing was dispatched.
        After completion the resident who placed the order (``by_resident``; an order made from
        a grid case was taken down by the grid worker) rates it most of the time, then the
        community office evaluates it (考单), carrying the resident's rating when there is one.
        """
        office = self.cast.community_officer(community_id)
        dispatched = dispatched or self.client.seen(order_id, DISPATCHED)
        for attempt in range(4):
            if dispatched is None:  # the community console asks for an automatic dispatch
                nxt = self._dispatched(order_id)
                out = await self.step(DispatchOrder(order_id=order_id, dispatched_by=office.sub), office)
                got = out.of_type(DISPATCHED)
                dispatched = got[0] if got else await self.client.wait_for(nxt, timeout=self.follow_timeout)
                if not nxt.done():
                    nxt.cancel()
                if dispatched is None:
                    return
            assignee = dispatched.data["assignee_id"]
            member = self.cast.member(assignee)
            if attempt == 0 and rng.random() < 0.08:
                # Nobody answers: the dispatch expires (accept_by passes), the service dispatches again.
                self.stats.stories["order_left_to_expire"] += 1
                expired = self.client.expect(lambda e: e.type == EXPIRED and e.data.get("order_id") == order_id)
                nxt = self._dispatched(order_id, after=dispatched)
                with self.waiting():
                    got_expired = await self.client.wait_for(expired, timeout=self.expire_wait)
                if got_expired is None:
                    nxt.cancel()
                    return
                dispatched = await self.client.wait_for(nxt, timeout=self.follow_timeout)
                if not nxt.done():
                    nxt.cancel()
                continue
            if attempt < 2 and rng.random() < 0.12:
                out = await self.step(DeclineOrder(order_id=order_id, assignee_id=assignee, reason="时间冲突，无法接单"),
                                      member)
                if out.rejected or out.timed_out:
                    return
                got = out.of_type(DISPATCHED)
                dispatched = got[0] if got else None
                continue
            break
        else:
            return
        out = await self.step(AcceptOrder(order_id=order_id, assignee_id=assignee), member)
        if out.rejected or out.timed_out:
            return
        out = await self.step(CompleteOrder(order_id=order_id, assignee_id=assignee,
                                            service_minutes=rng.randint(20, 180), note="服务完成"), member)
        if out.rejected or out.timed_out:
            return
        rating = rng.choices([5, 4, 3, 2], weights=[55, 30, 10, 5])[0]
        rated = False
        if by_resident and rng.random() < RATE_SHARE:  # 评价: the resident who placed the order rates it
            out = await self.step(RateOrder(order_id=order_id, resident_id=resident_id, rating=rating,
                                            comment=RATING_COMMENTS[rating]), self.cast.resident(resident_id))
            rated = not (out.rejected or out.timed_out)
        # 考单: the community office reviews the order; it carries the resident's rating when there is one
        out = await self.step(EvaluateOrder(order_id=order_id, rating=None if rated else rating, passed=rating >= 3,
                                            evaluator_id=office.sub, comment="组织考单"), office)
        if rating >= 3 and not out.rejected:  # a passed order earns the assignee points
            self.earners.append(account_id("resident", assignee))

    # -- 道德银行 ----------------------------------------------------------------------------
    async def story_deed(self, rng: random.Random) -> None:
        resident = rng.choice(self.d.residents)
        acct = account_id("resident", resident.person_id)
        category = rng.choice(list(DEEDS))
        deed_id = self.new_id("deed", rng)
        out = await self.step(SubmitDeed(deed_id=deed_id, account_id=acct, category=category,
                                         description="道德日记", community_id=resident.community_id,
                                         occurred_on=self.now().date()), self.cast.resident(resident))
        if out.rejected or out.timed_out:
            return
        lo, hi = DEEDS[category]
        approved = rng.random() < 0.85
        office = self.cast.community_officer(resident.community_id)
        out = await self.step(ReviewDeed(deed_id=deed_id, account_id=acct, approved=approved,
                                         points=rng.randint(lo, hi) if approved else None,
                                         reason=None if approved else "事迹材料不充分",
                                         reviewer_id=office.sub), office)
        if approved and not out.rejected:
            self.earners.append(acct)

    async def story_redemption(self, rng: random.Random) -> None:
        """兑换: the resident consents (a code from the points API, as the resident), the
        merchant's till presents it with the amount."""
        self.earners = self.earners[-500:]
        acct = rng.choice(self.earners) if self.earners and rng.random() < 0.9 else \
            account_id("resident", rng.choice(self.d.residents).person_id)
        holder = self.cast.resident(acct.split(":", 1)[1])
        merchant = rng.choice(self.d.merchants)
        amount = rng.randint(1, 8)
        transfer_id = self.new_id("redeem", rng)
        fields: dict[str, Any] = {"transfer_id": transfer_id, "debit_account": acct,
                                  "credit_account": merchant.account_id, "amount": amount}
        if CONSENT_FIELD in Redeem.model_fields:
            consent = await self.client.redemption_code(holder, amount)
            if consent is None:  # refused (no account, not enough points...): nothing to present
                self.stats.stories["redemption_without_consent"] += 1
                return
            fields[CONSENT_FIELD] = consent["code"]
            fields["debit_account"] = consent.get("account_id") or acct
        await self.step(Redeem.model_validate(fields), self.cast.merchant(merchant))

    async def story_adjustment(self, rng: random.Random) -> None:
        """调整: the district points office awards a commendation (表彰) from a community's issuer
        account; one over ADJUST_APPROVAL_ABOVE points is approved by the second operator."""
        resident = rng.choice(self.d.residents)
        large = rng.random() < 0.3
        amount = rng.randint(ADJUST_APPROVAL_ABOVE + 1, 2 * ADJUST_APPROVAL_ABOVE) if large else rng.randint(5, 50)
        operator, second = self.cast.points_operator(0), self.cast.points_operator(1)
        transfer_id = self.new_id("adjust", rng)
        out = await self.step(Adjust(transfer_id=transfer_id, debit_account=account_id("issuer", resident.community_id),
                                     credit_account=account_id("resident", resident.person_id), amount=amount,
                                     operator_id=operator.sub, reason="见义勇为表彰"), operator)
        if out.rejected or out.timed_out:
            return
        approve = model_for(APPROVE_ADJUSTMENT)
        if large and approve is not None:
            out = await self.step(approve.model_validate({"transfer_id": transfer_id, "approver_id": second.sub}), second)
        if not out.rejected:
            self.earners.append(account_id("resident", resident.person_id))

    # -- patrols, reviews, periods ----------------------------------------------------------
    async def story_patrol(self, rng: random.Random) -> None:
        grid = rng.choice(self.d.grids)
        worker = self.cast.grid_worker(grid.grid_id)
        end = self.now() - timedelta(minutes=rng.randint(1, 30))
        await self.step(LogPatrol(patrol_id=self.new_id("patrol", rng), grid_id=grid.grid_id,
                                  grid_worker_id=worker.sub,
                                  started_at=end - timedelta(minutes=rng.randint(20, 90)), ended_at=end,
                                  notes="日常巡查"), worker)

    def reviews_for(self, period: str, rng: random.Random, tag: str = "") -> list[tuple[RecordReview, Actor]]:
        """双向评议 of one period: each unit is scored by its street and community, and scores them;
        each review with the office that records it (``recorded_by``, filled from its token): the
        community office records its community's reviews of units, the street office its street's
        and the units' reviews of its communities, the assessment office the units' reviews of
        streets (a street does not record opinions of itself).

        ``tag`` makes the review ids new (a later review of the same pair replaces the earlier one).
        """
        cast = self.cast
        out = []
        for u in self.d.units:
            street = cast.street_officer(u.street_id)
            for reviewer, rtype, by, by_unit in ((u.street_id, "street", street, cast.assessor()),
                                                 (u.community_id, "community", cast.community_officer(u.community_id),
                                                  street)):
                out.append((RecordReview(review_id=f"rv-{period}-{reviewer}-{u.unit_id}{tag}", reviewer_id=reviewer,
                                         reviewer_type=rtype, subject_type="unit", subject_id=u.unit_id,
                                         period=period, score=rng.randint(70, 100)), by))
                out.append((RecordReview(review_id=f"rv-{period}-{u.unit_id}-{reviewer}{tag}", reviewer_id=u.unit_id,
                                         reviewer_type="unit", subject_type=rtype, subject_id=reviewer,
                                         period=period, score=rng.randint(65, 100)), by_unit))
        return out

    async def story_review(self, rng: random.Random) -> None:
        period = month_label(self.now())
        await self.step(*rng.choice(self.reviews_for(period, rng, tag=f"-{rng.getrandbits(32):08x}")))

    async def month_end_reviews(self, period: str, rng: random.Random | None = None) -> int:
        """Month-end (结算) 双向评议: every unit and its street and community score each other."""
        rng = rng or self.rng_for(hash(period) & 0xFFFF)
        outs = await asyncio.gather(*(self.step(r, by) for r, by in self.reviews_for(period, rng)))
        return sum(1 for o in outs if not o.rejected and not o.timed_out)

    async def close_period(self, period: str) -> Outcome:
        """Close an ended period (scorecards, alerts); a re-close publishes only what changed."""
        out = await self.step(ClosePeriod(period=period), self.cast.assessor())
        if not out.rejected and not out.timed_out:
            self.stats.periods_closed.append(period)
        return out

    # -- bad input ----------------------------------------------------------------------------
    async def story_bad_input(self, rng: random.Random) -> None:
        """Input a service refuses for what it says, never for who sends it: each by someone
        who may send it (a refusal ``forbidden`` would be the simulator's fault)."""
        kind = rng.choice(["malformed_json", "unknown_grid", "illegal_transition", "skipped_step"])
        self.stats.bad_input[kind] += 1
        if kind == "malformed_json":
            svc = rng.choice(list(BY_SERVICE))
            await self.pace.take()
            await self.client.send_raw(BY_SERVICE[svc].intake.name, b'{"specversion": "1.0", "id": "broken',
                                       key="malformed")
        elif kind == "unknown_grid":  # a resident's app sends a grid id that is not in the register
            grid = rng.choice(self.d.grids)
            resident = rng.choice([r for r in self.d.residents if r.grid_id == grid.grid_id])
            await self.step(ReportCase(case_id=self.new_id("case", rng), grid_id=self.d.unknown_grid_id(),
                                       category=Category.OTHER, description="未知网格上报", location=self.location(grid.grid_id),
                                       reporter=Reporter(kind="resident", id=resident.person_id)),
                            self.cast.resident(resident))
        elif kind == "illegal_transition":  # the grid worker verifies a case nobody handled yet
            grid = rng.choice(self.d.grids)
            worker = self.cast.grid_worker(grid.grid_id)
            case_id = self.new_id("case", rng)
            out = await self.step(ReportCase(case_id=case_id, grid_id=grid.grid_id, category=Category.OTHER,
                                             description="井盖松动", location=self.location(grid.grid_id),
                                             reporter=Reporter(kind="grid_worker", id=worker.sub)), worker)
            if not out.rejected:
                await self.step(VerifyCase(case_id=case_id, passed=True, verifier_id=worker.sub), worker)
        else:  # the member an order was dispatched to reports it complete before accepting it
            resident = rng.choice(self.d.residents)
            order_id = self.new_id("order", rng)
            out = await self.step(PlaceOrder(order_id=order_id, resident_id=resident.person_id, grid_id=resident.grid_id,
                                             category=OrderCategory.POLICY, description="政策咨询"),
                                  self.cast.resident(resident))
            got = out.of_type(DISPATCHED)
            if not out.rejected and got:
                assignee = got[0].data["assignee_id"]
                await self.step(CompleteOrder(order_id=order_id, assignee_id=assignee, service_minutes=30,
                                              note="未接单先完成"), self.cast.member(assignee))

