"""Reference records: what earlier events established about a case, an order, a member, a
unit, a grid worker or a points account, so that later events can be attributed; the
:class:`Lookup` the fact builders read them from; and the entities a place or a person counts
for (:func:`area_entities`, :func:`parent_of`).

Refs are stored by the application as jsonb (``model_dump(mode="json")`` under their
``KIND``) and rebuilt with :func:`ref_from_json`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, ClassVar, Iterable, Mapping, Protocol, Self, Union

from pydantic import BaseModel, ConfigDict

from schemas.assessment import EntityType
from schemas.codes import DEPARTMENT_ID_PATTERN, community_id_of, is_community_id, is_grid_id, is_street_id, street_id_of
from schemas.codes import parent_of as code_parent_of

Entity = tuple[str, str]
"""(entity_type, entity_id)."""


_PLACE = ("grid_id", "community_id", "street_id")
"""The place fields a ref may carry, which events may complete."""


class _Ref(BaseModel):
    """A ref of kind ``KIND``, identified by its field ``<KIND>_id``."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    KIND: ClassVar[str] = ""

    @property
    def ref_id(self) -> str:
        return getattr(self, f"{self.KIND}_id")

    def placed_by(self, event: object) -> Self:
        """This ref with the place it lacks (grid, community, street) taken from what ``event`` carries."""
        place = {k: v for k in _PLACE
                 if k in type(self).model_fields and getattr(self, k) is None and (v := getattr(event, k, None))}
        return self.model_copy(update=place) if place else self


class CaseRef(_Ref):
    """A grid case as far as assessment needs it: where it counts and what was counted."""

    KIND: ClassVar[str] = "case"
    case_id: str
    grid_id: str | None = None
    community_id: str | None = None
    street_id: str | None = None
    worker_id: str | None = None
    reported_at: datetime | None = None
    due_at: datetime | None = None
    registered: bool = False
    dispatched: bool = False
    late: bool = False
    reworked: bool = False
    closed: bool = False
    feedback: bool = False
    register_due_at: datetime | None = None
    verify_due_at: datetime | None = None
    department: str | None = None
    dept_received_at: datetime | None = None
    dept_counted: tuple[str, ...] = ()
    contacted_at: datetime | None = None
    feedback_at: datetime | None = None
    feedback_department: str | None = None
    feedback_facts: tuple[str, ...] = ()

    def counted(self, what: str) -> bool:
        """Whether ``what`` (accepted, contacted, returned, extended, supervised, closed,
        excluded) was already counted for the case's current department."""
        return what in self.dept_counted

    def count(self, what: str, **update: Any) -> "CaseRef":
        return self.model_copy(update={"dept_counted": tuple(sorted({*self.dept_counted, what})), **update})


class OrderRef(_Ref):
    """A service order: its community and the current assignee / dispatch."""

    KIND: ClassVar[str] = "order"
    order_id: str
    community_id: str | None = None
    grid_id: str | None = None
    assignee_id: str | None = None
    dispatched_at: datetime | None = None
    accepted_at: datetime | None = None
    accepted: bool = False
    completed: bool = False
    evaluated: bool = False


class MemberRef(_Ref):
    """A Party member who reported to a community (双报到), with their unit."""

    KIND: ClassVar[str] = "member"
    member_id: str
    community_id: str | None = None
    unit_id: str | None = None


class UnitRef(_Ref):
    """A resident unit, placed in the community/street where it reported (单位报到: a unit
    reports where it sits), else where it signed a co-building agreement, else where its first
    member reported; ``known_at`` the first instant any event named it, ``reported_at`` when it
    reported (单位报到率)."""

    KIND: ClassVar[str] = "unit"
    unit_id: str
    community_id: str | None = None
    street_id: str | None = None
    known_at: datetime | None = None
    reported_at: datetime | None = None
    signed: bool = False


class WorkerRef(_Ref):
    """A grid worker and the grid they last patrolled or reported in; every grid they patrolled
    or reported in with the first instant they were seen there, and the (grid, Monday of the
    week) pairs they patrolled (巡查覆盖率)."""

    KIND: ClassVar[str] = "worker"
    worker_id: str
    grid_id: str | None = None
    grids: tuple[tuple[str, datetime], ...] = ()
    patrolled: tuple[tuple[str, str], ...] = ()

    def seen_in(self, grid_id: str, at: datetime) -> "WorkerRef":
        """This worker, now last seen in ``grid_id`` (first seen there at ``at`` if new)."""
        grids = self.grids if any(g == grid_id for g, _ in self.grids) else (*self.grids, (grid_id, at))
        return self.model_copy(update={"grid_id": grid_id, "grids": grids})


