"""The orders service's handler: its own commands (``orders.intake.v1`` and ``POST /v1/commands``),
the grid's registered resident-need cases (``grid.events.v1``) and the expiry timer, around the
pure domain.

For a batch, :meth:`OrdersHandler.load` locks and loads at once the orders, members and posts it
names; each message then decides on those states and :meth:`OrdersHandler._apply` evolves them,
keeps them and emits the events. The kit saves the changed states (state, version and query
columns, one upsert per kind) and then the order history and the dispatch misses
(:class:`~services.orders.projection.store.OrderLog`) when it flushes the unit of work.
Everything a message causes happens in the batch's transaction, including the automatic
dispatch after a placement, a decline or an expiry, and the retry of waiting orders when a
matching post is claimed (so a crash never leaves a claimed post next to an order that should
have had it).

The projection reads (dispatch candidates, waiting orders, the order of a grid case) see the
batch's own changes: the changed orders and posts are written just before them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel

from schemas.codes import community_id_of
from schemas.common import Command, Event
from schemas.envelope import Emitted
from schemas.grid import CaseRegistered
from schemas.orders import (
    AUTO, MEMBER_COMMANDS, ORDER_COMMANDS, POST_COMMANDS, AcceptOrder, CancelOrder, ClaimPost, CompleteOrder,
    DeclineOrder, DispatchOrder, EvaluateOrder, OrderAccepted, OrderCancelled, OrderCompleted, OrderDeclined,
    OrderDispatched, OrderDispatchExpired, OrderEvaluated, OrderPlaced, OrderRated, PlaceOrder, PostClaimed,
    ErasePerson, MoveMember, RateOrder, RegisterMember, ReleasePost,
)
from services.kit import erasure
from services.kit.aggregates import AggregateStore
from services.kit.errors import Rejected
from services.kit.handlers import Handler, handles, prepares
from services.kit.locks import advisory_locks
from services.kit.policy import Refused
from services.kit.uow import UnitOfWork
from services.orders.domain import (
    Candidate, Context, MemberState, NoEligibleAssignee, NotFound, OrderState, PostState, auto_dispatch, check_expiry,
    decide, evolve, is_resident_need, order_from_grid_case, order_id_for_case, post_can_serve, state_key,
)
from services.orders.projection import store
from services.orders.projection.store import MEMBERS, ORDERS, POSTS, OrderLog

from . import access
from . import metrics as mx
from .policy import POLICY
from .settings import OrdersSettings

S = TypeVar("S", bound=BaseModel)

STORES: dict[str, AggregateStore[Any]] = {"order": ORDERS, "member": MEMBERS, "post": POSTS}
"""Where each kind of aggregate (:func:`~services.orders.domain.state_key`) is kept."""

CREATES = (PlaceOrder, RegisterMember, ClaimPost)
"""The commands that may create their aggregate."""

MISS_TRIGGERS = frozenset({"place", "decline", "expiry"})
"""Automatic dispatches whose miss is counted (a retry on a post claim is not a new miss)."""

MAY_ACT: dict[type[Command], Callable[[Any, OrderState], bool]] = {
    DispatchOrder: access.may_manage, EvaluateOrder: access.may_manage,
    CancelOrder: access.may_close, RateOrder: access.placed_by,
    AcceptOrder: access.may_serve, DeclineOrder: access.may_serve, CompleteOrder: access.may_serve,
}
"""Whether the sender may act on the order a command names (:mod:`.access`); an order they may
not is refused exactly as an unknown one (``unknown_order``)."""


class CaseAlreadyOrdered(Rejected):
    """``case_already_ordered``: a grid case becomes exactly one order; another order id names the same case."""

    def __init__(self, case_id: str, order_id: str):
        super().__init__("case_already_ordered", f"grid case {case_id!r} is already order {order_id!r}",
                         "source_case_id")


class OrdersHandler(Handler):
    """Orders (点单 → 派单 → 接单 → 考单), members (双报到), posts (岗位认领) and grid cases."""

    service = "orders"
    policy = POLICY
    replayed = (OrderDispatched.TYPE,)  # a rebuild dispatches as the worker did (_as_the_worker_chose)

    def __init__(self, settings: OrdersSettings):
        self.settings = settings

    # -- the batch step ----------------------------------------------------------------

    @prepares(*ORDER_COMMANDS, *MEMBER_COMMANDS, *POST_COMMANDS, CaseRegistered)
    async def load(self, uow: UnitOfWork, payloads: Sequence[Command | CaseRegistered]) -> None:
        """Lock and load the states the batch names, one statement per kind in id order (so
        concurrent batches wait for each other instead of deadlocking). The ids a command may
        create, and the grid cases an order may be made from, are first locked by name: a row
        that does not exist yet cannot be locked."""
        ids: dict[str, set[str]] = {kind: set() for kind in STORES}
        names: set[str] = set()
        for p in payloads:
            if isinstance(p, CaseRegistered):
                if is_resident_need(p):
                    order_id = order_id_for_case(p.case_id)
                    ids["order"].add(order_id)
                    names |= {f"orders:order:{order_id}", f"orders:case:{p.case_id}"}
                continue
            kind, id = state_key(p)
            ids[kind].add(id)
            if isinstance(p, CREATES):
                names.add(f"orders:{kind}:{id}")
            if isinstance(p, PlaceOrder) and p.source_case_id is not None:
                names.add(f"orders:case:{p.source_case_id}")
        await advisory_locks(uow.conn, names)
        for kind, states in STORES.items():
            await states.of(uow).load(ids[kind])

    # -- commands: orders --------------------------------------------------------------

    @handles(PlaceOrder)
    async def place(self, uow: UnitOfWork, cmd: PlaceOrder) -> None:
        """点单, followed by an automatic dispatch. A grid case becomes an order through the grid's
        event only: a person's order naming one could take the case's place (and the case's
        resident would never get the order)."""
        if cmd.source_case_id is not None:
            raise Refused("forbidden", "an order is made from a grid case by the grid's event, not by a command",
                          "source_case_id")
        await self._place(uow, cmd)

    @handles(DispatchOrder)
    async def dispatch_order(self, uow: UnitOfWork, cmd: DispatchOrder) -> None:
        """派单 to the member named, or automatic when it names nobody."""
        try:
            await self._order_command(uow, cmd, candidates=True)
        except NoEligibleAssignee as e:
            raise e.after_commit(mx.AUTO_DISPATCH_MISSES.labels("command").inc)

    @handles(AcceptOrder, CompleteOrder, RateOrder, EvaluateOrder, CancelOrder)
    async def order_step(self, uow: UnitOfWork,
                         cmd: AcceptOrder | CompleteOrder | RateOrder | EvaluateOrder | CancelOrder) -> None:
        """The steps that need only the order itself: 接单 accept, 服务完成 complete (with the
        minutes served), the resident's rating, 考单 evaluate, 撤单 cancel before completion."""
        await self._order_command(uow, cmd)

    @handles(DeclineOrder)
    async def decline(self, uow: UnitOfWork, cmd: DeclineOrder) -> None:
        """A decline, followed by an automatic dispatch to someone else."""
        await self._order_command(uow, cmd, candidates=self.settings.auto_dispatch, trigger="decline")

    # -- commands: members and posts ---------------------------------------------------

    @handles(RegisterMember, MoveMember)
    async def register_member(self, uow: UnitOfWork, cmd: RegisterMember | MoveMember) -> None:
        """双报到, and a registered member's move to another residential community (the posts
        they hold stay theirs until they release them)."""
        self._decide(uow, MEMBERS, cmd.member_id, cmd, self._context(uow))

    @handles(ClaimPost)
    async def claim_post(self, uow: UnitOfWork, cmd: ClaimPost) -> None:
        """岗位认领, then a dispatch of the waiting orders the new post can serve."""
        member = await self._member(uow, cmd.member_id)
        post, events = self._decide(uow, POSTS, cmd.post_id, cmd, self._context(uow, member=member))
        if any(isinstance(e, PostClaimed) for e in events):
            await self._retry_waiting(uow, post)

    @handles(ReleasePost)
    async def release_post(self, uow: UnitOfWork, cmd: ReleasePost) -> None:
        """A post given up by its holder (the orders it holds stay with the member). Another
        member's post is refused as an unknown one."""
        post = POSTS.of(uow).get(cmd.post_id)
        principal = uow.principal
        if post is not None and (principal is None or post.member_id != principal.sub):
            raise NotFound("post", cmd.post_id, "post_id")
        self._decide(uow, POSTS, cmd.post_id, cmd, self._context(uow))

    # -- erasure -----------------------------------------------------------------------

    @handles(ErasePerson)
    async def erase_person(self, uow: UnitOfWork, cmd: ErasePerson) -> None:
        """擦除: the person's id becomes a pseudonym, their words go."""
        from . import erasure as orders_erasure

        await erasure.erase(uow, cmd.person_id, orders_erasure.scrub)

    @handles(*erasure.other_services_erased("orders"))
    async def person_erased(self, uow: UnitOfWork, event) -> None:
        """Another service erased a person: erase the orders service's copy under the same pseudonym."""
        from . import erasure as orders_erasure

        await erasure.erase(uow, event.person_id, orders_erasure.scrub, pseudonym=event.pseudonym,
                            origin=event.service())

    # -- reactions: the grid's cases ---------------------------------------------------

    @handles(CaseRegistered)
    async def case_registered(self, uow: UnitOfWork, case: CaseRegistered) -> None:
        """A registered resident-need case (群众需求) becomes exactly one order.

        The order id is derived from the case id, so a grid event delivered twice, republished
        under a new event id, or a case registered again later all find the order already there.
        A resident-need case that cannot become an order raises (the record goes to the DLQ).
        """
        cmd = order_from_grid_case(case)
        if cmd is None or ORDERS.of(uow).get(cmd.order_id) is not None:
            return  # not a resident need, or already this order
        try:
            await self._place(uow, cmd)
        except CaseAlreadyOrdered:
            return  # a command placed an order naming this case before

    # -- timers ------------------------------------------------------------------------

    async def expire_dispatches(self, uow: UnitOfWork) -> int:
        """Dispatches past ``accept_by`` expire (超时未接单) and are dispatched again when someone
        is eligible; returns how many due orders this round took.

        Safe on several workers and after restarts: the due orders are locked ``SKIP LOCKED``
        (another round has the rest), and ``check_expiry`` yields nothing for an order that is
        no longer dispatched.
        """
        due = await store.due_for_expiry(uow.conn, uow.now, self.settings.expiry_batch)
        ORDERS.of(uow).adopt(due)
        for order_id, (_, order) in due.items():
            await self._expire(uow, order_id, order)
        return len(due)

    async def expire_orders(self, uow: UnitOfWork, order_ids: Sequence[str]) -> None:
        """What a round of :meth:`expire_dispatches` did to these orders, done again at
        ``uow.now`` (a rebuild runs each round that published, among the messages of its batch)."""
        orders = ORDERS.of(uow)
        await orders.load(order_ids)  # one query for the round, in the order locks are taken
        for order_id in order_ids:
            if (order := orders.get(order_id)) is not None:
                await self._expire(uow, order_id, order)

    async def _expire(self, uow: UnitOfWork, order_id: str, order: OrderState) -> None:
        cands = await self._candidates(uow, order.community_id, order_id) if self.settings.auto_dispatch else ()
        self._apply_order(uow, order_id, check_expiry(order, uow.now, self._context(uow, cands)), trigger="expiry")

    # -- shared steps ------------------------------------------------------------------

    def _context(self, uow: UnitOfWork, candidates: Sequence[Candidate] = (), *,
                 member: MemberState | None = None) -> Context:
        s = self.settings
        return Context(now=uow.now, accept_window=s.accept_window, candidates=tuple(candidates),
                       auto_dispatch=s.auto_dispatch, allow_over_capacity=s.allow_over_capacity, member=member)

    def _apply(self, uow: UnitOfWork, states: AggregateStore[S], id: str, events: Sequence[Event],
               observe: Callable[[Any, Any, Event], None] | None = None) -> tuple[S | None, list[Emitted]]:
        """Evolve the state of ``id`` by ``events`` (``observe(before, after, event)`` sees each
        step), keep it for the flush and emit the events. Returns the new state and the envelopes."""
        loaded = states.of(uow)
        state: Any = loaded.get(id)
        for e in events:
            after = evolve(state, e)
            if observe is not None:
                observe(state, after, e)
            state = after
        if not events:
            return state, []
        loaded.put(id, state)
        return state, uow.emit_all(events)

    def _decide(self, uow: UnitOfWork, states: AggregateStore[S], id: str, cmd: Command,
                ctx: Context) -> tuple[S | None, list[Event]]:
        """Decide ``cmd`` on the state of ``id`` and apply the events."""
        events = decide(states.of(uow).get(id), cmd, ctx)  # type: ignore[arg-type]
        return self._apply(uow, states, id, events)[0], events

    def _apply_order(self, uow: UnitOfWork, order_id: str, events: Sequence[Event], *, trigger: str,
                     origin: str = "resident") -> None:
        """:meth:`_apply` to an order, with its metrics, its history and the count of a miss
        (an automatic dispatch that found nobody: the order keeps waiting)."""
        new, emitted = self._apply(uow, ORDERS, order_id, events,
                                   lambda before, after, e: uow.after_commit(partial(_observe, before, after, e, origin)))
        if not emitted:
            return
        order_log = OrderLog.of(uow)
        order_log.record(emitted)
        if trigger in MISS_TRIGGERS and self.settings.auto_dispatch and new is not None and new.awaiting_dispatch:
            uow.after_commit(mx.AUTO_DISPATCH_MISSES.labels(trigger).inc)
            order_log.miss(order_id, uow.now)

    async def _order_command(self, uow: UnitOfWork, cmd: Command, *, candidates: bool = False,
                             trigger: str = "command") -> None:
        order = ORDERS.of(uow).get(cmd.aggregate_id)
        if order is not None and not MAY_ACT[type(cmd)](uow.principal, order):
            raise NotFound("order", cmd.aggregate_id, "order_id")
        cands = await self._candidates(uow, order.community_id, order.order_id) if candidates and order is not None \
            else ()
        events = decide(order, cmd, self._context(uow, cands))
        self._apply_order(uow, cmd.aggregate_id, events, trigger=trigger)

    async def _place(self, uow: UnitOfWork, cmd: PlaceOrder) -> None:
        """点单 (from a resident's command or a grid case), followed by an automatic dispatch."""
        state = ORDERS.of(uow).get(cmd.order_id)
        if state is None and cmd.source_case_id is not None:
            existing = _order_for_case(uow, cmd.source_case_id) or await store.order_for_case(uow.conn,
                                                                                                cmd.source_case_id)
            if existing is not None and existing != cmd.order_id:
                raise CaseAlreadyOrdered(cmd.source_case_id, existing)
        cands = await self._candidates(uow, community_id_of(cmd.grid_id), cmd.order_id) if state is None else ()
        events = decide(state, cmd, self._context(uow, cands))
        self._apply_order(uow, cmd.order_id, events, trigger="place",
                          origin="grid_case" if cmd.source_case_id else "resident")

    async def _retry_waiting(self, uow: UnitOfWork, post: PostState | None) -> None:
        """A post was claimed: dispatch the waiting orders it can serve (oldest first)."""
        if not self.settings.auto_dispatch or post is None:
            return
        waiting = await store.waiting_orders(await self._written(uow), post, self.settings.retry_on_claim_limit)
        orders = ORDERS.of(uow)
        await orders.load(waiting)
        for order_id in waiting:
            order = orders.get(order_id)
            if order is None or not post_can_serve(post, order):
                continue
            cands = await self._candidates(uow, order.community_id, order_id)
            self._apply_order(uow, order_id, auto_dispatch(order, self._context(uow, cands)), trigger="claim")

    # -- shared steps: reads -----------------------------------------------------------

    async def _written(self, uow: UnitOfWork) -> Any:
        """The connection, once the batch's changed orders and posts are written (for a
        projection read to see them)."""
        for states in (ORDERS, POSTS):
            await states.of(uow).flush(uow)
        return uow.conn

    async def _candidates(self, uow: UnitOfWork, community_id: str, order_id: str) -> tuple[Candidate, ...]:
        """The posts that may take ``order_id`` (the community's), as the worker saw them.

        Replayed with the worker's choice known (:func:`_as_the_worker_chose`), the members'
        open orders count for nothing, so only the posts are read, and the batch's orders are not
        written first (a rebuild of the orders wrote them after nearly every message for this)."""
        if uow.live_events(OrderDispatched.TYPE) is not None:
            await POSTS.of(uow).flush(uow)
            return _as_the_worker_chose(uow, order_id, await store.candidates(uow.conn, community_id, load=False))
        return _as_the_worker_chose(uow, order_id, await store.candidates(await self._written(uow), community_id))

    async def _member(self, uow: UnitOfWork, member_id: str) -> MemberState | None:
        """A member's state, as this batch has it or as committed (read, not locked: a
        registration never changes)."""
        members = MEMBERS.of(uow)
        if member_id in members:
            return members.get(member_id)
        found = await MEMBERS.read(uow.conn, [member_id], lock=False)
        return found[member_id][1] if member_id in found else None


