"""From the grid (网格发现): a registered grid case of category ``resident_need`` becomes one order.

Mapping of a ``grid.case.registered.v1`` ``data`` (the grid service adds case_id, grid_id,
community_id, category, description and reporter to it) to :class:`PlaceOrder`:

- only ``category == "resident_need"`` maps; any other case gives None;
- ``order_id`` = uuid5(:data:`GRID_CASE_NAMESPACE`, case_id): the same case always gives
  the same order id, so a grid event delivered twice (or republished under a new event id)
  places exactly one order — the second ``PlaceOrder`` is a no-op in ``decide``;
- ``source_case_id`` = case_id; ``grid_id``, ``community_id`` and ``description`` are copied;
- ``resident_id`` = the case's ``resident_id`` when it names one, else the reporter's id
  (a resident reporting their own need, or the grid worker who took it down);
- ``category`` = the case's ``order_category`` when it is one of the 12 order categories,
  else ``proxy`` (全程代办: the community handles the need on the resident's behalf).

A resident-need case without case_id / grid_id, or without any resident or reporter, cannot
become an order: :class:`UnusableGridCase` (the app sends the record to the DLQ).
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.orders import OrderCategory, PlaceOrder

RESIDENT_NEED = "resident_need"
DEFAULT_CATEGORY = OrderCategory.PROXY

GRID_CASE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:grassroots:orders:from-grid-case")
"""The uuid5 namespace of order ids derived from grid case ids (fixed forever)."""


class UnusableGridCase(ValueError):
    """A resident-need grid case that lacks what an order needs."""


class _Reporter(BaseModel):
    model_config = ConfigDict(extra="ignore")
    kind: str | None = None
    id: str | None = None


class _GridCase(BaseModel):
    model_config = ConfigDict(extra="ignore")
    case_id: str
    grid_id: str
    category: str | None = None
    community_id: str | None = None
    description: str | None = None
    reporter: _Reporter | None = None
    resident_id: str | None = None
    order_category: str | None = None


def order_id_for_case(case_id: str) -> str:
    """The order id of the order made from grid case ``case_id`` (deterministic)."""
    return str(uuid.uuid5(GRID_CASE_NAMESPACE, case_id))


def order_from_grid_case(data: Mapping[str, Any] | BaseModel) -> PlaceOrder | None:
    """The ``PlaceOrder`` for a registered resident-need grid case, or None for other cases."""
    raw = data.model_dump(mode="json") if isinstance(data, BaseModel) else dict(data)
    if raw.get("category") != RESIDENT_NEED:
        return None
    try:
        case = _GridCase.model_validate(raw)
    except ValidationError as e:
        raise UnusableGridCase(f"resident-need case unusable: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from None
    resident_id = case.resident_id or (case.reporter.id if case.reporter else None)
    if not resident_id:
        raise UnusableGridCase(f"resident-need case {case.case_id!r} names neither a resident nor a reporter")
    try:
        category = OrderCategory(case.order_category) if case.order_category else DEFAULT_CATEGORY
    except ValueError:
        category = DEFAULT_CATEGORY
    try:
        return PlaceOrder(
            order_id=order_id_for_case(case.case_id), resident_id=resident_id, grid_id=case.grid_id,
            category=category, description=case.description or "", source_case_id=case.case_id,
            community_id=case.community_id,
        )
    except ValidationError as e:
        err = e.errors()[0]
        raise UnusableGridCase(f"resident-need case {case.case_id!r}: {err['loc']}: {err['msg']}") from None
