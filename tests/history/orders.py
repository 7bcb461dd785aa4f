"""Orders (四单式) of a generated history, decided by the orders domain as the worker decides them.

In-service Party members register with their residential community (双报到) and claim service
posts (岗位认领: categories, a weekly capacity); some posts are released later. Orders come from
two places: a grid case of category ``resident_need`` becomes one order when it is registered
(``order_from_grid_case``, the order id derived from the case id), and residents order services
directly (居民点单). Every order is dispatched automatically at once (社区派单: ``decide`` with the
community's candidates, the worker's default settings: a 24-hour acceptance window, automatic
dispatch, no dispatch over capacity); the assignee accepts (干部接单), declines (the order is
dispatched again to someone else) or lets the window pass (the expiry timer's
``check_expiry``, then a dispatch again); an order nobody could take waits, is dispatched by an
officer by hand, or is taken when a matching post is claimed (the worker's retry); served
orders are completed with their minutes, most are rated by their resident and evaluated by an
officer (组织考单: mostly passed); a few are cancelled first. Everything happens in time order
across all orders (dispatch reads each member's open orders at that moment), nothing after the
end of the history: the newest orders are still open at every stage.

What the worker would hold comes out as the rows of ``orders``, ``order_history``, ``members``
and ``posts`` (state, version: one save per message that changed it, and the query columns of
the service's own aggregate stores), the events it published (:class:`~tests.history.topics.Pub`),
and the earnings of the passed orders for the points ledger.
"""
from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from schemas.codes import community_id_of
from schemas.grid import CaseRegistered
from schemas.orders import (
    AcceptOrder, CancelOrder, ClaimPost, CompleteOrder, DeclineOrder, DispatchOrder, EvaluateOrder, OrderAccepted,
    OrderCategory, OrderCompleted, OrderDispatched, OrderEvaluated, OrderPlaced, PlaceOrder, RateOrder,
    RegisterMember, ReleasePost,
)
from services.kit.errors import Rejected
from services.orders.app.settings import OrdersSettings
from services.orders.domain import (
    Candidate, Context, MemberState, OrderState, PostState, auto_dispatch, candidates_from_posts, check_expiry, decide,
    eligible_posts, evolve, order_from_grid_case, post_can_serve,
)
from services.orders.projection.store import MEMBERS, ORDERS, POSTS
from services.points.domain import earning_from_order
from services.points.domain.transfers import Earning

from .topics import Pub, Sender, Spill, community_officer, next_round

DIRECT_ORDERS_AT_FULL_SCALE = 525_000
"""Residents' own orders at SCALE 1.0; with the resident-need cases of the grid, about 1 M orders."""
MEMBERS_AT_FULL_SCALE = 3_000
MIN_MEMBERS_PER_COMMUNITY = 6
SOURCE = "/services/orders"
MISS_TRIGGERS = frozenset({"place", "decline", "expiry"})  # as the worker counts dispatch misses