def _order_for_case(uow: UnitOfWork, case_id: str) -> str | None:
    """The order made from grid case ``case_id`` among the batch's orders, written or not. A
    case's order keeps its case, so what the batch has not written yet is all the projection
    lacks: asked after this, it need not have the batch's orders written first."""
    return ORDERS.of(uow).find("source_case_id", case_id)


def _as_the_worker_chose(uow: UnitOfWork, order_id: str, candidates: tuple[Candidate, ...]) -> tuple[Candidate, ...]:
    """Replayed by a rebuild, a dispatch goes to the post the worker gave the order to, and
    nowhere when it gave it to nobody (the expiry timer's rounds included, which the rebuild
    runs again): an automatic choice weighs the members' open orders, which a replay rebuilds
    only as far as the topics tell (a round that ran within the same moment as a batch may
    have seen it or not), so it takes the choice the worker made. The post the worker chose
    counts as having room, as it had then."""
    live = uow.live_events(OrderDispatched.TYPE)
    if live is None:  # handled live, or the rebuild knows nothing this message caused
        return candidates
    posts = {e.get("post_id") for e in live if e.get("order_id") == order_id}
    return tuple(c.model_copy(update={"open_orders": 0}) for c in candidates if c.post_id in posts)


def _seconds(later, earlier) -> float | None:
    if later is None or earlier is None:
        return None
    return max((later - earlier).total_seconds(), 0.0)


