"""Shared helpers for the assessment unit tests: times, ids, a small hand-computable scheme."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from schemas.common import Event
from services.assessment.domain import MemoryLookup, Scheme, effect_of_event

CST = timezone(timedelta(hours=8))
GRID = "110105001002003"
GRID_B = "110105001002004"
COMMUNITY = "110105001002"
STREET = "110105001"
DISTRICT = "110105"
WORKER = "gw-01"
MEMBER = "member-0007"
UNIT = "unit-017"


def at(day: int, hour: int = 9, month: int = 11, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=CST)


def small_scheme(**overrides) -> Scheme:
    """grid: organisation 3 (on_time_closure_rate 1, rework_rate 1), satisfaction 1 (satisfaction_rate);
    grades 90/80/60; thresholds on_time_closure_rate 0.8 and rework_rate 0.2."""
    m = {
        "scheme_id": "small",
        "effective_from": "2026-01-01T00:00:00+08:00",
        "grades": {"excellent": 90, "good": 80, "fair": 60},
        "entity_types": {
            "grid": {
                "pillars": {
                    "organisation": {"weight": 3, "indicators": {"on_time_closure_rate": 1, "rework_rate": 1}},
                    "satisfaction": {"weight": 1, "indicators": {"satisfaction_rate": 1}},
                },
                "thresholds": {"on_time_closure_rate": 0.8, "rework_rate": 0.2},
            }
        },
    }
    m.update(overrides)
    return Scheme.from_mapping(m)


class Story:
    """Feeds typed events through the fact builders the way the replay does: effect, then refs."""

    def __init__(self) -> None:
        self.lookup = MemoryLookup()
        self.table: dict[tuple[str, str, str, str], float] = {}

    def feed(self, event: Event, time: datetime):
        eff = effect_of_event(event, time, self.lookup)
        for d in eff.facts:
            self.table[d.key] = self.table.get(d.key, 0.0) + d.delta
        self.lookup.apply(eff.refs)
        return eff

    def fact(self, entity_type: str, entity_id: str, period: str, fact: str) -> float:
        return self.table.get((entity_type, entity_id, period, fact), 0.0)

    def facts(self, entity_type: str, entity_id: str, period: str) -> dict[str, float]:
        return {k[3]: v for k, v in self.table.items() if k[:3] == (entity_type, entity_id, period)}