class WhistleRef(_Ref):
    """A whistle (吹哨) and what was counted of it per department."""

    KIND: ClassVar[str] = "whistle"
    whistle_id: str
    summoned: tuple[str, ...] = ()
    answered: tuple[str, ...] = ()
    rated: tuple[str, ...] = ()


class AccountRef(_Ref):
    """A points account: its holder and kind, and the periods it was already counted active in."""

    KIND: ClassVar[str] = "account"
    account_id: str
    holder_id: str | None = None
    kind: str | None = None
    community_id: str | None = None
    active_periods: tuple[str, ...] = ()


class OrgRef(_Ref):
    """A Party organisation: its kind and where it counts (its area's grid, community and street,
    or the unit of a unit's Party org), and what of its organisational life was counted: the
    required periods (``<kind>@<period>``) counted required and held, and the meetings whose
    attendance was counted."""

    KIND: ClassVar[str] = "org"
    org_id: str
    kind: str | None = None
    grid_id: str | None = None
    community_id: str | None = None
    street_id: str | None = None
    unit_id: str | None = None
    required: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    meetings: tuple[str, ...] = ()


class GridRef(_Ref):
    """A grid as the Party organisation tree sees it (组织覆盖率): when its grid branch
    (网格党支部) was first established, and when a coverage gap (≥ 3 members, no branch) was
    first reported for it."""

    KIND: ClassVar[str] = "grid"
    grid_id: str
    community_id: str | None = None
    street_id: str | None = None
    branch_at: datetime | None = None
    gap_at: datetime | None = None


class CouncilRef(_Ref):
    """A regional council (大工委 / 大党委): where it counts, the quarters counted held or
    missed (联席会议), the meetings whose attendance was counted, and its resolutions (议定事项)
    counted completed or overdue (with the instant the overdue was counted)."""

    KIND: ClassVar[str] = "council"
    council_id: str
    grid_id: str | None = None
    community_id: str | None = None
    street_id: str | None = None
    quarters_due: tuple[str, ...] = ()
    quarters_held: tuple[str, ...] = ()
    meetings: tuple[str, ...] = ()
    completed: tuple[str, ...] = ()
    overdue: tuple[tuple[str, datetime], ...] = ()


class ProjectRef(_Ref):
    """A project of a community's 项目清单: when it was posted, who claimed it and when, and
    whether its completion was counted."""

    KIND: ClassVar[str] = "project"
    project_id: str
    community_id: str | None = None
    posted_at: datetime | None = None
    unit_id: str | None = None
    claimed_at: datetime | None = None
    completed: bool = False


class DutyRef(_Ref):
    """A member's 双报到 duty as the party service follows it: overdue (not reported to the
    residential community by the deadline, or moved away) since ``overdue_at``, counted for
    the community, street and unit it names, until the member registers; and the member's
    yearly commitments (承诺) counted made and fulfilled (践诺)."""

    KIND: ClassVar[str] = "duty"
    duty_id: str
    community_id: str | None = None
    unit_id: str | None = None
    overdue_at: datetime | None = None
    made: tuple[str, ...] = ()
    fulfilled: tuple[str, ...] = ()


Ref = Union[CaseRef, OrderRef, MemberRef, UnitRef, WorkerRef, AccountRef, WhistleRef, OrgRef, GridRef, CouncilRef,
            ProjectRef, DutyRef]
REF_TYPES: dict[str, type[_Ref]] = {
    c.KIND: c for c in (CaseRef, OrderRef, MemberRef, UnitRef, WorkerRef, AccountRef, WhistleRef, OrgRef, GridRef,
                        CouncilRef, ProjectRef, DutyRef)}


def ref_from_json(kind: str, data: Mapping[str, Any]) -> Ref:
    """Rebuild a stored ref from ``(kind, model_dump(mode="json"))``."""
    return REF_TYPES[kind].model_validate(data)  # type: ignore[return-value]


class Lookup(Protocol):
    """What earlier events established. Every method returns None when unknown."""

    def case(self, case_id: str) -> CaseRef | None: ...
    def order(self, order_id: str) -> OrderRef | None: ...
    def member(self, member_id: str) -> MemberRef | None: ...
    def unit(self, unit_id: str) -> UnitRef | None: ...
    def worker(self, worker_id: str) -> WorkerRef | None: ...
    def account(self, account_id: str) -> AccountRef | None: ...
    def whistle(self, whistle_id: str) -> WhistleRef | None: ...
    def org(self, org_id: str) -> OrgRef | None: ...
    def grid(self, grid_id: str) -> GridRef | None: ...
    def council(self, council_id: str) -> CouncilRef | None: ...
    def project(self, project_id: str) -> ProjectRef | None: ...
    def duty(self, member_id: str) -> DutyRef | None: ...


