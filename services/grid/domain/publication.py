"""What the public may see of a case: the rules of the Open311 view, in one place.

The Open311 GeoReport v2 view is read without a token, so it is a public projection of the
cases, not the cases themselves:

- **Private categories** are not published at all: disputes between neighbours, with property
  management or over labour, and resident needs concern named households and people. Their
  cases are not listed, their ids are unknown to the view and their service codes are not
  offered (:data:`PRIVATE_CATEGORIES`).
- **No personal data**: no address, no photos, no reporter; the position is rounded to
  :data:`PUBLIC_COORDINATE_DECIMALS` decimals of a degree (about 100 m).
- **Moderation**: the reporter's description is published only once the community has
  registered the case (立案); a reported or dismissed case shows none.
- **Dismissals** show the reason only when it is one of :data:`PUBLIC_DISMISSAL_REASONS` (a
  code the service itself sets), never the free text a registrar typed.

The projection applies these rules in SQL, so that nothing private leaves the database.
"""
from __future__ import annotations

from schemas.grid import Category

from .decide import DUPLICATE_REASON

PRIVATE_CATEGORIES: frozenset[Category] = frozenset({
    Category.DISPUTE_NEIGHBOUR, Category.DISPUTE_PROPERTY, Category.DISPUTE_LABOUR, Category.RESIDENT_NEED,
})
"""Categories whose cases the public view never shows."""

PUBLIC_CATEGORIES: tuple[Category, ...] = tuple(c for c in Category if c not in PRIVATE_CATEGORIES)
"""The categories the public view offers as services, in the contract's order."""

PUBLIC_COORDINATE_DECIMALS = 3
"""Decimals of a degree kept in public positions: 0.001° of latitude is about 111 m."""

PUBLIC_DISMISSAL_REASONS: frozenset[str] = frozenset({DUPLICATE_REASON})
"""Dismissal reasons that are codes and may be shown; any other reason is free text and is not."""
