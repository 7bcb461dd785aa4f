"""The district's stories: what residents, grid workers, members, merchants and consoles do.

A story is a short coroutine that plays one real-world flow through the public interface
only — commands to intake topics, outcomes followed by ``causationid`` (see
:mod:`.client`). Stories branch on what the services answer (a case dismissed as a duplicate,
an order declined or expired, a redemption refused for lack of points) exactly like a field
app would. Randomness comes from one seeded :class:`random.Random` per story, so a story's
choices are reproducible from the simulator seed and the story number.

Story kinds and their weights are :data:`MIX`; :func:`pick_kind` chooses one. Every command
passes through :meth:`Stories.step`, which waits for the simulator's pace (RATE per second).

Every command is sent by the person or office that really sends it
(:class:`~.identities.Cast`), with their own token, and names them in its actor fields: a grid
worker reports in their grid and verifies its cases, the community office (``cw-<community>``)
registers, dispatches, evaluates orders, reviews deeds, opens residents' accounts and records
its reviews of units, the street office (``so-<street>``) escalates and records its street's and
its units' reviews, the department's officer handles,
the resident gives feedback on their own report, places and rates orders, submits deeds and gives the
consent code a merchant's redemption presents, the Party member acts on their own posts and
orders, two points operators adjust and approve, the assessment office closes periods. The
services refuse anything else; a run of the simulator is refused nothing for lack of
a right (``forbidden`` / ``unauthenticated``): the launcher's summary flags such refusals.
"""
from __future__ import annotations

import asyncio
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
    CaseFeedback, Category, DispatchCase, EscalateCase, Grade, HandleCase, Location, LogPatrol, RegisterCase,
    ReportCase, Reporter, VerifyCase,
)
from schemas.orders import (
    AcceptOrder, ClaimPost, CompleteOrder, DeclineOrder, DispatchOrder, EvaluateOrder, OrderCategory, PlaceOrder,
    RateOrder, RegisterMember,
)
from schemas.points import Adjust, OpenAccount, Redeem, ReviewDeed, SubmitDeed
from schemas.registry import model_for
from schemas.topics import BY_SERVICE

from services.grid.registry import DepartmentRegister
from services.kit import clock
from services.kit.clock import month_label

from .client import Outcome
from .district import District, account_id
from .identities import Actor, Cast

log = logging.getLogger("simulator.flows")

DISPATCHED = "orders.order.dispatched.v1"
EXPIRED = "orders.order.dispatch_expired.v1"

# Story kinds and their relative weights (a modest, realistic mix; bad input ~4%).
MIX: dict[str, float] = {
    "hazard": 14, "dispute": 10, "environment": 8, "resident_need": 8, "order": 18, "deed": 14,
    "redemption": 8, "patrol": 10, "review": 4, "adjustment": 2, "bad_input": 4,
}
ADJUST_APPROVAL_ABOVE = 100  # an adjustment of more points takes effect when a second operator approves it
APPROVE_ADJUSTMENT = "points.adjust.approve.v1"  # {transfer_id, approver_id}; sent when the contract has it
RATE_SHARE = 0.85  # the share of completed orders their resident rates (评价) before the 考单
RATING_COMMENTS = {5: "非常满意", 4: "满意", 3: "一般", 2: "不太满意"}
CONSENT_FIELD = "consent_code"  # of points.redeem.v1: the resident's code (POST /v1/redemption-codes)

REGISTER = DepartmentRegister.load()  # the grid service's department register (services/grid/registry)
DEFAULT_DEPARTMENT_CODE = "cgw"  # 区城管委, for a street the register does not list
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


class Stories:
    """The story library, bound to a district, a client, a pace and the simulated clock."""

    def __init__(self, district: District, client: Client, *, pace: Pace | NoPace | None = None,
                 seed: int = 7, follow_timeout: float = 20.0, expire_wait: float = 90.0,
                 now: Callable[[], datetime] | None = None):
        self.d = district
        self.client = client
        self.pace = pace or NoPace()
        self.seed = seed
        self.follow_timeout = follow_timeout
        self.expire_wait = expire_wait
        self._now = now or clock.now
        self.stats = Stats()
        self._n = 0
        self._slot = 0  # location lattice slot, so unrelated reports are never within 250 m
        self.earners: list[str] = []  # accounts that earned points (deeds, resident reports, passed orders)
        self.cast = Cast(district)  # who sends what (each with their own token)
        self.tasks: set[asyncio.Task] = set()

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
        # the department the grid's register names for the case (its 权责清单); dispatch to any other is refused
        code = GridCode.parse(grid.grid_id)
        department = (REGISTER.responsible(category, grade, code.street_id)
                      or f"{code.division}.{DEFAULT_DEPARTMENT_CODE}")
        handler = cast.department_officer(department)
        then = on_register(case_id) if on_register is not None else None  # listen before sending
        out = await self.step(RegisterCase(case_id=case_id, department=department, registrar_id=office.sub), office)
        if out.rejected or out.timed_out:
            return None
        if by_resident:  # a registered resident report earns points (道德银行)
            self.earners.append(account_id("resident", reporter.id))
        if then is not None:
            await then()
        out = await self.step(DispatchCase(case_id=case_id, department=department, assignee_id=handler.sub,
                                           dispatcher_id=office.sub), office)
        if out.rejected or out.timed_out:
            return None
        if escalate:  # a complex dispute goes to joint mediation by the departments (联合调解): the street decides
            street = cast.street_officer(grid.street_id)
            await self.step(EscalateCase(case_id=case_id, reason="涉及多个部门，需要联合调解", joint_mediation=True,
                                         requested_by=street.sub), street)
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
        # feedback (回访) comes from the resident who reported; a grid worker's report has none
        if rng.random() < 0.7 and by_resident:
            satisfaction = rng.choices(["satisfied", "basically_satisfied", "unsatisfied"], weights=[70, 22, 8])[0]
            await self.step(CaseFeedback(case_id=case_id, satisfaction=satisfaction, reporter_id=reporter.id),
                            reporter_actor)
        return case_id

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
                if await self.client.wait_for(expired, timeout=self.expire_wait) is None:
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
