"""Duplicate detection (重复上报): a new report of the same category near an open case.

FixMyStreet links reports within 250 m; the radius is configurable. Pure: the application
layer loads the open cases near the report and passes them in.
"""
from __future__ import annotations

import math
from typing import Iterable, Protocol

from pydantic import BaseModel, ConfigDict, Field

from schemas.grid import Category

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
DEFAULT_DUPLICATE_RADIUS_M = 250.0


class _Point(Protocol):
    lat: float
    lon: float


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS-84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class OpenCase(BaseModel):
    """What duplicate detection needs to know of an open case."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    category: Category
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)

    @classmethod
    def of(cls, state) -> "OpenCase":  # state: services.grid.domain.state.CaseState
        """The summary of a case state."""
        return cls(case_id=state.case_id, category=state.category, lat=state.location.lat, lon=state.location.lon)


def find_duplicate(
    category: Category,
    location: _Point,
    open_cases: Iterable[OpenCase],
    radius_m: float = DEFAULT_DUPLICATE_RADIUS_M,
) -> OpenCase | None:
    """The nearest open case of the same category within ``radius_m`` metres, or None."""
    best: tuple[float, OpenCase] | None = None
    for c in open_cases:
        if c.category != category:
            continue
        d = haversine_m(location.lat, location.lon, c.lat, c.lon)
        if d <= radius_m and (best is None or d < best[0]):
            best = (d, c)
    return best[1] if best else None
