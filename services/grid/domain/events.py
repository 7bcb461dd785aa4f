"""The grid service's events (past tense). Defined once, in the contract: :mod:`schemas.grid`."""
from schemas.grid import (  # noqa: F401
    CaseClosed,
    CaseDismissed,
    CaseDispatched,
    CaseDuplicateLinked,
    CaseEscalated,
    CaseEvent,
    CaseFeedback,
    CaseHandled,
    CaseOverdue,
    CaseRegistered,
    CaseReported,
    CaseVerified,
    PatrolLogged,
)

__all__ = [
    "CaseEvent", "CaseReported", "CaseRegistered", "CaseDismissed", "CaseDuplicateLinked", "CaseDispatched",
    "CaseHandled", "CaseVerified", "CaseClosed", "CaseOverdue", "CaseEscalated", "CaseFeedback", "PatrolLogged",
]
