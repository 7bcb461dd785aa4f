"""Shared builders for the orders integration tests."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from schemas.grid import CaseRegistered, Reporter
from services.kit.identity import Principal, Scope
from services.orders.app.policy import POLICY
from tests.support.identity import DEFAULT_SUB, _sub_from, all_streets

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=CST)
COMMUNITY = "110105001002"
GRID = "110105001002003"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def grid_case(case_id: str, *, category: str = "resident_need", grid_id: str = GRID, description: str = "老人需要代办医保",
              reporter: str | None = "resident-42") -> CaseRegistered:
    return CaseRegistered(
        case_id=case_id, due_at=T0 + timedelta(hours=4), department="社区居委会", grid_id=grid_id,
        community_id=grid_id[:12], category=category, description=description,
        reporter=Reporter(kind="resident", id=reporter) if reporter else None, occurred_at=T0)


def sender(payload, *, role: str | None = None, sub: str | None = None, scope: Scope | None = None) -> Principal | None:
    """The verified sender of ``payload`` as the kit would hand it to the handler: the first role
    the orders policy grants the command (or ``role``), ``sub`` read back from the command's actor
    fields, a scope covering the whole test district (the principal of
    :func:`tests.support.identity.sender_token`). None for another service's event."""
    if payload.service() != "orders":
        return None
    grants = POLICY.commands.get(type(payload), ())
    grant = next((g for g in grants if role is None or role in g.roles), None)
    roles = frozenset([role] if role else [sorted(grant.roles)[0]] if grant else [])
    sub = sub or (_sub_from(payload, grant) if grant else None) or DEFAULT_SUB
    return Principal(sub, roles, scope if scope is not None else Scope.of(streets=all_streets()))
