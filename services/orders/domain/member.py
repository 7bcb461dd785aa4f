"""The member (在职党员) aggregate: 双报到 — registration with the residential community and the work unit.

    RegisterMember → MemberRegistered   (no member yet; the same registration again is a no-op)

Refusal: ``member_exists`` (the id is registered with another community or unit).
"""
from __future__ import annotations

from schemas.common import Command, Event
from schemas.orders import MemberRegistered, RegisterMember

from .context import Context
from .errors import AlreadyExists
from .state import MemberState


def decide_member(state: MemberState | None, command: Command, ctx: Context) -> list[Event]:
    """The events a member command leads to, or a ``Rejected``."""
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


def evolve_member(state: MemberState | None, event: Event) -> MemberState:
    """The member after ``event``."""
    if not isinstance(event, MemberRegistered):
        raise TypeError(f"not a member event: {type(event).__name__}")
    if state is not None:
        return state
    return MemberState(
        member_id=event.member_id, community_id=event.community_id, unit_id=event.unit_id,
        name=event.name, unit_name=event.unit_name, registered_at=event.at,
    )
