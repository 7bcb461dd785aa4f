"""Senders of points commands in the handler tests: the principal the policy expects (as
:func:`tests.support.identity.sender_token` mints a token for it), and residents' consent codes."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from schemas.common import Payload
from services.kit.clock import wall_clock
from services.kit.identity import Principal, Scope
from services.points.app.policy import POLICY
from services.points.domain import code_hash, new_code
from services.points.projection import approvals
from tests.support.identity import DEFAULT_SUB, _sub_from, all_streets


def principal(sub: str, *roles: str, streets: Iterable[str] | None = None, communities: Iterable[str] = ()) -> Principal:
    return Principal(sub, frozenset(roles), Scope.of(streets=all_streets() if streets is None else streets,
                                                     communities=communities))


def sender(payload: Payload, role: str | None = None) -> Principal | None:
    """Who would send ``payload`` (None for another service's event): the first role of the
    policy's first grant (or ``role``), ``sub`` read back from its actor fields, every street."""
    grants = POLICY.commands.get(type(payload))
    if not grants:
        return None
    grant = next(g for g in grants if role is None or role in g.roles)
    return principal(_sub_from(payload, grant) or DEFAULT_SUB, role or sorted(grant.roles)[0])


async def consent(pool, account_id: str, amount: int, *, at: datetime | None = None, seconds: float = 600) -> str:
    """A consent code of ``account_id``'s resident for at most ``amount`` points, as
    ``POST /v1/redemption-codes`` stores it. A code's minutes are wall-clock minutes, whatever
    date the test's domain clock says (``at`` is ignored)."""
    at = wall_clock()
    code = new_code()
    async with pool.acquire() as conn:
        await approvals.create_code(conn, code_hash(code), account_id, amount, at=at,
                                    expires_at=at + timedelta(seconds=seconds))
    return code