_DEFAULTS = OrdersSettings.model_fields
ACCEPT_WINDOW = timedelta(seconds=_DEFAULTS["accept_window_seconds"].default)
EXPIRY_INTERVAL = _DEFAULTS["expiry_interval_seconds"].default
RETRY_LIMIT = _DEFAULTS["retry_on_claim_limit"].default
CATEGORIES = list(OrderCategory)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class OrdersWorld:
    """The orders worker's aggregates over the history, decided in time order."""

    def __init__(self, plan: Any, rng: random.Random, seq: itertools.count):
        self.plan, self.rng, self.seq = plan, rng, seq
        grids: dict[str, list[str]] = defaultdict(list)
        from services.grid.registry import GridRegister
        for g in sorted(GridRegister.load().grid_ids):
            grids[community_id_of(g)].append(g)
        self.grids = dict(grids)
        self.communities = sorted(self.grids)
        self.orders: dict[str, OrderState] = {}
        self.saves: Counter = Counter()  # (kind, id) -> saves
        self.misses: dict[str, tuple[int, datetime]] = {}
        self.members: dict[str, MemberState] = {}
        self.posts: dict[str, PostState] = {}
        self.load: Counter = Counter()  # member -> orders dispatched to or accepted by them
        self.serving: dict[tuple[str, OrderCategory], dict[str, None]] = defaultdict(dict)
        self.active_posts: dict[str, list[str]] = defaultdict(list)  # member -> active post ids
        self._cands: dict[str, tuple[Candidate, ...]] = {}
        self.waiting: dict[str, dict[str, None]] = defaultdict(dict)  # community -> orders awaiting dispatch
        self.pubs = Spill()  # on disk, in time order: a large district's orders events do not fit in memory
        self.intake = Spill()  # the commands, as their senders sent them on the intake topic
        self.order_events = 0  # the orders' own events among them (order_history's rows)
        self.earnings = Spill(key=earning_key)  # (seq, earning, story): see :func:`earning_key`
        self.facts: dict[str, list[Any]] = {}  # order id -> [category, community, minutes] (points' order_facts)
        self._queue: list[tuple[datetime, int, str, Any]] = []
        self._n = 0

    # -- the schedule -----------------------------------------------------------------------

    def _at(self, at: datetime, what: str, arg: Any) -> None:
        if at <= self.plan.end:
            self._n += 1
            heapq.heappush(self._queue, (at, self._n, what, arg))

    def _later(self, at: datetime, lo_minutes: float, hi_minutes: float) -> datetime:
        return at + timedelta(minutes=self.rng.uniform(lo_minutes, hi_minutes))

    def plan_members(self) -> None:
        """Members register (most at the start, the rest over the years) and claim a post or
        two each, covering between them every category in every community."""
        plan, rng = self.plan, self.rng
        n = max(MIN_MEMBERS_PER_COMMUNITY * len(self.communities), round(MEMBERS_AT_FULL_SCALE * plan.scale))
        span = (plan.end - plan.start).total_seconds()
        posts = 0
        for i in range(n):
            community = self.communities[i % len(self.communities)]
            k = i // len(self.communities)  # the member's place in their community
            at = plan.start + timedelta(seconds=rng.uniform(0, 7 * 86400) if rng.random() < 0.7
                                        else rng.uniform(0, span))
            member_id = f"pm-{i:06d}"
            unit = rng.randrange(40)
            self._at(at, "register", RegisterMember(member_id=member_id, community_id=community,
                                                    unit_id=f"unit-{unit:03d}", name=f"党员{i}",
                                                    unit_name=f"驻区单位{unit}"))
            claimed = at
            for p in range(1 if rng.random() < 0.7 else 2):
                claimed = self._later(claimed, 30, 60 * 24 * 7)
                cats = {CATEGORIES[(3 * k + j) % len(CATEGORIES)] for j in range(3)} if p == 0 else set()
                cats |= set(rng.sample(CATEGORIES, rng.randint(1, 3)))
                post_id = f"post-{posts:06d}"
                posts += 1
                self._at(claimed, "claim", ClaimPost(member_id=member_id, post_id=post_id, community_id=community,
                                                     categories=sorted(cats, key=CATEGORIES.index),
                                                     capacity=rng.randint(2, 6), title="志愿服务岗"))
                if rng.random() < 0.1:
                    released = self._later(claimed, 60 * 24 * 30, 60 * 24 * 900)
                    self._at(released, "release", ReleasePost(member_id=member_id, post_id=post_id,
                                                              reason="工作调动"))

    def plan_direct_orders(self, n: int | None = None) -> None:
        """Residents' own orders (``n``, else as many as the scale gives), at random times over the history."""
        plan, rng = self.plan, self.rng
        n = n if n is not None else max(10, round(DIRECT_ORDERS_AT_FULL_SCALE * plan.scale))
        span = (plan.end - plan.start).total_seconds()
        weights = [3 if c in (OrderCategory.DAILY_CARE, OrderCategory.REPAIR, OrderCategory.CLEANING) else 1
                   for c in CATEGORIES]
        for i in range(n):
            community = self.communities[rng.randrange(len(self.communities))]
            grid = self.grids[community][rng.randrange(len(self.grids[community]))]
            at = plan.start + timedelta(seconds=rng.random() * span)
            self._at(at, "place", PlaceOrder(
                order_id=f"ord-{i:08d}", resident_id=f"res-{rng.randrange(plan.residents):07d}", grid_id=grid,
                category=rng.choices(CATEGORIES, weights)[0], description="需要上门服务"))

    def plan_case(self, case: CaseRegistered, event_id: str, story: str | None, at: datetime) -> None:
        """A registered grid case, as the orders worker receives it a few seconds later (planned
        only if it becomes an order: five years of cases would not fit in memory)."""
        at = min(at + timedelta(seconds=self.rng.uniform(0.5, 5)), self.plan.end)
        cmd = order_from_grid_case(case)
        if cmd is not None:
            self._at(at, "case", (cmd, event_id, story or event_id))

    def planned_orders(self) -> int:
        """Orders planned so far (a grid case's is left out if its order exists by then: see :meth:`_case`)."""
        return sum(1 for q in self._queue if q[2] in ("place", "case"))

    def run(self, progress=None, task=None) -> None:
        """Everything planned, in time order (what a step leads to is planned as it happens)."""
        while self._queue:
            at, _, what, arg = heapq.heappop(self._queue)
            at = at.astimezone(timezone.utc)  # the worker's clock is UTC, and so are the times it writes
            self.pubs.release(at)  # what is handled from now on is published at ``at`` or later
            self.intake.release(at)
            self.earnings.release(at)
            getattr(self, f"_{what}")(at, arg)
            if progress is not None and what in ("place", "case"):
                progress.advance(task)

    # -- members and posts --------------------------------------------------------------------

    def _ctx(self, at: datetime, candidates: tuple[Candidate, ...] = (), member: MemberState | None = None) -> Context:
        return Context(now=at, accept_window=ACCEPT_WINDOW, candidates=candidates, auto_dispatch=True,
                       allow_over_capacity=False, member=member)

    def _sent(self, at: datetime, cmd: Any) -> str:
        """A command its sender sent at ``at`` on the intake topic (one the worker handled with
        an outcome: a command it would refuse is not sent); its id."""
        cid = _uuid(self.rng)
        self.intake.add(Pub(at, next(self.seq), "orders", cid, cmd, sender=sender_of(cmd)))
        return cid

    def _publish(self, at: datetime, events: list, cause: str | None, story: str | None) -> list[Pub]:
        pubs = [Pub(at, next(self.seq), "orders", _uuid(self.rng), e, cause, story) for e in events]
        for p in pubs:
            self.pubs.add(p)
            self.order_events += p.payload.TYPE.startswith("orders.order.")
        return pubs

    def _register(self, at: datetime, cmd: RegisterMember) -> None:
        events = decide(self.members.get(cmd.member_id), cmd, self._ctx(at))
        cid = self._sent(at, cmd)
        for e in events:
            self.members[cmd.member_id] = evolve(self.members.get(cmd.member_id), e)
        if events:
            self.saves[("member", cmd.member_id)] += 1
        self._publish(at, events, cid, cid)

    def _claim(self, at: datetime, cmd: ClaimPost) -> None:
        member = self.members.get(cmd.member_id)
        if member is None:  # claimed before the registration was handled: refused (unknown_member)
            return
        events = decide(self.posts.get(cmd.post_id), cmd, self._ctx(at, member=member))
        if not events:
            return
        cid = self._sent(at, cmd)
        self._publish(at, events, cid, cid)
        post = evolve(self.posts.get(cmd.post_id), events[0])
        self._save_post(post)
        self.active_posts[post.member_id].append(post.post_id)
        for c in post.categories:
            self.serving[(post.community_id, c)][post.member_id] = None
        self._cands.pop(post.member_id, None)
        self._retry_waiting(at, post, cid)

    def _release(self, at: datetime, cmd: ReleasePost) -> None:
        post = self.posts.get(cmd.post_id)
        if post is None or not post.active:
            return
        events = decide(post, cmd, self._ctx(at))
        cid = self._sent(at, cmd)
        self._publish(at, events, cid, cid)
        post = evolve(post, events[0])
        self._save_post(post)
        member = post.member_id
        self.active_posts[member].remove(post.post_id)
        still = {c for p in self.active_posts[member] for c in self.posts[p].categories}
        for c in post.categories:
            if c not in still:
                self.serving[(post.community_id, c)].pop(member, None)
        self._cands.pop(member, None)

    def _save_post(self, post: PostState) -> None:
        self.posts[post.post_id] = post
        self.saves[("post", post.post_id)] += 1

    def _retry_waiting(self, at: datetime, post: PostState, cause: str) -> None:
        """The worker's retry when a post is claimed: the waiting orders it could serve, oldest first."""
        waiting = [self.orders[o] for o in self.waiting[post.community_id]]
        cats = set(post.categories)
        waiting = sorted((o for o in waiting if o.category in cats), key=lambda o: (o.placed_at, o.order_id))
        for order in waiting[:RETRY_LIMIT]:
            order = self.orders[order.order_id]
            if not post_can_serve(post, order):
                continue
            ctx = self._ctx(at, self._candidates(order.community_id, order.category))
            self._apply(at, order.order_id, auto_dispatch(order, ctx), cause, cause, trigger="claim")

    # -- dispatch candidates ------------------------------------------------------------------

    def _candidates(self, community_id: str, category: OrderCategory) -> tuple[Candidate, ...]:
        """The community's active posts with their members' open orders, as the worker reads
        them, less the members with no post for the order's category (whom no dispatch could
        choose); each remaining member with all their posts (their capacity is the sum)."""
        out: list[Candidate] = []
        for member in self.serving.get((community_id, category), {}):
            cands = self._cands.get(member)
            if cands is None:
                cands = self._cands[member] = candidates_from_posts(
                    [self.posts[p] for p in self.active_posts[member]], {member: self.load[member]})
            out += cands
        return tuple(out)

    # -- orders -----------------------------------------------------------------------------

    def _place(self, at: datetime, cmd: PlaceOrder) -> None:
        cid = self._sent(at, cmd)
        self._place_order(at, cmd, cid, cid)

    def _case(self, at: datetime, arg: tuple[PlaceOrder, str, str]) -> None:
        cmd, event_id, story = arg
        if cmd.order_id not in self.orders:
            self._place_order(at, cmd, event_id, story)

    def _place_order(self, at: datetime, cmd: PlaceOrder, cause: str, story: str) -> None:
        events = decide(None, cmd, self._ctx(at, self._candidates(community_id_of(cmd.grid_id), cmd.category)))
        self._apply(at, cmd.order_id, events, cause, story, trigger="place")
        if self.rng.random() < 0.04:  # the resident withdraws it (if it is not completed by then)
            self._at(self._later(at, 30, 60 * 72), "cancel", (cmd.order_id, cmd.resident_id, "需求已解决"))

    def _command(self, at: datetime, cmd: Any, *, candidates: bool = False, trigger: str = "command") -> None:
        """A command on an existing order (a refusal changes nothing: the worker answers it)."""
        order = self.orders[cmd.order_id]
        ctx = self._ctx(at, self._candidates(order.community_id, order.category) if candidates else ())
        try:
            events = decide(order, cmd, ctx)
        except Rejected:
            return
        if not events:  # the worker would answer no_change
            return
        cid = self._sent(at, cmd)
        self._apply(at, cmd.order_id, events, cid, cid, trigger=trigger)

    def _respond(self, at: datetime, arg: tuple[str, int, str]) -> None:
        order_id, attempt, answer = arg
        order = self.orders[order_id]
        if order.status.value != "dispatched" or order.attempt != attempt:
            return
        if answer == "accept":
            self._command(at, AcceptOrder(order_id=order_id, assignee_id=order.assignee_id))
        else:
            self._command(at, DeclineOrder(order_id=order_id, assignee_id=order.assignee_id, reason="时间冲突"),
                          candidates=True, trigger="decline")

    def _expire(self, at: datetime, order_id: str) -> None:
        """The expiry timer's round that finds this dispatch past its window."""
        order = self.orders[order_id]
        events = check_expiry(order, at, self._ctx(at, self._candidates(order.community_id, order.category)))
        self._apply(at, order_id, events, None, None, trigger="expiry")

    def _manual(self, at: datetime, order_id: str) -> None:
        """An officer looks at an order nobody could take: dispatches it to an eligible member
        by hand (over their capacity if need be), or cancels it when nobody serves it."""
        order = self.orders[order_id]
        if not order.awaiting_dispatch:
            return
        officer = f"officer-{order.community_id}"
        cands = self._candidates(order.community_id, order.category)
        members = sorted({c.member_id for c in cands})
        if members:
            m = members[self.rng.randrange(len(members))]
            assert eligible_posts(order, cands, m)
            self._command(at, DispatchOrder(order_id=order_id, assignee_id=m, dispatched_by=officer),
                          candidates=True)
        else:
            self._command(at, CancelOrder(order_id=order_id, reason="暂无党员认领该类服务", cancelled_by=officer))

    def _cancel(self, at: datetime, arg: tuple[str, str, str]) -> None:
        order_id, by, reason = arg
        if self.orders[order_id].is_open:
            self._command(at, CancelOrder(order_id=order_id, reason=reason, cancelled_by=by))

    def _complete(self, at: datetime, arg: tuple[str, int]) -> None:
        order_id, attempt = arg
        order = self.orders[order_id]
        if order.status.value == "accepted" and order.attempt == attempt:
            self._command(at, CompleteOrder(order_id=order_id, assignee_id=order.assignee_id,
                                            service_minutes=self.rng.randint(20, 240), note="服务完成"))

    def _rate(self, at: datetime, order_id: str) -> None:
        order = self.orders[order_id]
        self._command(at, RateOrder(order_id=order_id, resident_id=order.resident_id,
                                    rating=self.rng.choice((5, 5, 5, 4, 4, 3, 2))))

    def _evaluate(self, at: datetime, order_id: str) -> None:
        order = self.orders[order_id]
        rng = self.rng
        rating = None if order.resident_rating is not None and rng.random() < 0.7 else rng.choice((5, 4, 4, 3))
        self._command(at, EvaluateOrder(order_id=order_id, rating=rating, passed=rng.random() < 0.93,
                                        evaluator_id=f"officer-{order.community_id}"))

    def _apply(self, at: datetime, order_id: str, events: list, cause: str | None, story: str | None, *,
               trigger: str) -> None:
        """Evolve the order by ``events`` as the worker does (load, waiting list, one save,
        a counted miss), publish them, and plan what each leads to."""
        if not events:
            return
        before = state = self.orders.get(order_id)
        for e in events:
            state = evolve(state, e)
        self.orders[order_id] = state
        self.saves[("order", order_id)] += 1
        held_before = before.holder if before is not None else None
        if held_before != state.holder:
            for m, d in ((held_before, -1), (state.holder, 1)):
                if m is not None:
                    self.load[m] += d
                    self._cands.pop(m, None)
        if state.awaiting_dispatch:
            self.waiting[state.community_id][order_id] = None
            if trigger in MISS_TRIGGERS:
                n, _ = self.misses.get(order_id, (0, at))
                self.misses[order_id] = (n + 1, at)
                self._at(self._later(at, 120, 60 * 48), "manual", order_id)
        else:
            self.waiting[state.community_id].pop(order_id, None)
        rng = self.rng
        for p in self._publish(at, events, cause, story):
            e = p.payload
            if isinstance(e, OrderPlaced):
                self.facts[order_id] = [e.category.value, e.community_id, None]
            elif isinstance(e, OrderDispatched):
                r = rng.random()
                if r < 0.82:
                    self._at(self._later(at, 5, 60 * 20), "respond", (order_id, e.attempt, "accept"))
                elif r < 0.90:
                    self._at(self._later(at, 10, 60 * 20), "respond", (order_id, e.attempt, "decline"))
                else:  # no answer: the timer's first round after the window finds it (a round at
                    # every multiple of its interval, as the worker's; a rebuild runs it again)
                    self._at(next_round(e.accept_by, EXPIRY_INTERVAL), "expire", order_id)
            elif isinstance(e, OrderAccepted):
                self._at(self._later(at, 60, 60 * 96), "complete", (order_id, e.attempt))
            elif isinstance(e, OrderCompleted):
                self.facts[order_id][2] = e.service_minutes
                if rng.random() < 0.7:
                    self._at(self._later(at, 10, 60 * 48), "rate", order_id)
                if rng.random() < 0.97:
                    self._at(self._later(at, 60 * 24, 60 * 24 * 7), "evaluate", order_id)
            elif isinstance(e, OrderEvaluated):
                earning = earning_from_order(e, facts=None, source=SOURCE, event_id=p.id, occurred_at=at)
                if earning is not None:
                    self.earnings.add((p.seq, earning, p.story))

    # -- rows ---------------------------------------------------------------------------------

    def order_rows(self, updated_at: datetime) -> tuple[list[str], list[tuple]]:
        """``orders`` rows: the aggregate store's columns, then the dispatch misses."""
        cols = ["order_id", "version", "state", *ORDERS.columns, "dispatch_misses", "last_miss_at", "updated_at"]
        fns = [fn for _, fn in ORDERS.columns.values()]
        rows = []
        for order_id, s in self.orders.items():
            misses, last = self.misses.get(order_id, (0, None))
            rows.append((order_id, self.saves[("order", order_id)], s.model_dump_json(), *(fn(s) for fn in fns),
                         misses, last, updated_at))
        return cols, rows

    def member_rows(self, updated_at: datetime) -> tuple[list[str], list[tuple]]:
        return self._rows(MEMBERS, "member", self.members, updated_at)

    def post_rows(self, updated_at: datetime) -> tuple[list[str], list[tuple]]:
        return self._rows(POSTS, "post", self.posts, updated_at)

    def _rows(self, store, kind: str, states: dict[str, Any], updated_at: datetime) -> tuple[list[str], list[tuple]]:
        cols = [store.id_column, "version", "state", *store.columns, "updated_at"]
        fns = [fn for _, fn in store.columns.values()]
        return cols, [(i, self.saves[(kind, i)], s.model_dump_json(), *(fn(s) for fn in fns), updated_at)
                      for i, s in states.items()]

    def history_rows(self) -> Iterator[tuple]:
        """``order_history``: every order event (``order_events`` of them) in the order the worker applied them."""
        return ((p.payload.order_id, p.id, p.payload.TYPE, p.at, p.payload.__pydantic_serializer__.to_json(
            p.payload).decode()) for p in self.pubs if p.payload.TYPE.startswith("orders.order."))


