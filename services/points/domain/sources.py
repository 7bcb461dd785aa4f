"""Reading the facts of other services that earn points (来源事件) into :class:`Earning`.

The functions take the contract's payload models of ``schemas.orders`` / ``schemas.grid``.
Fields the contract does not put on the deciding event come from earlier events the
application keeps (a small projection of orders and cases):

- order: ``orders.order.evaluated.v1`` (passed) decides; the category and community come
  from ``orders.order.placed.v1``, the minutes from ``orders.order.completed.v1``
  (:class:`OrderFacts`). When the evaluated event itself carries ``category``,
  ``community_id`` or ``service_minutes`` (optional additions), those win.
- report: ``grid.case.registered.v1`` decides; reporter, category and grid come from
  ``grid.case.reported.v1``, unless the registration carries them again (then the
  registration's win). Only a reporter of kind ``resident`` earns; the community is the
  12-digit prefix of the grid id.

``source`` and ``event_id`` are the CloudEvents ``source`` and ``id`` of the deciding
event; ``occurred_at`` its ``time`` (it dates the lot and the cap period).
"""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, NonNegativeInt

from schemas.codes import GridCode
from schemas.grid import CaseRegistered, CaseReported, ReporterKind
from schemas.orders import OrderEvaluated

from .rules import SourceKind
from .transfers import Earning


class OrderFacts(BaseModel):
    """What the application keeps of an order until its evaluation: the category and
    community of ``orders.order.placed.v1``, the minutes of ``orders.order.completed.v1``
    (None: not known yet)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str | None = None
    community_id: str | None = None
    service_minutes: NonNegativeInt | None = None


def earning_from_order(
    evaluated: OrderEvaluated,
    *,
    facts: OrderFacts | None,
    source: str,
    event_id: str,
    occurred_at: datetime,
) -> Earning | None:
    """The earning of a 考单 evaluation: the assignee earns when it ``passed``; None otherwise,
    or when neither the evaluation nor the order's facts tell the category and community."""
    if not evaluated.passed:
        return None
    facts = facts or OrderFacts()
    category = evaluated.category.value if evaluated.category is not None else facts.category
    community = evaluated.community_id or facts.community_id
    if not category or not community:
        return None
    minutes = evaluated.service_minutes
    if minutes is None:
        minutes = facts.service_minutes or 0
    return Earning(
        source=source, source_event_id=event_id, kind=SourceKind.order, holder_id=evaluated.assignee_id,
        category=category, community_id=community, occurred_at=occurred_at, service_minutes=minutes,
    )


def earning_from_report(
    registered: CaseRegistered,
    reported: CaseReported | None,
    *,
    source: str,
    event_id: str,
    occurred_at: datetime,
) -> Earning | None:
    """The earning of a registered (立案) case reported by a resident — the report's facts,
    overridden by those the registration carries; None for reports by grid workers or
    systems (their work is assessed, not rewarded with points), or when the reporter or the
    grid is unknown."""
    reporter = registered.reporter or (reported.reporter if reported is not None else None)
    grid_id = registered.grid_id or (reported.grid_id if reported is not None else None)
    category = registered.category or (reported.category if reported is not None else None)
    if reporter is None or reporter.kind is not ReporterKind.RESIDENT or grid_id is None:
        return None
    return Earning(
        source=source, source_event_id=event_id, kind=SourceKind.report, holder_id=reporter.id,
        category=category.value if category is not None else "other",
        community_id=GridCode.parse(grid_id).community_id, occurred_at=occurred_at,
    )
