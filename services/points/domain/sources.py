"""Reading the facts of other services that earn points (来源事件) into :class:`Earning`.

The functions take the ``data`` of the foreign events (mappings, or the payload models of
``schemas.orders`` / ``schemas.grid``) so the domain does not depend on those modules.
Fields the contract does not put on the deciding event come from earlier events the
application keeps (a small projection of orders and cases):

- order: ``orders.order.evaluated.v1`` (passed) decides; the category and community come
  from ``orders.order.placed.v1``, the minutes from ``orders.order.completed.v1``. When the
  evaluated event itself carries ``category``, ``community_id`` or ``service_minutes``
  (optional additions), those win.
- report: ``grid.case.registered.v1`` decides; reporter, category and grid come from
  ``grid.case.reported.v1``. Only a reporter of kind ``resident`` earns; the community is
  the 12-digit prefix of the grid id.

``source`` and ``event_id`` are the CloudEvents ``source`` and ``id`` of the deciding
event; ``occurred_at`` its ``time`` (it dates the lot and the cap period).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from schemas.common import community_of

from .rules import SourceKind
from .transfers import Earning


def _data(x: Mapping[str, Any] | Any | None) -> Mapping[str, Any]:
    if x is None:
        return {}
    if isinstance(x, Mapping):
        return x
    return x.model_dump(mode="json")


def earning_from_order(
    evaluated: Mapping[str, Any] | Any,
    *,
    placed: Mapping[str, Any] | Any | None,
    completed: Mapping[str, Any] | Any | None = None,
    source: str,
    event_id: str,
    occurred_at: datetime,
) -> Earning | None:
    """The earning of a 考单 evaluation: the assignee earns when it ``passed``; None otherwise,
    or when neither the evaluation nor the placed order tells the category and community."""
    ev, pl, co = _data(evaluated), _data(placed), _data(completed)
    if not ev.get("passed"):
        return None
    category = ev.get("category") or pl.get("category")
    community = ev.get("community_id") or pl.get("community_id")
    if not category or not community or not ev.get("assignee_id"):
        return None
    minutes = ev.get("service_minutes")
    if minutes is None:
        minutes = co.get("service_minutes") or 0
    return Earning(
        source=source, source_event_id=event_id, kind=SourceKind.order, holder_id=str(ev["assignee_id"]),
        category=str(category), community_id=str(community), occurred_at=occurred_at, service_minutes=int(minutes),
    )


def earning_from_report(
    reported: Mapping[str, Any] | Any,
    *,
    source: str,
    event_id: str,
    occurred_at: datetime,
) -> Earning | None:
    """The earning of a registered (立案) case reported by a resident; None for reports by
    grid workers or systems (their work is assessed, not rewarded with points)."""
    rep = _data(reported)
    reporter = rep.get("reporter") or {}
    if reporter.get("kind") != "resident" or not reporter.get("id") or not rep.get("grid_id"):
        return None
    return Earning(
        source=source, source_event_id=event_id, kind=SourceKind.report, holder_id=str(reporter["id"]),
        category=str(rep.get("category") or "other"), community_id=community_of(str(rep["grid_id"])),
        occurred_at=occurred_at,
    )
