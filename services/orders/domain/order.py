"""The order (服务订单) aggregate: 点单 → 派单 → 接单 → 考单 as a pure state machine.

Transitions (command → event, from which statuses)::

    PlaceOrder     → OrderPlaced            (no order yet; the same order again is a no-op)
    DispatchOrder  → OrderDispatched        placed | declined | dispatch_expired
    AcceptOrder    → OrderAccepted          dispatched, by the assignee, not after accept_by
    DeclineOrder   → OrderDeclined          dispatched, by the assignee
    (timer)        → OrderDispatchExpired   dispatched and now > accept_by   (check_expiry)
    CompleteOrder  → OrderCompleted         accepted, by the assignee
    RateOrder      → OrderRated             completed | evaluated, by the resident who placed it,
                                            once (the same rating again: no-op); status unchanged
    EvaluateOrder  → OrderEvaluated         completed, not by the assignee; without a rating it
                                            carries the resident's (``rating_required`` if none)
    CancelOrder    → OrderCancelled         any status before completed

Refusals: ``unknown_order``, ``order_exists``, ``illegal_transition``, ``not_assignee``,
``accept_window_closed``, ``accept_by_in_past``, ``assignee_not_eligible``,
``no_eligible_assignee``, ``self_evaluation``, ``already_rated``, ``rating_required``,
``community_mismatch`` (see ``errors``). A rating by anyone but the resident who placed the
order is refused as an unknown order (``unknown_order``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from schemas.codes import community_id_of, street_id_of
from schemas.common import Command, Event
from schemas.orders import (
    AUTO, AcceptOrder, CancelOrder, CompleteOrder, DeclineOrder, DispatchOrder, EvaluateOrder, OrderAccepted,
    OrderCancelled, OrderCompleted, OrderDeclined, OrderDispatched, OrderDispatchExpired, OrderEvaluated,
    OrderPlaced, OrderRated, PlaceOrder, RateOrder,
)

from services.kit.errors import rule_for

from .context import Candidate, Context
from .dispatch import choose, eligible_posts
from .errors import (
    AcceptByInPast, AcceptWindowClosed, AlreadyExists, AlreadyRated, AssigneeNotEligible, CommunityMismatch,
    IllegalTransition, NoEligibleAssignee, NotAssignee, NotFound, RatingRequired, SelfEvaluation,
)
from .state import AWAITING_DISPATCH, CANCELLABLE, RATABLE, OrderState, OrderStatus

_COMMAND_NAMES = {
    PlaceOrder: "place", DispatchOrder: "dispatch", AcceptOrder: "accept", DeclineOrder: "decline",
    CompleteOrder: "complete", RateOrder: "rate", EvaluateOrder: "evaluate", CancelOrder: "cancel",
}


# ---------------------------------------------------------------------------------------
# decide
# ---------------------------------------------------------------------------------------


def decide_order(state: OrderState | None, command: Command, ctx: Context) -> list[Event]:
    """The events a command on an order leads to, or a ``Rejected`` naming why not."""
    if isinstance(command, PlaceOrder):
        return _place(state, command, ctx)
    rule = rule_for(_RULES, command, "orders")
    if state is None:
        raise NotFound("order", command.aggregate_id, "order_id")
    return rule(state, command, ctx)


def _require(state: OrderState, command: Command, allowed: Iterable[OrderStatus]) -> None:
    if state.status not in allowed:
        raise IllegalTransition(_COMMAND_NAMES[type(command)], state.status.value)


def _require_assignee(state: OrderState, assignee_id: str) -> None:
    if assignee_id != state.assignee_id:
        raise NotAssignee(state.order_id, assignee_id, state.assignee_id)


def _place(state: OrderState | None, cmd: PlaceOrder, ctx: Context) -> list[Event]:
    community_id = community_id_of(cmd.grid_id)
    if cmd.community_id is not None and cmd.community_id != community_id:
        raise CommunityMismatch(cmd.community_id, cmd.grid_id)
    if state is not None:
        same = (
            state.resident_id == cmd.resident_id and state.grid_id == cmd.grid_id
            and state.category == cmd.category and state.description == cmd.description
            and state.source_case_id == cmd.source_case_id
        )
        if same:
            return []  # the same order placed twice (e.g. a grid event delivered again): once
        raise AlreadyExists("order", cmd.order_id, "order_id")
    placed = OrderPlaced(
        order_id=cmd.order_id, resident_id=cmd.resident_id, community_id=community_id, grid_id=cmd.grid_id,
        category=cmd.category, description=cmd.description, source_case_id=cmd.source_case_id,
        street_id=street_id_of(cmd.grid_id), at=ctx.now,
    )
    events: list[Event] = [placed]
    if ctx.auto_dispatch:
        events += auto_dispatch(evolve_order(None, placed), ctx)
    return events


def _dispatched(state: OrderState, post: Candidate, dispatched_by: str, accept_by: datetime, ctx: Context) -> OrderDispatched:
    return OrderDispatched(
        order_id=state.order_id, assignee_id=post.member_id, dispatched_by=dispatched_by, accept_by=accept_by,
        post_id=post.post_id, attempt=state.attempt + 1, at=ctx.now,
    )


def _dispatch(state: OrderState, cmd: DispatchOrder, ctx: Context) -> list[Event]:
    _require(state, cmd, AWAITING_DISPATCH)
    accept_by = cmd.accept_by or ctx.now + ctx.accept_window
    if accept_by <= ctx.now:
        raise AcceptByInPast(accept_by.isoformat())
    if cmd.automatic:
        post = choose(state, ctx.candidates, allow_over_capacity=ctx.allow_over_capacity)
        if post is None:
            raise NoEligibleAssignee(state.order_id, state.community_id, state.category.value)
        return [_dispatched(state, post, AUTO, accept_by, ctx)]
    assert cmd.assignee_id is not None and cmd.dispatched_by is not None
    posts = eligible_posts(state, ctx.candidates, cmd.assignee_id)
    if not posts:
        raise AssigneeNotEligible(cmd.assignee_id, state.community_id, state.category.value)
    # A community operator may override automatic preferences: declines, expiries and load.
    return [_dispatched(state, posts[0], cmd.dispatched_by, accept_by, ctx)]


def _accept(state: OrderState, cmd: AcceptOrder, ctx: Context) -> list[Event]:
    _require(state, cmd, {OrderStatus.DISPATCHED})
    _require_assignee(state, cmd.assignee_id)
    assert state.accept_by is not None
    if ctx.now > state.accept_by:
        raise AcceptWindowClosed(state.order_id, state.accept_by.isoformat())
    return [OrderAccepted(order_id=state.order_id, assignee_id=cmd.assignee_id, attempt=state.attempt, at=ctx.now)]


def _decline(state: OrderState, cmd: DeclineOrder, ctx: Context) -> list[Event]:
    _require(state, cmd, {OrderStatus.DISPATCHED})
    _require_assignee(state, cmd.assignee_id)
    declined = OrderDeclined(
        order_id=state.order_id, assignee_id=cmd.assignee_id, reason=cmd.reason, attempt=state.attempt, at=ctx.now,
    )
    events: list[Event] = [declined]
    if ctx.auto_dispatch:
        events += auto_dispatch(evolve_order(state, declined), ctx)
    return events


def _complete(state: OrderState, cmd: CompleteOrder, ctx: Context) -> list[Event]:
    _require(state, cmd, {OrderStatus.ACCEPTED})
    _require_assignee(state, cmd.assignee_id)
    return [
        OrderCompleted(
            order_id=state.order_id, assignee_id=cmd.assignee_id, service_minutes=cmd.service_minutes,
            note=cmd.note, at=ctx.now,
        )
    ]


def _rate(state: OrderState, cmd: RateOrder, ctx: Context) -> list[Event]:
    if cmd.resident_id != state.resident_id:  # not theirs: as if there were no such order
        raise NotFound("order", state.order_id, "order_id")
    _require(state, cmd, RATABLE)
    if state.resident_rating is not None:
        if (state.resident_rating, state.resident_comment) == (cmd.rating, cmd.comment):
            return []  # the same rating again (a retry): once
        raise AlreadyRated(state.order_id, state.resident_rating)
    return [OrderRated(order_id=state.order_id, resident_id=state.resident_id, rating=cmd.rating,
                       comment=cmd.comment, occurred_at=ctx.now)]


def _evaluate(state: OrderState, cmd: EvaluateOrder, ctx: Context) -> list[Event]:
    _require(state, cmd, {OrderStatus.COMPLETED})
    assert state.assignee_id is not None
    if cmd.evaluator_id == state.assignee_id:
        raise SelfEvaluation(cmd.evaluator_id)
    rating = cmd.rating if cmd.rating is not None else state.resident_rating
    if rating is None:
        raise RatingRequired(state.order_id)
    return [
        OrderEvaluated(
            order_id=state.order_id, assignee_id=state.assignee_id, rating=rating, passed=cmd.passed,
            evaluator_id=cmd.evaluator_id, community_id=state.community_id, grid_id=state.grid_id,
            category=state.category, service_minutes=state.service_minutes, resident_id=state.resident_id,
            comment=cmd.comment, at=ctx.now,
        )
    ]


def _cancel(state: OrderState, cmd: CancelOrder, ctx: Context) -> list[Event]:
    _require(state, cmd, CANCELLABLE)
    return [
        OrderCancelled(
            order_id=state.order_id, reason=cmd.reason, cancelled_by=cmd.cancelled_by, assignee_id=state.holder,
            at=ctx.now,
        )
    ]


_RULES: dict[type, Callable[[OrderState, Any, Context], list[Event]]] = {
    DispatchOrder: _dispatch, AcceptOrder: _accept, DeclineOrder: _decline, CompleteOrder: _complete,
    RateOrder: _rate, EvaluateOrder: _evaluate, CancelOrder: _cancel,
}
"""The rule of each command on an existing order."""


# ---------------------------------------------------------------------------------------
# automatic dispatch and expiry (called by the app's handlers and timers)
# ---------------------------------------------------------------------------------------


def auto_dispatch(state: OrderState | None, ctx: Context) -> list[Event]:
    """An automatic dispatch of a waiting order, or ``[]`` when it does not wait or nobody is eligible.

    Unlike ``DispatchOrder`` without assignee (which is refused with ``no_eligible_assignee``),
    a miss here is silent: the caller (re-dispatch after decline / expiry, retry when a post
    is claimed) counts it and the order keeps waiting.
    """
    if state is None or not state.awaiting_dispatch:
        return []
    post = choose(state, ctx.candidates, allow_over_capacity=ctx.allow_over_capacity)
    if post is None:
        return []
    return [_dispatched(state, post, AUTO, ctx.now + ctx.accept_window, ctx)]


def check_expiry(state: OrderState | None, now: datetime, ctx: Context | None = None) -> list[Event]:
    """``OrderDispatchExpired`` when the current dispatch passed ``accept_by`` unaccepted, else ``[]``.

    Yields the expiry once: after it is applied the order is no longer ``dispatched``, so a
    second check (or a timer that fires again after a restart) yields nothing. The event
    carries the dispatch ``attempt``, so an expiry for an earlier dispatch is ignored by
    ``evolve``. With a ``ctx`` whose ``auto_dispatch`` is set, the expiry is followed by an
    automatic re-dispatch when someone is eligible.
    """
    if state is None or state.status is not OrderStatus.DISPATCHED or state.accept_by is None:
        return []
    if now <= state.accept_by:
        return []
    assert state.assignee_id is not None
    expired = OrderDispatchExpired(
        order_id=state.order_id, assignee_id=state.assignee_id, accept_by=state.accept_by,
        attempt=state.attempt, at=now,
    )
    events: list[Event] = [expired]
    if ctx is not None and ctx.auto_dispatch:
        events += auto_dispatch(evolve_order(state, expired), ctx)
    return events


# ---------------------------------------------------------------------------------------
# evolve
# ---------------------------------------------------------------------------------------


def _current_dispatch(state: OrderState, assignee_id: str, attempt: int | None) -> bool:
    """True when an accept/decline/expiry event is about the order's current dispatch."""
    return (
        state.status is OrderStatus.DISPATCHED and state.assignee_id == assignee_id
        and (attempt is None or attempt == state.attempt)
    )


