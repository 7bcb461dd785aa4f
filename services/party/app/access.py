"""Which organisations a caller may act on and read, beyond the policy table
(:mod:`services.party.app.policy`), which cannot see the organisation a command names.

An organisation the caller may not touch is answered exactly as an unknown one: a command is
refused ``unknown_org`` / ``unknown_parent``, a read is a 404 or leaves the row out of a list.
An auditor reads every organisation; a party secretary and a community or street officer those
of the areas in their scope.
"""
from __future__ import annotations

from typing import Any

from services.kit.identity import Principal
from services.kit.policy import in_area, sees_district
from services.kit.sql import Where

from .policy import OFFICERS, SECRETARY

ACTORS = (SECRETARY,)
"""Who acts on an existing organisation (its members, its 党员中心户, its organisational life,
its members' commitments)."""

READERS = (SECRETARY, *OFFICERS, "auditor")
"""Who may call the organisation and coverage routes (each reads what its scope allows)."""


def may_act(principal: Principal | None, scope_id: str | None) -> bool:
    """A party secretary whose scope covers the organisation's area."""
    return (principal is not None and any(principal.has(r) for r in ACTORS)
            and scope_id is not None and principal.scope.covers(scope_id))


def may_read(principal: Principal | None, scope_id: str | None) -> bool:
    """An auditor; a secretary or officer whose scope covers the area."""
    if principal is None or not any(principal.has(r) for r in READERS):
        return False
    return sees_district(principal) or in_area(principal, scope_id)


def org_filter(where: Where, principal: Principal, prefix: str = "") -> None:
    """Add to ``where`` the condition that keeps the organisations (or grids) ``principal``
    may read (nothing for an auditor)."""
    if sees_district(principal):
        return
    alternatives: list[str] = []

    def arg(value: Any) -> str:
        where.args.append(value)
        return f"${len(where.args)}"

    s = principal.scope
    for column, ids in (("street_id", s.streets), ("community_id", s.communities), ("grid_id", s.grids)):
        if ids:
            alternatives.append(f"{prefix}{column} = ANY({arg(sorted(ids))}::text[])")
    where.add("(" + " OR ".join(alternatives) + ")" if alternatives else "FALSE")
