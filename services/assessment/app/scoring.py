"""Scoring a period from what is stored: its counters and the refs of what it scores.

The close, the provisional scorecard and the what-if recompute all score this way; none of
them reads the event history. The cost follows the period (its counters: one row per entity,
period and counter) and the district (every grid's and unit's ref, for the standing counts),
not the years of history behind it.
"""
from __future__ import annotations

import asyncpg

from schemas.assessment import EntityType
from services.assessment.domain import Publication, Scheme
from services.assessment.domain.facts.core import FactTable
from services.assessment.domain.facts.refs import MemoryLookup
from services.assessment.domain.periods import Period
from services.assessment.domain.publication import publication_for
from services.assessment.projection import store


async def period_inputs(conn: asyncpg.Connection, period: str,
                        entity_type: str | None = None) -> tuple[FactTable, MemoryLookup]:
    """(the period's counters — of one entity type only, if given —, a lookup of the refs
    scoring it reads)."""
    p = str(Period.parse(period))
    table = await store.period_facts(conn, p, entity_type)
    of = lambda t: sorted({eid for (et, eid, _, _) in table if et == t.value})  # noqa: E731
    lookup = MemoryLookup()
    lookup.apply(await store.scoring_refs(conn, of(EntityType.GRID_WORKER), of(EntityType.MEMBER)))
    return table, lookup


async def compute_period(conn: asyncpg.Connection, period: str, scheme: Scheme,
                         of: tuple[str, str] | None = None) -> Publication:
    """The scorecards and alerts of ``period`` under ``scheme`` (nothing is written); with ``of``
    (entity type, id), only those of the entities ranked with it (a provisional scorecard)."""
    table, lookup = await period_inputs(conn, period, None if of is None else of[0])
    return publication_for(str(Period.parse(period)), table, lookup, scheme, of)
