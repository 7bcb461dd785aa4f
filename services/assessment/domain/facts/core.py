"""The fold core: counter increments, the registry of fact builders (one per payload class),
and the fold of a history into a table of counters.

A fact builder is registered with :func:`builds` for the payload classes it handles, with
the name of the payload's occurrence time field (``occurred_at``/``at``/``posted_at``...;
where it has none or it is unset, the envelope ``time`` is used). Payload classes without a
builder have no effect on any counter.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping, NamedTuple, TypeVar

from schemas.common import Event

from ..indicators import Fact
from ..periods import periods_of
from .refs import Entity, Lookup, MemoryLookup, Ref

FactKey = tuple[str, str, str, str]
"""(entity_type, entity_id, period, fact)."""

FactTable = dict[FactKey, float]
"""Counters of a history: the sum of every :class:`FactDelta` by key."""


class FactDelta(NamedTuple):
    """Add ``delta`` to the counter ``fact`` of (entity_type, entity_id) in ``period``. (A
    named tuple: a history of millions of events makes tens of millions of them.)"""

    entity_type: str
    entity_id: str
    period: str
    fact: str
    delta: float

    @property
    def key(self) -> FactKey:
        return (self.entity_type, self.entity_id, self.period, self.fact)


@dataclass(frozen=True)
class EventEffect:
    """What one event does to the projection: counter increments and refs to upsert."""

    facts: list[FactDelta] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)


# -- the registry ----------------------------------------------------------------------------

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class FactBuilder:
    """A registered builder: ``build(payload, occurred, lookup)`` and the payload's own
    occurrence time field (None: it has none, the envelope time says it)."""

    build: Callable[[Any, datetime, Lookup], EventEffect]
    occurred: str | None = None


BUILDERS: dict[type[Event], FactBuilder] = {}
"""Payload class → its fact builder. Filled by the modules of this package as they load."""


def builds(*classes: type[E], occurred: str | None = None):
    """Register the decorated function as the fact builder of ``classes`` (one builder per class),
    whose payloads carry their occurrence time in the field ``occurred``."""

    def deco(fn: Callable[[E, datetime, Lookup], EventEffect]) -> Callable[[E, datetime, Lookup], EventEffect]:
        for c in classes:
            if c in BUILDERS:
                raise TypeError(f"{c.__name__} already has a fact builder")
            BUILDERS[c] = FactBuilder(fn, occurred)
        return fn

    return deco


def occurred_at(payload: Event, time: datetime) -> datetime:
    """When the fact occurred: the payload's occurrence field when set, else the envelope
    ``time`` (upstream sets both to the same instant; preferring the payload keeps a replay
    exact even if events were re-wrapped)."""
    b = BUILDERS.get(type(payload))
    at = getattr(payload, b.occurred) if b is not None and b.occurred is not None else None
    return at or time


def effect_of_event(payload: Event, time: datetime, lookup: Lookup) -> EventEffect:
    """Counter increments and ref upserts for one event with envelope ``time``."""
    if time.tzinfo is None:
        raise ValueError("event time must carry an offset")
    b = BUILDERS.get(type(payload))
    if b is None:
        return EventEffect()
    return b.build(payload, occurred_at(payload, time), lookup)


def facts_from_event(payload: Event, time: datetime, lookup: Lookup) -> list[FactDelta]:
    """Counter increments keyed (entity_type, entity_id, period, fact) for one event."""
    return effect_of_event(payload, time, lookup).facts


# -- folding ---------------------------------------------------------------------------------


def replay(events: Iterable[tuple[Event, datetime]], lookup: MemoryLookup | None = None) -> tuple[FactTable, MemoryLookup]:
    """Fold a history of (payload, envelope time) into counters from scratch.

    Events must come in the order they were processed (see :mod:`..history` for the order).
    Each counter is summed exactly (the decimal of each delta's shortest repr), so that its value
    does not depend on the order of the additions: the incremental accumulation
    (:mod:`..incremental`) and the stored counters (``numeric``) give the very same floats.
    """
    lookup = lookup if lookup is not None else MemoryLookup()
    sums: dict[FactKey, Decimal] = {}
    for payload, time in events:
        eff = effect_of_event(payload, time, lookup)
        for d in eff.facts:
            sums[d.key] = sums.get(d.key, Decimal(0)) + Decimal(repr(float(d.delta)))
        lookup.apply(eff.refs)
    return {k: float(v) for k, v in sums.items()}, lookup


def facts_by_entity(table: Mapping[FactKey, float], period: str) -> dict[Entity, dict[str, float]]:
    """The counters of every entity that has any in ``period``."""
    out: dict[Entity, dict[str, float]] = {}
    for (et, eid, p, fact), v in table.items():
        if p == period:
            out.setdefault((et, eid), {})[fact] = v
    return dict(sorted(out.items()))


# -- helpers of the builders -----------------------------------------------------------------


def increments(entities: Iterable[Entity], at: datetime | None, fact: Fact, amount: float = 1.0) -> list[FactDelta]:
    """One increment per entity per period (month, quarter, year) that ``at`` falls in."""
    if at is None or amount == 0:
        return []
    return increments_in(entities, periods_of(at), fact, amount)


def increments_in(entities: Iterable[Entity], periods: Iterable[str], fact: Fact, amount: float) -> list[FactDelta]:
    """One increment per entity per given period."""
    if amount == 0:
        return []
    ps = tuple(periods)
    name = fact.value
    # the tuple made directly: a named tuple's own constructor is a Python call, half of the cost
    return [_new(FactDelta, (et, eid, p, name, amount)) for et, eid in _distinct(entities) for p in ps]


_new = tuple.__new__


def _distinct(entities: Iterable[Entity]) -> list[Entity]:
    seen: list[Entity] = []
    for e in entities:
        if e[1] and e not in seen:
            seen.append(e)
    return seen
