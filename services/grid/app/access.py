"""Who may act on which case: what the role table (:mod:`.policy`) cannot say, because it needs
the case. A case the sender may not act on is refused exactly as an unknown one
(``unknown_case``), so that its existence does not leak.

- A department officer (处置, and the department's part: 签收, 退单, 先行联系, 管控, 延期申请,
  不合理诉求) acts on a case dispatched to one of the departments of their token's scope.
- A resident (回访 feedback) on a case they reported.
- Everyone else — grid workers (核查), community and street officers (立案, 派遣, escalation,
  and the reviews of returns, extensions and exclusions) — on a case of a grid their scope covers.

Never through a district role's reach: no grid command is granted to one.
"""
from __future__ import annotations

from schemas.common import Command
from schemas.grid import (
    AcceptCase, CaseFeedback, ContactReporter, ControlHazard, HandleCase, Reporter, ReporterKind, RequestExclusion,
    RequestExtension, ReturnCase,
)
from services.grid.domain import CaseState
from services.kit.identity import Principal

DEPARTMENT_STEPS = (HandleCase, AcceptCase, ReturnCase, ContactReporter, ControlHazard, RequestExtension,
                    RequestExclusion)
"""The commands a department officer sends on a case dispatched to their department."""


def may_act_on(principal: Principal | None, cmd: Command, state: CaseState) -> bool:
    """Whether the sender of ``cmd`` (admitted by the role table) may act on the case ``state``."""
    if principal is None:
        return False
    if isinstance(cmd, DEPARTMENT_STEPS):
        return (principal.has("department_officer") and state.dispatched_at is not None
                and principal.scope.covers_department(state.department))
    if isinstance(cmd, CaseFeedback):
        me = Reporter(kind=ReporterKind.RESIDENT, id=principal.sub)
        return principal.has("resident") and me in state.reporters
    return principal.scope.covers(state.grid_id)
