"""The pure domain of the party service (党建). No I/O, no clock: time and the data of other
aggregates come in a context.

- ``org``    — the Party organisation tree: ``decide_org``, ``evolve_org`` (establishment under a
               parent of the right kind, members' 组织关系 and transfers, 党员中心户) and
               ``coverage_gaps`` (grids with members and no grid branch);
- ``errors`` — the named refusals (``life_errors``: those of organisational life and commitments);
- ``life``, ``members`` — organisational life and commitments, the member half of 双报到.
"""
from .errors import *  # noqa: F401,F403
from .life_errors import *  # noqa: F401,F403
from .org import (
    MIN_MEMBERS_FOR_BRANCH, ORG_COMMANDS, ORG_EVENTS, PARENT_KINDS, OrgContext, OrgState, area_fits, building_grid,
    codes_of, coverage_gaps, decide_org, evolve_org,
)

__all__ = [
    "MIN_MEMBERS_FOR_BRANCH", "ORG_COMMANDS", "ORG_EVENTS", "PARENT_KINDS", "OrgContext", "OrgState", "area_fits",
    "building_grid", "codes_of", "coverage_gaps", "decide_org", "evolve_org",
]
