"""巡查覆盖率: the grid worker's patrol coverage, derived when a period is scored.

Coverage needs the weeks a worker did *not* patrol, which no event increments, so its two
counters are derived from the worker's ref (:class:`~.refs.WorkerRef`) for the period being
scored rather than folded from events:

- ``patrol_weeks_due``: Σ over the worker's grids of the weeks of the period (a week belongs
  to the period of its Monday, Asia/Shanghai) from the week the worker was first seen in the
  grid (a patrol or a case they reported there), for grids first seen before the period ends;
- ``patrol_weeks_covered``: those (grid, week) pairs in which the worker logged a patrol
  (by its start).

A worker is given them for a period in which they have other counters (a report, a patrol,
a verification...); a worker seen nowhere in a period has no scorecard for it.
"""
from __future__ import annotations

from schemas.assessment import EntityType

from ..indicators import Fact
from ..periods import Period, mondays_in, week_of
from .refs import Lookup, WorkerRef


def coverage_facts(worker: WorkerRef, period: str) -> dict[str, float]:
    """The two coverage counters of ``worker`` for ``period``."""
    p = Period.parse(period)
    weeks = mondays_in(str(p))
    patrolled = set(worker.patrolled)
    due = covered = 0
    for grid_id, first in worker.grids:
        if first >= p.end:
            continue
        start = week_of(first)
        for w in weeks:
            if w >= start:
                due += 1
                covered += (grid_id, w) in patrolled
    return {Fact.PATROL_WEEKS_DUE.value: float(due), Fact.PATROL_WEEKS_COVERED.value: float(covered)}


def with_coverage(entity_type: str, entity_id: str, facts: dict[str, float], period: str,
                  lookup: Lookup) -> dict[str, float]:
    """``facts`` of an entity with the coverage counters added when it is a known grid worker."""
    if entity_type != EntityType.GRID_WORKER.value:
        return facts
    worker = lookup.worker(entity_id)
    return {**facts, **coverage_facts(worker, period)} if worker is not None else facts
