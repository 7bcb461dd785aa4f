"""Orders facts (四单式): orders placed, dispatched, accepted, declined, expired, completed and
evaluated; members' registration (双报到) and claimed posts (岗位认领).

An order counts for its community and street (from its placement, or the community / grid
an evaluation carries) and for its assignee: a registered member and the member's unit, or
a resident unit assigned directly. Each order fact is counted once per order — except
dispatches: each dispatch is an attempt (the inbox drops a re-delivered one by its envelope
id).
"""
from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Callable

from schemas import orders
from schemas.assessment import EntityType
from schemas.codes import community_id_of, street_id_of
from schemas.common import Event

from ..indicators import Fact
from .core import EventEffect, FactDelta, builds, increments
from .party import registered_after_overdue
from .refs import Entity, Lookup, MemberRef, OrderRef, UnitRef, area_entities


_orders_event = partial(builds, occurred="at")
"""Register a builder of orders events, which carry their instant in ``at``."""


def _order(e: Event, lookup: Lookup) -> OrderRef:
    """The stored ref of the event's order (or a new one), its missing place completed from the event."""
    return (lookup.order(e.order_id) or OrderRef(order_id=e.order_id)).placed_by(e)


def _area(ref: OrderRef) -> list[Entity]:
    return area_entities(None, ref.community_id or (community_id_of(ref.grid_id) if ref.grid_id else None))


def assignee_entities(assignee_id: str | None, lookup: Lookup) -> list[Entity]:
    """A registered member and their unit, or a unit assigned directly; else nothing."""
    if not assignee_id:
        return []
    m = lookup.member(assignee_id)
    if m is not None:
        out = [(EntityType.MEMBER.value, assignee_id)]
        if m.unit_id:
            out.append((EntityType.UNIT.value, m.unit_id))
        return out
    if lookup.unit(assignee_id) is not None:
        return [(EntityType.UNIT.value, assignee_id)]
    return []


_Counted = tuple[list[FactDelta], OrderRef]
"""What a builder of a fact counted once per order returns: the increments and its updated ref."""


def _once_per_order(cls: type[Event], flag: str):
    """Register ``count(e, at, ref, ents) -> (facts, ref)`` as the builder of ``cls``, a fact
    counted once per order: nothing when the order's ref has ``flag`` set, else the increments
    and the ref ``count`` returns, with ``flag`` set. ``ref`` is the order's ref, ``ents`` the
    order's area and its assignee."""

    def deco(count: Callable[..., _Counted]) -> Callable[..., _Counted]:
        @_orders_event(cls)
        def build(e, at: datetime, lookup: Lookup) -> EventEffect:
            ref = _order(e, lookup)
            if getattr(ref, flag):
                return EventEffect()
            facts, ref = count(e, at, ref, _area(ref) + assignee_entities(e.assignee_id, lookup))
            return EventEffect(facts, [ref.model_copy(update={flag: True})])

        return count

    return deco


@_orders_event(orders.OrderPlaced)
def order_placed(e: orders.OrderPlaced, at: datetime, lookup: Lookup) -> EventEffect:
    """点单: placed, for the community and street."""
    if lookup.order(e.order_id) is not None:
        return EventEffect()
    ref = _order(e, lookup)
    return EventEffect(increments(_area(ref), at, Fact.ORDERS_PLACED), [ref])


@_orders_event(orders.OrderDispatched)
def order_dispatched(e: orders.OrderDispatched, at: datetime, lookup: Lookup) -> EventEffect:
    """派单: every dispatch is an attempt, counted for the assignee too."""
    ref = _order(e, lookup)
    facts = increments(_area(ref) + assignee_entities(e.assignee_id, lookup), at, Fact.ORDERS_DISPATCHED)
    ref = ref.model_copy(update={"assignee_id": e.assignee_id, "dispatched_at": at, "accepted": False,
                                 "accepted_at": None})
    return EventEffect(facts, [ref])


