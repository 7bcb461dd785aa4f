"""Incremental accumulation of the counters: each event applied once, as it arrives, with what it
takes to undo it — and exactly the counters a full replay of the same history gives.

The fold of a history (:func:`..history.fold`) is order-dependent: a builder reads the refs
earlier events wrote (a case's grid, a member's community, what was already counted of a
case), so an event's deltas depend on what came before it *in replay order* (the time it
occurred, its lifecycle rank, then source and id). Events do not arrive in that order: Kafka
orders one aggregate's events in its partition, nothing across topics and partitions, and a
redelivery may come late. So:

- :func:`apply` folds one event into a lookup and returns its counter deltas and its *undo*:
  the before-image of every ref it wrote (None: it created the ref).
- :func:`unapply` undoes the newest applied event: it restores the before-images, which puts
  the lookup back in the state the event was folded in, re-runs the event's builder there (a
  pure function) and returns the opposite of the deltas it gave.
- :func:`advance` takes the events already applied after the earliest of the new ones (the
  *tail*, newest last, each with its undo), unwinds them, and folds tail and new together in
  replay order. The counters and refs are then those of a full replay of every event applied so
  far, whatever the arrival order; an event already applied (same source and id) changes nothing.

When events arrive in replay order the tail is empty and each event costs one builder call;
a late one costs the events that occurred after it (in practice the last seconds to minutes).

Counters are summed exactly (:class:`~decimal.Decimal` of each delta's shortest repr), so that
adding and taking back the same delta leaves nothing behind and any order of sums gives the same
value; each key also counts how many deltas built it (:class:`Acc`), since a replay has a key
only if some event gave it a delta — an entity with a counter at 0 still has a scorecard.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Mapping, NamedTuple, Sequence

from .facts.core import FactDelta, FactKey, FactTable, effect_of_event
from .facts.refs import MemoryLookup, Ref
from .history import StoredEvent

RefKey = tuple[str, str]
"""(kind, ref id)."""

Undo = tuple[tuple[RefKey, Ref | None], ...]
"""The before-images of the refs an event wrote, in the order it first wrote them."""


class Acc(NamedTuple):
    """The exact sum of the deltas of one counter key and how many there were."""

    value: Decimal = Decimal(0)
    n: int = 0

    def __add__(self, other: "Acc") -> "Acc":  # type: ignore[override]  (a sum, not a concatenation)
        return Acc(self.value + other.value, self.n + other.n)


@functools.lru_cache(maxsize=1 << 16)
def exact(delta: float) -> Decimal:
    """A delta as the decimal of its shortest repr (whole seconds, counts and ratings exactly).
    Kept for the values met again and again (1, ratings, common durations): a Decimal cannot
    change."""
    return Decimal(repr(float(delta)))


Deltas = dict[FactKey, Acc]


Sums = dict[FactKey, list]
"""Running sums, ``[value, n]`` by key, changed in place (:func:`add`; :func:`deltas_of` makes
them :data:`Deltas`): a new :class:`Acc` for every delta cost as much as the sum itself."""


def add(into: Sums, facts: Iterable[FactDelta], sign: int = 1) -> None:
    for d in facts:
        key = d[:4]  # (entity_type, entity_id, period, fact), a plain tuple
        value = exact(d[4]) if sign > 0 else -exact(d[4])
        a = into.get(key)
        if a is None:
            into[key] = [value, sign]
        else:
            a[0] += value
            a[1] += sign


def deltas_of(sums: Sums) -> Deltas:
    """The keys whose sums are not nothing, as :class:`Acc`."""
    return {k: Acc(v, n) for k, (v, n) in sums.items() if n or v}


def table_of(acc: Mapping[FactKey, Acc]) -> FactTable:
    """The counters a replay gives: every key some delta built, as a float."""
    return {k: float(a.value) for k, a in acc.items() if a.n > 0}


def apply(lookup: MemoryLookup, event: StoredEvent) -> tuple[list[FactDelta], Undo]:
    """Fold ``event`` into ``lookup``: (its deltas, its undo)."""
    eff = effect_of_event(event.payload, event.time, lookup)
    undo: dict[RefKey, Ref | None] = {}
    for r in eff.refs:
        key = (r.KIND, r.ref_id)
        if key not in undo:
            undo[key] = lookup.refs.get(key)
    lookup.apply(eff.refs)
    return eff.facts, tuple(undo.items())


def unapply(lookup: MemoryLookup, event: StoredEvent, undo: Undo) -> list[FactDelta]:
    """Undo ``event``, the newest event folded into ``lookup``: restore its before-images and
    return the deltas it had given (to be taken back)."""
    for key, before in undo:
        if before is None:
            lookup.refs.pop(key, None)
        else:
            lookup.refs[key] = before
    return effect_of_event(event.payload, event.time, lookup).facts


@dataclass
class Advance:
    """What :func:`advance` did: the counter deltas to add, and every event it (re)applied, in
    replay order, with its new undo (the tail's undos replace the stored ones)."""

    deltas: Deltas
    applied: list[tuple[StoredEvent, Undo]]
    new: list[StoredEvent]


def advance(lookup: MemoryLookup, tail: Sequence[tuple[StoredEvent, Undo]], new: Iterable[StoredEvent]) -> Advance:
    """Apply ``new`` to a lookup that holds every applied event, ``tail`` being those of them
    that come after the earliest new one in replay order (oldest first, each with its undo)."""
    seen = {(e.source, e.id) for e, _ in tail}
    fresh: dict[tuple[str, str], StoredEvent] = {}
    for e in new:
        if (e.source, e.id) not in seen:
            fresh.setdefault((e.source, e.id), e)
    sums: Sums = {}
    if not fresh:
        return Advance({}, [], [])
    first = min(e.sort_key for e in fresh.values())
    redo = [(e, u) for e, u in tail if e.sort_key > first]
    if len(redo) != len(tail):
        raise ValueError("the tail holds events before the earliest new one")
    for e, u in reversed(redo):
        add(sums, unapply(lookup, e, u), -1)
    applied: list[tuple[StoredEvent, Undo]] = []
    for e in sorted([e for e, _ in redo] + list(fresh.values()), key=lambda e: e.sort_key):
        facts, undo = apply(lookup, e)
        add(sums, facts)
        applied.append((e, undo))
    return Advance(deltas_of(sums), applied, list(fresh.values()))


def accumulate(batches: Iterable[Sequence[StoredEvent]]) -> tuple[Deltas, MemoryLookup]:
    """Apply batches of events one after the other as :func:`advance` does (the in-memory twin of
    the service's projection, for the tests): the counters and the lookup."""
    lookup = MemoryLookup()
    log: list[tuple[StoredEvent, Undo]] = []  # applied, in replay order
    acc: Deltas = {}
    for batch in batches:
        known = {(e.source, e.id) for e, _ in log}
        batch = [e for e in batch if (e.source, e.id) not in known]
        if not batch:
            continue
        first = min(e.sort_key for e in batch)
        i = len(log)
        while i > 0 and log[i - 1][0].sort_key > first:
            i -= 1
        step = advance(lookup, log[i:], batch)
        if not step.applied:
            continue
        log[i:] = step.applied
        for k, a in step.deltas.items():
            acc[k] = acc.get(k, Acc()) + a
    return acc, lookup
