"""Who reads which scorecard and alert (the platform's role table).

- ``assessor`` and ``auditor`` read every scorecard, ranking and alert of the district;
- ``community_officer`` / ``street_officer`` read those of the entities in their scope: a grid,
  community or street by its own code, a grid worker, member or unit by the area it is ranked in
  (its scorecard's ``parent_id``: the community of a grid worker's grid or of a member, the street
  of a unit). Lists are filtered to that; a single scorecard outside it is answered 404 like an
  unknown one, so that existence does not leak;
- a ``grid_worker`` or ``party_member`` reads their own scorecard (``entity_id`` = their ``sub``);
- a department (职能部门) is ranked within its district (``parent_id`` the 6-digit division), so
  its scorecard, ranking and alerts are the district's to read (assessor, auditor); a
  ``department_officer`` reads the scorecards of the departments of their scope.
"""
from __future__ import annotations

from services.kit.identity import Principal, Scope
from services.kit.policy import sees_district

OFFICERS = frozenset({"community_officer", "street_officer"})
LIST_READERS = ("assessor", "auditor", "community_officer", "street_officer")
"""Rankings and alerts."""
CARD_READERS = (*LIST_READERS, "grid_worker", "party_member", "department_officer")
"""A single scorecard (and the scheme it is scored by)."""
AREA_TYPES = frozenset({"grid", "community", "street"})
"""Entity types whose id is an area code."""
OWN = {"grid_worker": "grid_worker", "party_member": "member"}
"""A personal role → the entity type of its holder's own scorecard."""


def area_of(entity_type: str, entity_id: str, parent_id: str | None) -> str | None:
    """The area code a scorecard lies in: an area's own code, else where it is ranked."""
    return entity_id if entity_type in AREA_TYPES else parent_id


def may_read(principal: Principal | None, entity_type: str, entity_id: str, parent_id: str | None) -> bool:
    """Whether ``principal`` may read the scorecard (or alert) of this entity."""
    if principal is None:
        return False
    if sees_district(principal):
        return True
    if principal.roles & OFFICERS:
        area = area_of(entity_type, entity_id, parent_id)
        if area is not None and principal.scope.covers(area):
            return True
    if entity_type == "department" and principal.has("department_officer") \
            and principal.scope.covers_department(entity_id):
        return True
    return any(principal.has(role) and entity_type == et and entity_id == principal.sub for role, et in OWN.items())


def list_scope(principal: Principal) -> Scope | None:
    """The areas a list is filtered to: None for the whole district, else the officer's scope
    (an empty one for anyone else, who sees nothing in the lists)."""
    if sees_district(principal):
        return None
    return principal.scope if principal.roles & OFFICERS else Scope()