def _observe(before: OrderState | None, after: OrderState | None, e: Event, origin: str) -> None:
    """Domain metrics of one applied order event."""
    if isinstance(e, OrderPlaced):
        mx.PLACED.labels(origin).inc()
    elif isinstance(e, OrderDispatched):
        mx.DISPATCHED.labels("auto" if e.dispatched_by == AUTO else "manual").inc()
        if before is not None and before.first_dispatched_at is None:
            t = _seconds(e.at, before.placed_at)
            if t is not None:
                mx.TIME_TO_DISPATCH.observe(t)
    elif isinstance(e, OrderAccepted):
        if before is not after:
            mx.ACCEPTED.inc()
            t = _seconds(e.at, before.dispatched_at if before else None)
            if t is not None:
                mx.TIME_TO_ACCEPT.observe(t)
    elif isinstance(e, OrderDeclined):
        mx.DECLINED.inc()
    elif isinstance(e, OrderDispatchExpired):
        mx.EXPIRED.inc()
    elif isinstance(e, OrderCompleted):
        mx.COMPLETED.inc()
        t = _seconds(e.at, before.placed_at if before else None)
        if t is not None:
            mx.TIME_TO_COMPLETE.observe(t)
    elif isinstance(e, OrderRated):
        mx.RATED.labels(str(e.rating)).inc()
    elif isinstance(e, OrderEvaluated):
        mx.EVALUATED.labels("true" if e.passed else "false").inc()
    elif isinstance(e, OrderCancelled):
        mx.CANCELLED.inc()
