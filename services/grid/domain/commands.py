"""The grid service's commands (imperative). Defined once, in the contract: :mod:`schemas.grid`."""
from schemas.grid import (  # noqa: F401
    CaseFeedback as GiveFeedback,
    DismissCase,
    DispatchCase,
    EscalateCase,
    HandleCase,
    LogPatrol,
    RegisterCase,
    ReportCase,
    VerifyCase,
)

__all__ = [
    "ReportCase", "RegisterCase", "DismissCase", "DispatchCase", "HandleCase", "VerifyCase", "GiveFeedback",
    "EscalateCase", "LogPatrol",
]