def _stored(cls: type[_Ref]) -> Callable[["MemoryLookup", str | None], Any]:
    """The :class:`Lookup` method of ``cls``: its stored ref by id, None when unknown."""

    def get(self: MemoryLookup, ref_id: str | None) -> Any:
        return None if ref_id is None else self.refs.get((cls.KIND, ref_id))

    get.__name__ = get.__qualname__ = cls.KIND
    return get


@dataclass
class MemoryLookup:
    """A :class:`Lookup` over a dict: the replay's scratch projection (and the tests')."""

    refs: dict[tuple[str, str], Ref] = field(default_factory=dict)

    case = _stored(CaseRef)
    order = _stored(OrderRef)
    member = _stored(MemberRef)
    unit = _stored(UnitRef)
    worker = _stored(WorkerRef)
    account = _stored(AccountRef)
    whistle = _stored(WhistleRef)
    org = _stored(OrgRef)
    grid = _stored(GridRef)
    council = _stored(CouncilRef)
    project = _stored(ProjectRef)
    duty = _stored(DutyRef)

    def of_kind(self, cls: type[_Ref]) -> list[Any]:
        """Every stored ref of ``cls``, by id (what a period's standing counters are derived from)."""
        return [r for (k, _), r in sorted(self.refs.items(), key=lambda kv: kv[0]) if k == cls.KIND]

    def put(self, ref: Ref) -> None:
        self.refs[(ref.KIND, ref.ref_id)] = ref

    def apply(self, refs: Iterable[Ref]) -> None:
        for r in refs:
            self.put(r)


def area_entities(grid_id: str | None = None, community_id: str | None = None,
                  street_id: str | None = None) -> list[Entity]:
    """Grid, community and street a place belongs to (the ones not given derived from the grid
    code); malformed or missing codes count for nobody."""
    out: list[Entity] = []
    if is_grid_id(grid_id):
        out.append((EntityType.GRID.value, grid_id))  # type: ignore[arg-type]
        community_id = community_id or community_id_of(grid_id)  # type: ignore[arg-type]
    if is_community_id(community_id):
        out.append((EntityType.COMMUNITY.value, community_id))  # type: ignore[arg-type]
        street_id = street_id or street_id_of(community_id)  # type: ignore[arg-type]
    if is_street_id(street_id):
        out.append((EntityType.STREET.value, street_id))  # type: ignore[arg-type]
    return out


def parent_of(entity_type: str, entity_id: str, lookup: Lookup) -> str | None:
    """Where an entity is ranked: grids and members within their community, grid workers within
    the community of their grid, communities and units within their street, streets and
    departments within their district (6-digit division code). None when unknown (ranked with the other orphans).
    """
    et = EntityType(entity_type)
    if et is EntityType.GRID:
        return community_id_of(entity_id) if is_grid_id(entity_id) else None
    if et is EntityType.COMMUNITY:
        return street_id_of(entity_id) if is_community_id(entity_id) else None
    if et is EntityType.STREET:
        return code_parent_of(entity_id) if is_street_id(entity_id) else None
    if et is EntityType.GRID_WORKER:
        w = lookup.worker(entity_id)
        return community_id_of(w.grid_id) if w and is_grid_id(w.grid_id) else None  # type: ignore[arg-type]
    if et is EntityType.MEMBER:
        m = lookup.member(entity_id)
        return m.community_id if m else None
    if et is EntityType.DEPARTMENT:
        return department_district(entity_id)
    u = lookup.unit(entity_id)
    return u.street_id if u else None


_DEPARTMENT_ID = re.compile(DEPARTMENT_ID_PATTERN)


def is_department_id(value: object) -> bool:
    """Whether ``value`` is a department id of the register (``110105.cgj``, ``110105001.zhzf``)."""
    return isinstance(value, str) and _DEPARTMENT_ID.fullmatch(value) is not None


def department_district(department_id: str) -> str | None:
    """Where a department is ranked: its district (the 6-digit division its id starts with),
    so that a district's departments and its streets' own are ranked together."""
    if not is_department_id(department_id):
        return None
    head = department_id.split(".", 1)[0]
    return code_parent_of(head) if is_street_id(head) else head
