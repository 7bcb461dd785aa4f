"""The orders service's application layer: load state, call the pure domain, save, project, emit.

- :class:`OrderCommands` — the service's own commands (``orders.intake.v1`` and ``POST /v1/commands``);
- :class:`GridCases`     — reactions to ``grid.events.v1``: a registered resident-need case → one order;
- :func:`expire_dispatches` — the timer: dispatches past ``accept_by`` expire and are re-dispatched.

All three share :class:`Orders`, which applies an aggregate's new events in the unit of work:
state row + projection columns (one upsert), order history, outbox, metrics. Everything a
message causes happens in the batch's transaction, including the automatic dispatch after a
placement, a decline or an expiry, and the retry of waiting orders when a matching post is
claimed (so a crash never leaves a claimed post next to an order that should have had it).
"""
from __future__ import annotations

import logging
from functools import partial
from collections.abc import Sequence
from typing import Any

import asyncpg

from schemas.common import Command, Event, community_of
from schemas.envelope import Message
from schemas.grid import CaseRegistered
from schemas.orders import (
    AUTO,
    MEMBER_COMMANDS,
    ORDER_COMMANDS,
    POST_COMMANDS,
    ClaimPost,
    DeclineOrder,
    DispatchOrder,
    OrderAccepted,
    OrderCancelled,
    OrderCompleted,
    OrderDeclined,
    OrderDispatched,
    OrderDispatchExpired,
    OrderEvaluated,
    OrderPlaced,
    PlaceOrder,
    PostClaimed,
)
from services.kit.errors import Rejected
from services.kit.uow import Handler, UnitOfWork, on
from services.orders.domain import (
    Candidate,
    Context,
    MemberState,
    NoEligibleAssignee,
    OrderState,
    PostState,
    auto_dispatch,
    check_expiry,
    decide,
    evolve,
    order_from_grid_case,
    post_can_serve,
)
from services.orders.projection import store

from . import metrics as mx
from .settings import OrdersSettings

log = logging.getLogger("orders.handler")

ORDER_TYPES = tuple(c.TYPE for c in ORDER_COMMANDS)
MEMBER_TYPES = tuple(c.TYPE for c in MEMBER_COMMANDS)
POST_TYPES = tuple(c.TYPE for c in POST_COMMANDS)

MISS_TRIGGERS = frozenset({"place", "decline", "expiry"})
"""Automatic dispatches whose miss is counted (a retry on a post claim is not a new miss)."""


class CaseAlreadyOrdered(Rejected):
    """``case_already_ordered``: a grid case becomes exactly one order; another order id names the same case."""

    def __init__(self, case_id: str, order_id: str):
        super().__init__("case_already_ordered", f"grid case {case_id!r} is already order {order_id!r}",
                         "source_case_id")