def evolve_order(state: OrderState | None, event: Event) -> OrderState:
    """The order after ``event``. Accept / decline / expiry of a dispatch that is no longer
    current (an earlier attempt, a timer race) leave the state unchanged."""
    if isinstance(event, OrderPlaced):
        if state is not None:
            return state
        return OrderState(
            order_id=event.order_id, status=OrderStatus.PLACED, resident_id=event.resident_id,
            community_id=event.community_id, grid_id=event.grid_id, category=event.category,
            description=event.description, source_case_id=event.source_case_id, placed_at=event.at,
        )
    if state is None:
        raise ValueError(f"{event.TYPE} for order {event.aggregate_id!r} that was never placed")
    if isinstance(event, OrderDispatched):
        return state.model_copy(update=dict(
            status=OrderStatus.DISPATCHED, assignee_id=event.assignee_id, post_id=event.post_id,
            dispatched_by=event.dispatched_by, accept_by=event.accept_by,
            attempt=event.attempt or state.attempt + 1, dispatched_at=event.at,
            first_dispatched_at=state.first_dispatched_at or event.at, accepted_at=None,
        ))
    if isinstance(event, (OrderAccepted, OrderDeclined, OrderDispatchExpired)):
        if not _current_dispatch(state, event.assignee_id, event.attempt):
            return state
        if isinstance(event, OrderAccepted):
            return state.model_copy(update=dict(status=OrderStatus.ACCEPTED, accepted_at=event.at))
        if isinstance(event, OrderDeclined):
            return _unassigned(state, OrderStatus.DECLINED, declined_by=_with(state.declined_by, event.assignee_id))
        return _unassigned(state, OrderStatus.DISPATCH_EXPIRED, expired_for=_with(state.expired_for, event.assignee_id))
    if isinstance(event, OrderCompleted):
        return state.model_copy(update=dict(
            status=OrderStatus.COMPLETED, service_minutes=event.service_minutes, completed_at=event.at,
        ))
    if isinstance(event, OrderRated):
        if state.resident_rating is not None:
            return state  # rated once
        return state.model_copy(update=dict(
            resident_rating=event.rating, resident_comment=event.comment, rated_at=event.occurred_at,
        ))
    if isinstance(event, OrderEvaluated):
        return state.model_copy(update=dict(
            status=OrderStatus.EVALUATED, rating=event.rating, passed=event.passed,
            evaluator_id=event.evaluator_id, evaluated_at=event.at,
        ))
    if isinstance(event, OrderCancelled):
        return state.model_copy(update=dict(
            status=OrderStatus.CANCELLED, cancel_reason=event.reason, cancelled_at=event.at,
        ))
    raise TypeError(f"not an order event: {type(event).__name__}")


def _unassigned(state: OrderState, status: OrderStatus, **update) -> OrderState:
    """The current dispatch ended without acceptance: the order waits for another assignee."""
    return state.model_copy(update=dict(status=status, assignee_id=None, post_id=None, accept_by=None, **update))


def _with(members: tuple[str, ...], member_id: str) -> tuple[str, ...]:
    return members if member_id in members else (*members, member_id)
