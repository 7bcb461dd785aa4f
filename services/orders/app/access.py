"""Which orders, members and posts a caller may act on and read, beyond the policy
table (:mod:`services.orders.app.policy`), which cannot see the object a command names.

An object the caller may not touch is answered exactly as an unknown one: a command is refused
``unknown_order`` / ``unknown_post``, a read is a 404 or leaves the row out of a list.

Only the roles that are granted something count: a token that is also ``auditor`` reads every
order, but it does not let its holder cancel or evaluate one as a resident could not.
"""
from __future__ import annotations

from typing import Any

from services.kit.identity import Principal
from services.kit.sql import Where
from services.orders.domain import OrderState

from .policy import OFFICERS

READERS = ("auditor",)
"""Roles that read every order, member and post of the district."""

ORDER_READERS = ("resident", "party_member", *OFFICERS, *READERS)
"""Who may call the order routes (each reads what :func:`may_read_order` allows)."""

MEMBER_READERS = ("party_member", *OFFICERS, *READERS)
"""Who may call ``GET /v1/members/{id}`` (a member: their own record only)."""

COMMUNITY_READERS = (*OFFICERS, *READERS)
"""Who may read a community's needs (open orders) and resources (members' names, work units, posts)."""


def officer_of(principal: Principal | None, community_id: str | None) -> bool:
    """``principal`` is a community or street officer whose scope covers ``community_id``."""
    return (principal is not None and community_id is not None
            and any(principal.has(r) for r in OFFICERS) and principal.scope.covers(community_id))


def reads_all(principal: Principal | None) -> bool:
    return principal is not None and any(principal.has(r) for r in READERS)


def held_by(order: OrderState, member_id: str) -> bool:
    """The order is dispatched to ``member_id`` now, or was (they declined it or let it expire)."""
    return member_id in (order.assignee_id, *order.declined_by, *order.expired_for)


# -- commands ---------------------------------------------------------------------------------------


def may_manage(principal: Principal | None, order: OrderState) -> bool:
    """Dispatch (派单) and evaluate (考单): an officer of the order's community."""
    return officer_of(principal, order.community_id)


def placed_by(principal: Principal | None, order: OrderState) -> bool:
    """Rate: the resident who placed the order."""
    return principal is not None and principal.has("resident") and order.resident_id == principal.sub


def may_close(principal: Principal | None, order: OrderState) -> bool:
    """Cancel: an officer of the order's community, or the resident who placed it."""
    return officer_of(principal, order.community_id) or placed_by(principal, order)


def may_serve(principal: Principal | None, order: OrderState) -> bool:
    """Accept, decline, complete: the party member the order is (or was) dispatched to."""
    return principal is not None and principal.has("party_member") and held_by(order, principal.sub)


# -- reads ------------------------------------------------------------------------------------------


def may_read_order(principal: Principal | None, row: dict[str, Any]) -> bool:
    """An auditor; an officer of the order's community; the resident who placed it; the
    member it is dispatched to."""
    if principal is None:
        return False
    if reads_all(principal) or officer_of(principal, row["community_id"]):
        return True
    if principal.has("resident") and row["resident_id"] == principal.sub:
        return True
    return principal.has("party_member") and row["assignee_id"] == principal.sub


def may_read_member(principal: Principal | None, member: dict[str, Any]) -> bool:
    """An auditor; an officer of the member's community; the member themselves."""
    if principal is None:
        return False
    return (reads_all(principal) or officer_of(principal, member["community_id"])
            or (principal.has("party_member") and member["member_id"] == principal.sub))


def may_read_community(principal: Principal | None, community_id: str) -> bool:
    return reads_all(principal) or officer_of(principal, community_id)


def order_filter(where: Where, principal: Principal) -> None:
    """Add to ``where`` the condition that keeps the orders ``principal`` may read (nothing
    for an auditor)."""
    if reads_all(principal):
        return
    alternatives: list[str] = []

    def arg(value: Any) -> str:
        where.args.append(value)
        return f"${len(where.args)}"

    if any(principal.has(r) for r in OFFICERS):
        s = principal.scope
        if s.streets:
            alternatives.append(f"left(community_id, 9) = ANY({arg(sorted(s.streets))}::text[])")
        communities = sorted(s.communities)
        if communities:
            alternatives.append(f"community_id = ANY({arg(communities)}::text[])")
    if principal.has("resident"):
        alternatives.append(f"resident_id = {arg(principal.sub)}")
    if principal.has("party_member"):
        alternatives.append(f"assignee_id = {arg(principal.sub)}")
    where.add("(" + " OR ".join(alternatives) + ")" if alternatives else "FALSE")


__all__ = ["COMMUNITY_READERS", "MEMBER_READERS", "ORDER_READERS", "held_by", "may_close", "may_manage",
           "may_read_community", "placed_by", "may_read_member", "may_read_order", "may_serve", "officer_of", "order_filter",
           "reads_all"]
