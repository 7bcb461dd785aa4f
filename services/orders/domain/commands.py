"""The orders commands (imperative), re-used from the contract module :mod:`schemas.orders`."""
from schemas.orders import (  # noqa: F401
    AcceptOrder,
    CancelOrder,
    ClaimPost,
    CompleteOrder,
    DeclineOrder,
    DispatchOrder,
    EvaluateOrder,
    PlaceOrder,
    RegisterMember,
    ReleasePost,
)
