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

from schemas.assessment import EntityType
from schemas.codes import community_id_of, street_id_of
from schemas.orders import (
    MemberRegistered,
    OrderAccepted,
    OrderCompleted,
    OrderDeclined,
    OrderDispatched,
    OrderDispatchExpired,
    OrderEvaluated,
    OrderPlaced,
    PostClaimed,
)

from ..indicators import Fact
from .core import EventEffect, builds, increments
from .refs import Entity, Lookup, MemberRef, OrderRef, Ref, UnitRef, area_entities


def _orders_event(*classes: type):
    """Register a builder of orders events, which carry their instant in ``at``."""
    return builds(*classes, occurred=lambda e: e.at)


def _order(order_id: str, lookup: Lookup, community_id: str | None = None, grid_id: str | None = None) -> OrderRef:
    """The stored ref (or a new one), its missing place completed from the event."""
    ref = lookup.order(order_id) or OrderRef(order_id=order_id)
    place = {k: v for k, v in (("community_id", community_id), ("grid_id", grid_id)) if v and getattr(ref, k) is None}
    return ref.model_copy(update=place) if place else ref


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


@_orders_event(OrderPlaced)
def order_placed(e: OrderPlaced, at: datetime, lookup: Lookup) -> EventEffect:
    """点单: placed, for the community and street."""
    if lookup.order(e.order_id) is not None:
        return EventEffect()
    ref = _order(e.order_id, lookup, e.community_id, e.grid_id)
    return EventEffect(increments(_area(ref), at, Fact.ORDERS_PLACED), [ref])


@_orders_event(OrderDispatched)
def order_dispatched(e: OrderDispatched, at: datetime, lookup: Lookup) -> EventEffect:
    """派单: every dispatch is an attempt, counted for the assignee too."""
    ref = _order(e.order_id, lookup)
    facts = increments(_area(ref) + assignee_entities(e.assignee_id, lookup), at, Fact.ORDERS_DISPATCHED)
    ref = ref.model_copy(update={"assignee_id": e.assignee_id, "dispatched_at": at, "accepted": False,
                                 "accepted_at": None})
    return EventEffect(facts, [ref])


@_orders_event(OrderAccepted)
def order_accepted(e: OrderAccepted, at: datetime, lookup: Lookup) -> EventEffect:
    """接单, in the period of the dispatch."""
    ref = _order(e.order_id, lookup)
    if ref.accepted:
        return EventEffect()
    ents = _area(ref) + assignee_entities(e.assignee_id, lookup)
    facts = increments(ents, ref.dispatched_at or at, Fact.ORDERS_ACCEPTED)
    return EventEffect(facts, [ref.model_copy(update={"accepted": True, "accepted_at": at,
                                                      "assignee_id": e.assignee_id})])


_NOT_TAKEN = {OrderDeclined: Fact.ORDERS_DECLINED, OrderDispatchExpired: Fact.ORDERS_DISPATCH_EXPIRED}


@_orders_event(OrderDeclined, OrderDispatchExpired)
def order_not_taken(e: OrderDeclined | OrderDispatchExpired, at: datetime, lookup: Lookup) -> EventEffect:
    """拒单 or 超时未接单: the dispatch stays counted, without acceptance; the order has no assignee."""
    ref = _order(e.order_id, lookup)
    facts = increments(_area(ref) + assignee_entities(e.assignee_id, lookup), at, _NOT_TAKEN[type(e)])
    return EventEffect(facts, [ref.model_copy(update={"assignee_id": None})])


@_orders_event(OrderCompleted)
def order_completed(e: OrderCompleted, at: datetime, lookup: Lookup) -> EventEffect:
    """服务完成, in the period of the acceptance, with the minutes of service."""
    ref = _order(e.order_id, lookup)
    if ref.completed:
        return EventEffect()
    ents = _area(ref) + assignee_entities(e.assignee_id, lookup)
    when = ref.accepted_at or at
    facts = increments(ents, when, Fact.ORDERS_COMPLETED) + increments(ents, when, Fact.SERVICE_MINUTES,
                                                                       float(e.service_minutes))
    return EventEffect(facts, [ref.model_copy(update={"completed": True})])


@_orders_event(OrderEvaluated)
def order_evaluated(e: OrderEvaluated, at: datetime, lookup: Lookup) -> EventEffect:
    """考单: evaluated with its rating, and passed or not."""
    ref = _order(e.order_id, lookup, e.community_id, e.grid_id)
    if ref.evaluated:
        return EventEffect()
    ents = _area(ref) + assignee_entities(e.assignee_id, lookup)
    facts = increments(ents, at, Fact.ORDERS_EVALUATED) + increments(ents, at, Fact.RATING_SUM, float(e.rating))
    if e.passed:
        facts += increments(ents, at, Fact.ORDERS_PASSED)
    return EventEffect(facts, [ref.model_copy(update={"evaluated": True})])


@_orders_event(MemberRegistered)
def member_registered(e: MemberRegistered, at: datetime, lookup: Lookup) -> EventEffect:
    """双报到: counts for the community, street and unit; places the unit where its first
    member reported."""
    ref = MemberRef(member_id=e.member_id, community_id=e.community_id, unit_id=e.unit_id)
    if lookup.member(e.member_id) == ref:
        return EventEffect()
    refs: list[Ref] = [ref]
    ents = area_entities(None, e.community_id)
    ents.append((EntityType.UNIT.value, e.unit_id))
    if lookup.unit(e.unit_id) is None:
        refs.append(UnitRef(unit_id=e.unit_id, community_id=e.community_id, street_id=street_id_of(e.community_id)))
    return EventEffect(increments(ents, at, Fact.MEMBERS_REPORTED), refs)


@_orders_event(PostClaimed)
def post_claimed(e: PostClaimed, at: datetime, lookup: Lookup) -> EventEffect:
    """岗位认领: counts for the community and the member (and the member's unit)."""
    ents = area_entities(None, e.community_id) + assignee_entities(e.member_id, lookup)
    return EventEffect(increments(ents, at, Fact.POSTS_CLAIMED))
