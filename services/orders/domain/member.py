"""The member (在职党员) aggregate: 双报到 — registration with the residential community and the work unit.

    RegisterMember → MemberRegistered   (no member yet; the same registration again is a no-op)
    MoveMember     → MemberMoved        (a registered member now lives in another community: from
                                         then on they report there, by ``report_by``; the same
                                         community again is a no-op)

Refusals: ``member_exists`` (the id is registered with another community or unit: a member who
moved is moved, not registered again), ``unknown_member`` (a move of a member never registered),
``report_by_in_past`` (a move's deadline that has already passed).
"""
from __future__ import annotations

from datetime import timedelta

from schemas.common import Command, Event
from schemas.orders import MOVE_REPORT_DAYS, MemberMoved, MemberRegistered, MoveMember, RegisterMember

from .context import Context
from .errors import AlreadyExists, NotFound, ReportByInPast
from .state import MemberState


def decide_member(state: MemberState | None, command: Command, ctx: Context) -> list[Event]:
    """The events a member command leads to, or a ``Rejected``."""
    if isinstance(command, MoveMember):
        return _move(state, command, ctx)
    if not isinstance(command, RegisterMember):
        raise TypeError(f"not a member command: {type(command).__name__}")
    if state is not None:
        if (state.community_id, state.unit_id) == (command.community_id, command.unit_id):
            return []
        raise AlreadyExists("member", command.member_id, "member_id")
    return [
        MemberRegistered(
            member_id=command.member_id, community_id=command.community_id, unit_id=command.unit_id,
            name=command.name, unit_name=command.unit_name, at=ctx.now,
        )
    ]


def _move(state: MemberState | None, command: MoveMember, ctx: Context) -> list[Event]:
    if state is None:
        raise NotFound("member", command.member_id, "member_id")
    if state.community_id == command.community_id:
        return []
    report_by = command.report_by or ctx.now + timedelta(days=MOVE_REPORT_DAYS)
    if report_by <= ctx.now:
        raise ReportByInPast(report_by.isoformat())
    return [
        MemberMoved(
            member_id=command.member_id, community_id=command.community_id, from_community_id=state.community_id,
            unit_id=state.unit_id, report_by=report_by, occurred_at=ctx.now,
        )
    ]


def evolve_member(state: MemberState | None, event: Event) -> MemberState:
    """The member after ``event``."""
    if isinstance(event, MemberMoved):
        if state is None:
            raise ValueError(f"member {event.member_id!r} moved without a registration")
        return state.model_copy(update=dict(community_id=event.community_id, moved_at=event.occurred_at,
                                            previous_communities=(*state.previous_communities, state.community_id)))
    if not isinstance(event, MemberRegistered):
        raise TypeError(f"not a member event: {type(event).__name__}")
    if state is not None:
        return state
    return MemberState(
        member_id=event.member_id, community_id=event.community_id, unit_id=event.unit_id,
        name=event.name, unit_name=event.unit_name, registered_at=event.at,
    )