@_once_per_order(orders.OrderAccepted, "accepted")
def order_accepted(e: orders.OrderAccepted, at: datetime, ref: OrderRef, ents: list[Entity]) -> _Counted:
    """接单, in the period of the dispatch."""
    facts = increments(ents, ref.dispatched_at or at, Fact.ORDERS_ACCEPTED)
    return facts, ref.model_copy(update={"accepted_at": at, "assignee_id": e.assignee_id})


_NOT_TAKEN = {orders.OrderDeclined: Fact.ORDERS_DECLINED, orders.OrderDispatchExpired: Fact.ORDERS_DISPATCH_EXPIRED}


@_orders_event(orders.OrderDeclined, orders.OrderDispatchExpired)
def order_not_taken(e: orders.OrderDeclined | orders.OrderDispatchExpired, at: datetime,
                    lookup: Lookup) -> EventEffect:
    """拒单 or 超时未接单: the dispatch stays counted, without acceptance; the order has no assignee."""
    ref = _order(e, lookup)
    facts = increments(_area(ref) + assignee_entities(e.assignee_id, lookup), at, _NOT_TAKEN[type(e)])
    return EventEffect(facts, [ref.model_copy(update={"assignee_id": None})])


@_once_per_order(orders.OrderCompleted, "completed")
def order_completed(e: orders.OrderCompleted, at: datetime, ref: OrderRef, ents: list[Entity]) -> _Counted:
    """服务完成, in the period of the acceptance, with the minutes of service."""
    when = ref.accepted_at or at
    facts = increments(ents, when, Fact.ORDERS_COMPLETED)
    return facts + increments(ents, when, Fact.SERVICE_MINUTES, float(e.service_minutes)), ref


@_once_per_order(orders.OrderEvaluated, "evaluated")
def order_evaluated(e: orders.OrderEvaluated, at: datetime, ref: OrderRef, ents: list[Entity]) -> _Counted:
    """考单: evaluated with its rating, and passed or not."""
    facts = increments(ents, at, Fact.ORDERS_EVALUATED) + increments(ents, at, Fact.RATING_SUM, float(e.rating))
    if e.passed:
        facts += increments(ents, at, Fact.ORDERS_PASSED)
    return facts, ref


@_orders_event(orders.MemberRegistered)
def member_registered(e: orders.MemberRegistered, at: datetime, lookup: Lookup) -> EventEffect:
    """双报到: counts reported (and due, 党员报到率) for the community, street and unit; a member
    the party service reported overdue is no longer (:func:`.party.registered_after_overdue`);
    the unit becomes known, placed where its first member reported unless it is placed already."""
    ref = MemberRef(member_id=e.member_id, community_id=e.community_id, unit_id=e.unit_id)
    facts, refs = registered_after_overdue(e.member_id, lookup)
    if lookup.member(e.member_id) == ref:
        return EventEffect(facts, refs)
    refs.append(ref)
    ents = area_entities(None, e.community_id)
    ents.append((EntityType.UNIT.value, e.unit_id))
    unit = lookup.unit(e.unit_id)
    if unit is None:
        refs.append(UnitRef(unit_id=e.unit_id, community_id=e.community_id, street_id=street_id_of(e.community_id),
                            known_at=at))
    elif unit.known_at is None or at < unit.known_at:
        refs.append(unit.model_copy(update={"known_at": at}))
    facts += increments(ents, at, Fact.MEMBERS_REPORTED) + increments(ents, at, Fact.MEMBERS_REPORT_DUE)
    return EventEffect(facts, refs)


@_orders_event(orders.PostClaimed)
def post_claimed(e: orders.PostClaimed, at: datetime, lookup: Lookup) -> EventEffect:
    """岗位认领: counts for the community and the member (and the member's unit)."""
    ents = area_entities(None, e.community_id) + assignee_entities(e.member_id, lookup)
    return EventEffect(increments(ents, at, Fact.POSTS_CLAIMED))
