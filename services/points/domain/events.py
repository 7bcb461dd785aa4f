"""Events of the points service (past tense; the contract's models, re-used)."""
from schemas.points import (
    AccountKind, AccountOpened, DeedApproved, DeedRejected, DeedSubmitted, RefusalReason, TransferKind, TransferPosted,
    TransferRefused,
)

__all__ = [
    "AccountKind", "AccountOpened", "DeedApproved", "DeedRejected", "DeedSubmitted", "RefusalReason",
    "TransferKind", "TransferPosted", "TransferRefused",
]
