"""``<svc>.command.rejected.v1``: a command refused by the rules, one type per service."""
from __future__ import annotations

from typing import ClassVar

from .common import CommandRejectedData


class GridCommandRejected(CommandRejectedData):
    """A grid command refused (wrong state, unknown grid, ...)."""

    TYPE: ClassVar[str] = "grid.command.rejected.v1"


class OrdersCommandRejected(CommandRejectedData):
    """An orders command refused (wrong state, no such member, ...)."""

    TYPE: ClassVar[str] = "orders.command.rejected.v1"


class PointsCommandRejected(CommandRejectedData):
    """A points command refused (unknown account, deed not pending, ...)."""

    TYPE: ClassVar[str] = "points.command.rejected.v1"


class AssessmentCommandRejected(CommandRejectedData):
    """An assessment command refused (unknown period, invalid scheme, ...)."""

    TYPE: ClassVar[str] = "assessment.command.rejected.v1"


class PartyCommandRejected(CommandRejectedData):
    """A party command refused (a parent of the wrong kind, a composition short of part-time members, ...)."""

    TYPE: ClassVar[str] = "party.command.rejected.v1"


REJECTION_BY_SERVICE: dict[str, type[CommandRejectedData]] = {
    "grid": GridCommandRejected,
    "orders": OrdersCommandRejected,
    "points": PointsCommandRejected,
    "assessment": AssessmentCommandRejected,
    "party": PartyCommandRejected,
}
