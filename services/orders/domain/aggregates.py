"""One entry point per verb for the application layer: which state a message concerns,
``decide`` and ``evolve`` routed to the right aggregate.

A handler does, per command::

    kind, id = state_key(command)                 # ("order" | "member" | "post", id)
    state = states[kind].get(id)                  # None when it does not exist yet
    events = decide(state, command, ctx)          # may raise Rejected -> orders.command.rejected.v1
    new_state = evolve_all(state, events)         # saved under (kind, id)
    publish(events)                               # key = event.aggregate_id (order id / member id)

``ctx`` needs ``candidates`` for ``DispatchOrder`` (and for ``PlaceOrder`` / ``DeclineOrder``
when ``auto_dispatch`` is on) and ``member`` (the state under ``("member", member_id)``)
for ``ClaimPost``. Note that a post's state row is keyed by ``post_id`` while its events
are keyed by ``member_id``; ``decide`` may return events of one aggregate only, so
``evolve_all`` applies them all to ``state``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

from schemas.common import Command, Event, Payload
from schemas.orders import (
    MEMBER_COMMANDS,
    MEMBER_EVENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    POST_COMMANDS,
    POST_EVENTS,
)

from .context import Context
from .member import decide_member, evolve_member
from .order import decide_order, evolve_order
from .post import decide_post, evolve_post
from .state import MemberState, OrderState, PostState

State: TypeAlias = OrderState | MemberState | PostState


def aggregate_kind(message: Payload | type[Payload]) -> str:
    """``"order"``, ``"member"`` or ``"post"`` for an orders command or event (instance or class)."""
    cls = message if isinstance(message, type) else type(message)
    if cls in ORDER_COMMANDS or cls in ORDER_EVENTS:
        return "order"
    if cls in MEMBER_COMMANDS or cls in MEMBER_EVENTS:
        return "member"
    if cls in POST_COMMANDS or cls in POST_EVENTS:
        return "post"
    raise TypeError(f"not an orders message: {cls.__name__}")


def state_key(message: Payload) -> tuple[str, str]:
    """(aggregate kind, id) of the state a command or event reads and changes."""
    kind = aggregate_kind(message)
    return kind, getattr(message, f"{kind}_id")


def decide(state: State | None, command: Command, ctx: Context) -> list[Event]:
    """The events ``command`` leads to from ``state``, or a ``Rejected`` naming why not."""
    kind = aggregate_kind(command)
    if kind == "order":
        return decide_order(state, command, ctx)  # type: ignore[arg-type]
    if kind == "member":
        return decide_member(state, command, ctx)  # type: ignore[arg-type]
    return decide_post(state, command, ctx)  # type: ignore[arg-type]


def evolve(state: State | None, event: Event) -> State:
    """The state after ``event``."""
    kind = aggregate_kind(event)
    if kind == "order":
        return evolve_order(state, event)  # type: ignore[arg-type]
    if kind == "member":
        return evolve_member(state, event)  # type: ignore[arg-type]
    return evolve_post(state, event)  # type: ignore[arg-type]


def evolve_all(state: State | None, events: Iterable[Event]) -> State | None:
    """``state`` after each of ``events`` in turn."""
    for e in events:
        state = evolve(state, e)
    return state