async def _creation_lock(conn: asyncpg.Connection, kind: str, id: str) -> None:
    """Serialise the creation of one aggregate id across transactions (rows that do not exist yet
    cannot be row-locked)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"orders:{kind}:{id}")


class Orders:
    """Shared application logic: contexts, applying order events, automatic dispatch retries."""

    def __init__(self, settings: OrdersSettings):
        self.settings = settings

    # -- context -------------------------------------------------------------------------
    def context(self, uow: UnitOfWork, candidates: Sequence[Candidate] = (), *, auto: bool | None = None,
                member: MemberState | None = None) -> Context:
        s = self.settings
        return Context(now=uow.now, accept_window=s.accept_window, candidates=tuple(candidates),
                       auto_dispatch=s.auto_dispatch if auto is None else auto,
                       allow_over_capacity=s.allow_over_capacity, member=member)

    # -- applying order events -----------------------------------------------------------
    async def apply_order(self, uow: UnitOfWork, cause: Message | None, state: OrderState | None,
                          events: Sequence[Event], *, trigger: str, origin: str = "resident") -> OrderState | None:
        """Evolve, save (state + projection), record history, emit, count. Returns the new state."""
        new = state
        for e in events:
            before = new
            new = evolve(new, e)  # type: ignore[assignment]
            uow.after_commit(partial(_observe, before, new, e, origin))
        if events:
            assert new is not None
            await store.save_order(uow.conn, new)
            envelopes = uow.emit_all(events, cause=cause)
            await store.record_history(uow.conn, envelopes)
        if (trigger in MISS_TRIGGERS and self.settings.auto_dispatch and events and new is not None
                and new.awaiting_dispatch):
            uow.after_commit(mx.AUTO_DISPATCH_MISSES.labels(trigger).inc)
            await store.record_miss(uow.conn, new.order_id, uow.now)
        return new

    async def place(self, uow: UnitOfWork, cause: Message, cmd: PlaceOrder, *, origin: str) -> None:
        """点单 (from a resident's command or a grid case), followed by an automatic dispatch."""
        conn = uow.conn
        await _creation_lock(conn, "order", cmd.order_id)
        state = await store.load_order(conn, cmd.order_id)
        if state is None and cmd.source_case_id is not None:
            existing = await store.order_for_case(conn, cmd.source_case_id)
            if existing is not None and existing != cmd.order_id:
                raise CaseAlreadyOrdered(cmd.source_case_id, existing)
        cands = await store.candidates(conn, community_of(cmd.grid_id)) if state is None else ()
        events = decide(state, cmd, self.context(uow, cands))
        await self.apply_order(uow, cause, state, events, trigger="place", origin=origin)

    async def retry_waiting(self, uow: UnitOfWork, cause: Message | None, post: PostState) -> int:
        """A post was claimed: dispatch the waiting orders it could serve (oldest first). Returns dispatches."""
        if not self.settings.auto_dispatch:
            return 0
        done = 0
        for order in await store.waiting_orders_for(uow.conn, post, self.settings.retry_on_claim_limit):
            if not post_can_serve(post, order):
                continue
            cands = await store.candidates(uow.conn, order.community_id)
            events = auto_dispatch(order, self.context(uow, cands))
            if events:
                await self.apply_order(uow, cause, order, events, trigger="claim")
                done += 1
        return done


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
    elif isinstance(e, OrderEvaluated):
        mx.EVALUATED.labels("true" if e.passed else "false").inc()
    elif isinstance(e, OrderCancelled):
        mx.CANCELLED.inc()


class OrderCommands(Handler):
    """The orders service's own commands: orders, members (双报到) and posts (岗位认领)."""

    service = "orders"

    def __init__(self, orders: Orders):
        self.orders = orders

    async def handle_batch(self, uow: UnitOfWork, messages: Sequence[Message]) -> None:
        # Lock the batch's existing rows up front, in id order: concurrent batches (another
        # worker, the HTTP path) then wait for each other instead of deadlocking.
        ids: dict[str, set[str]] = {"order": set(), "member": set(), "post": set()}
        for msg in messages:
            p: Any = msg.payload
            if msg.type in ORDER_TYPES:
                ids["order"].add(p.order_id)
            elif msg.type in MEMBER_TYPES:
                ids["member"].add(p.member_id)
            elif msg.type in POST_TYPES:
                ids["post"].add(p.post_id)
        await store.lock(uow.conn, "orders", "order_id", ids["order"])
        await store.lock(uow.conn, "posts", "post_id", ids["post"])
        await store.lock(uow.conn, "members", "member_id", ids["member"])
        await super().handle_batch(uow, messages)

    @on(*ORDER_TYPES)
    async def order_command(self, uow: UnitOfWork, msg: Message) -> None:
        cmd: Command = msg.payload
        if isinstance(cmd, PlaceOrder):
            await self.orders.place(uow, msg, cmd, origin="grid_case" if cmd.source_case_id else "resident")
            return
        conn = uow.conn
        state = await store.load_order(conn, cmd.order_id)  # type: ignore[attr-defined]
        needs_candidates = state is not None and (
            isinstance(cmd, DispatchOrder) or (isinstance(cmd, DeclineOrder) and self.orders.settings.auto_dispatch))
        cands = await store.candidates(conn, state.community_id) if needs_candidates else ()
        try:
            events = decide(state, cmd, self.orders.context(uow, cands))
        except NoEligibleAssignee:
            uow.after_commit(mx.AUTO_DISPATCH_MISSES.labels("command").inc)
            raise
        trigger = "decline" if isinstance(cmd, DeclineOrder) else "command"
        await self.orders.apply_order(uow, msg, state, events, trigger=trigger)

    @on(*MEMBER_TYPES)
    async def member_command(self, uow: UnitOfWork, msg: Message) -> None:
        cmd: Any = msg.payload
        await _creation_lock(uow.conn, "member", cmd.member_id)
        state = await store.load_member(uow.conn, cmd.member_id)
        events = decide(state, cmd, self.orders.context(uow))
        if not events:
            return
        new = state
        for e in events:
            new = evolve(new, e)  # type: ignore[assignment]
        await store.save_member(uow.conn, new)  # type: ignore[arg-type]
        uow.emit_all(events, cause=msg)

    @on(*POST_TYPES)
    async def post_command(self, uow: UnitOfWork, msg: Message) -> None:
        cmd: Any = msg.payload
        conn = uow.conn
        member = None
        if isinstance(cmd, ClaimPost):
            await _creation_lock(conn, "post", cmd.post_id)
            member = await store.load_member(conn, cmd.member_id, lock=False)
        state = await store.load_post(conn, cmd.post_id)
        events = decide(state, cmd, self.orders.context(uow, member=member))
        if not events:
            return
        new: PostState | None = state
        for e in events:
            new = evolve(new, e)  # type: ignore[assignment]
        assert new is not None
        await store.save_post(conn, new)
        uow.emit_all(events, cause=msg)
        if any(isinstance(e, PostClaimed) for e in events):
            await self.orders.retry_waiting(uow, msg, new)


class GridCases(Handler):
    """Reactions to grid events: a registered resident-need case (群众需求) becomes exactly one order.

    The order id is derived from the case id, so a grid event delivered twice, republished
    under a new event id, or a case registered again later all find the order already there.
    A resident-need case that cannot become an order raises (the record goes to the DLQ).
    """

    service = "orders"

    def __init__(self, orders: Orders):
        self.orders = orders

    @on(CaseRegistered.TYPE)
    async def case_registered(self, uow: UnitOfWork, msg: Message) -> None:
        data = {**msg.data(), **msg.payload.model_dump(mode="json", exclude_none=True)}
        cmd = order_from_grid_case(data)
        if cmd is None:
            return  # not a resident need
        assert cmd.source_case_id is not None
        await _creation_lock(uow.conn, "order", cmd.order_id)
        if await store.order_for_case(uow.conn, cmd.source_case_id) is not None:
            return  # this case already became an order
        if await store.load_order(uow.conn, cmd.order_id) is not None:
            return
        await self.orders.place(uow, msg, cmd, origin="grid_case")


async def expire_dispatches(uow: UnitOfWork, orders: Orders) -> int:
    """Timer: dispatches past ``accept_by`` expire (超时未接单) and are dispatched again when someone is eligible.

    Safe on several workers and after restarts: due rows are taken ``FOR UPDATE SKIP LOCKED``
    and ``check_expiry`` yields nothing for an order that is no longer dispatched.
    """
    due = await store.due_for_expiry(uow.conn, uow.now, orders.settings.expiry_batch)
    for order in due:
        cands = await store.candidates(uow.conn, order.community_id) if orders.settings.auto_dispatch else ()
        events = check_expiry(order, uow.now, orders.context(uow, cands))
        await orders.apply_order(uow, None, order, events, trigger="expiry")
    return len(due)
