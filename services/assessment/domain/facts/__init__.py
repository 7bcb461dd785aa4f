"""Facts: how each consumed event increments the counters the indicators are computed from.

A *fact builder* is a pure function of one typed payload (a contract model of
:mod:`schemas`), the instant the fact occurred, and a :class:`~.refs.Lookup` of what earlier
events established. It returns an :class:`~.core.EventEffect`: counter increments keyed
(entity_type, entity_id, period, fact) — one per period the increment falls in (month,
quarter, year) — and the reference records to upsert (case → grid and reporter, order →
community and assignee, member → community and unit, account → holder, ...) so that later
events can be attributed. Builders are registered per payload class:

- :mod:`.grid`    — cases and patrols;
- :mod:`.orders`  — orders, members (双报到) and claimed posts;
- :mod:`.points`  — accounts, approved deeds and posted transfers;
- :mod:`.party`   — organisational life, councils' meetings and resolutions, projects, members'
  双报到 follow-up and commitments (组织建设); :mod:`.standing` derives the standing counts
  (组织覆盖率, 单位报到率) when a period is scored;
- :mod:`.reviews` — assessment's own two-way reviews;
- :mod:`.refs`    — the reference records, the lookup, the entities a place counts for;
- :mod:`.core`    — the registry and the fold of a history into counters.

Replaying the same history in the same order with an empty lookup reproduces every counter,
hence every indicator value (:func:`replay`). The consumed payload classes are those with a
builder (:data:`CONSUMED`); every other event has no effect on any indicator.
"""
from schemas.common import Event

from . import grid, orders, party, points, reviews  # noqa: F401  (each registers its builders)
from .core import BUILDERS, effect_of_event, facts_by_entity, facts_from_event, replay
from .refs import MemoryLookup, parent_of, ref_from_json

CONSUMED: frozenset[type[Event]] = frozenset(BUILDERS)
"""The payload classes that change a counter or a ref."""

CONSUMED_TYPES: frozenset[str] = frozenset(c.TYPE for c in CONSUMED)
"""Their message types."""

__all__ = [
    "CONSUMED", "CONSUMED_TYPES", "MemoryLookup", "effect_of_event", "facts_by_entity", "facts_from_event",
    "parent_of", "ref_from_json", "replay",
]
