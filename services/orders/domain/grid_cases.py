"""From the grid (网格发现): a registered grid case of category ``resident_need`` becomes one order.

Mapping of a ``grid.case.registered.v1`` (:class:`schemas.grid.CaseRegistered`, which carries
the report's facts again) to :class:`PlaceOrder`:

- only ``category == resident_need`` maps; any other case gives None;
- ``order_id`` = uuid5(:data:`GRID_CASE_NAMESPACE`, case_id): the same case always gives
  the same order id, so a grid event delivered twice (or republished under a new event id)
  places exactly one order — the second ``PlaceOrder`` is a no-op in ``decide``;
- ``source_case_id`` = case_id; ``grid_id``, ``community_id`` and ``description`` are copied;
- ``resident_id`` = the reporter's id (a resident reporting their own need, or the grid worker
  who took it down);
- ``category`` = ``proxy`` (全程代办: the community handles the need on the resident's behalf).

A resident-need case without a grid or a reporter cannot become an order:
:class:`UnusableGridCase` (the app sends the record to the DLQ).
"""
from __future__ import annotations

import uuid

from pydantic import ValidationError

from schemas.grid import CaseRegistered, Category
from schemas.orders import OrderCategory, PlaceOrder

CATEGORY = OrderCategory.PROXY
"""The order category of a resident need found in the grid."""

GRID_CASE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:grassroots:orders:from-grid-case")
"""The uuid5 namespace of order ids derived from grid case ids (fixed forever)."""


class UnusableGridCase(ValueError):
    """A resident-need grid case that lacks what an order needs."""


def order_id_for_case(case_id: str) -> str:
    """The order id of the order made from grid case ``case_id`` (deterministic)."""
    return str(uuid.uuid5(GRID_CASE_NAMESPACE, case_id))


def is_resident_need(case: CaseRegistered) -> bool:
    """True for the registered cases that become orders."""
    return case.category is Category.RESIDENT_NEED


def order_from_grid_case(case: CaseRegistered) -> PlaceOrder | None:
    """The ``PlaceOrder`` for a registered resident-need grid case, or None for other cases."""
    if not is_resident_need(case):
        return None
    if case.grid_id is None:
        raise UnusableGridCase(f"resident-need case {case.case_id!r} names no grid")
    if case.reporter is None:
        raise UnusableGridCase(f"resident-need case {case.case_id!r} names neither a resident nor a reporter")
    try:
        return PlaceOrder(
            order_id=order_id_for_case(case.case_id), resident_id=case.reporter.id, grid_id=case.grid_id,
            category=CATEGORY, description=case.description or "", source_case_id=case.case_id,
            community_id=case.community_id,
        )
    except ValidationError as e:
        err = e.errors()[0]
        raise UnusableGridCase(f"resident-need case {case.case_id!r}: {err['loc']}: {err['msg']}") from None