def sender_of(cmd: Any) -> Sender:
    """Who sends an orders command, as the worker's policy wants them: an officer of the
    community registers members, dispatches, evaluates and cancels what nobody serves; the
    member claims and releases their posts and answers what is dispatched to them; the resident
    places, rates and cancels their own orders."""
    if isinstance(cmd, RegisterMember):
        return community_officer(cmd.community_id)
    if isinstance(cmd, (ClaimPost, ReleasePost)):
        return Sender(cmd.member_id, ("party_member",))
    if isinstance(cmd, (AcceptOrder, DeclineOrder, CompleteOrder)):
        return Sender(cmd.assignee_id, ("party_member",))
    if isinstance(cmd, (PlaceOrder, RateOrder)):
        return Sender(cmd.resident_id, ("resident",))
    actor = {DispatchOrder: "dispatched_by", EvaluateOrder: "evaluator_id", CancelOrder: "cancelled_by"}[type(cmd)]
    sub = getattr(cmd, actor)
    if sub.startswith("officer-"):
        return community_officer(sub[len("officer-"):])
    return Sender(sub, ("resident",))  # a resident cancelling their own order


def earning_key(x: tuple[int, Earning, str | None]) -> tuple[datetime, int]:
    """The order of ``(seq, earning, story)`` in a spill of earnings: their time, then the ``seq``
    of the event that earns (the order they were made in)."""
    return x[1].occurred_at, x[0]
