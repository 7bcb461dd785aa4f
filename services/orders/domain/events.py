"""The orders events (past tense), re-used from the contract module :mod:`schemas.orders`."""
from schemas.orders import (  # noqa: F401
    AUTO,
    MemberRegistered,
    OrderAccepted,
    OrderCancelled,
    OrderCategory,
    OrderCompleted,
    OrderDeclined,
    OrderDispatched,
    OrderDispatchExpired,
    OrderEvaluated,
    OrderPlaced,
    PostClaimed,
    PostReleased,
)
