"""Named reasons for which the points domain refuses a command.

Each is a :class:`services.kit.errors.Rejected` with a stable ``reason`` code and the command
``field`` at fault. The ledger's other refusals are raised as ``Rejected`` with their code
where they are decided (see each ``decide_*``).
"""
from __future__ import annotations

from services.kit.errors import Rejected

__all__ = ["Rejected", "SelfReview"]


class SelfReview(Rejected):
    """``self_review``: the reviewer submitted the deed (评审 checks the 申报, so it is someone else's duty)."""

    def __init__(self, reviewer_id: str):
        super().__init__("self_review", f"{reviewer_id!r} submitted this deed and cannot review it", "reviewer_id")
