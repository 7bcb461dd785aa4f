"""Standing counts of the Party organisation, derived when a period is scored.

组织覆盖率 and 单位报到率 are shares of what stands at the period's end (every grid that needs a
branch, every unit known), not of what happened within it, so their counters are derived from
the refs for the period being scored rather than folded from events:

- ``grids_coverable``: grids with a grid branch (网格党支部) established before the period's
  end, or reported as a coverage gap (≥ 3 members, no branch) before it; ``grids_covered``:
  those with a branch. A grid's branch says it needs one (a branch is formed where there are
  at least 3 members), and a gap closed by a branch counts covered; counted for the grid's
  community and street.
- ``units_known``: resident units named before the period's end by a report (单位报到), a
  co-building agreement (共建协议) or a member's registration (双报到); ``units_reported``:
  those that reported before it; counted for the community and street the unit is placed in
  (:class:`~.refs.UnitRef`) and for the unit itself.

They are given to every entity that has one, so a community with grids or units has them in
every period from the first, whether or not anything else happened there in it.
"""
from __future__ import annotations

from schemas.assessment import EntityType

from ..indicators import Fact
from ..periods import Period
from .refs import Entity, GridRef, MemoryLookup, UnitRef, area_entities


def standing_facts(period: str, lookup: MemoryLookup) -> dict[Entity, dict[str, float]]:
    """The standing counters of every entity that has any at the end of ``period``."""
    end = Period.parse(period).end
    out: dict[Entity, dict[str, float]] = {}

    def add(ents: list[Entity], fact: Fact) -> None:
        for ent in ents:
            facts = out.setdefault(ent, {})
            facts[fact.value] = facts.get(fact.value, 0.0) + 1.0

    g: GridRef
    for g in lookup.of_kind(GridRef):
        has_branch = g.branch_at is not None and g.branch_at < end
        if has_branch or (g.gap_at is not None and g.gap_at < end):
            ents = area_entities(None, g.community_id, g.street_id)
            add(ents, Fact.GRIDS_COVERABLE)
            if has_branch:
                add(ents, Fact.GRIDS_COVERED)
    u: UnitRef
    for u in lookup.of_kind(UnitRef):
        if u.known_at is not None and u.known_at < end:
            ents = [*area_entities(None, u.community_id, u.street_id), (EntityType.UNIT.value, u.unit_id)]
            add(ents, Fact.UNITS_KNOWN)
            if u.reported_at is not None and u.reported_at < end:
                add(ents, Fact.UNITS_REPORTED)
    return out


def with_standing(entities: dict[Entity, dict[str, float]], period: str,
                  lookup: MemoryLookup) -> dict[Entity, dict[str, float]]:
    """``entities``' counters of ``period`` with the standing counters added (and the entities
    that have only those)."""
    out = {k: dict(v) for k, v in entities.items()}
    for ent, facts in standing_facts(period, lookup).items():
        out.setdefault(ent, {}).update(facts)
    return dict(sorted(out.items()))
