"""Facts: how each upstream event increments the counters the indicators are computed from.

``facts_from_event(type, data, time, lookup)`` is pure: given an event's type, its
``data`` dict (CONTRACT.md field names; unknown fields ignored, optional extras used when
present), the envelope ``time`` and a ``lookup`` of what earlier events established, it
returns counter increments keyed (entity_type, entity_id, period, fact) — one per period
the increment falls in (month, quarter, year). ``refs_from_event`` returns the reference
records (case → grid and reporter, order → community and assignee, member → community and
unit, account → holder, ...) the application stores so that later events can be
attributed. Replaying the same history in the same order with an empty lookup therefore
reproduces every counter, hence every indicator value (:func:`replay`).

Attribution rules (who an event counts for):

- a case counts for its grid, the grid's community and street (from the 15-digit grid
  code) and its grid worker — the grid worker who reported it (网格发现: the 采集员 who
  reports also verifies). Extras on later events (``grid_id``/``community_id``/``street_id``)
  are used when the case was not seen reported.
- an order counts for its community and street (from ``orders.order.placed.v1`` or the
  ``community_id`` extra) and for its assignee: a registered member (and the member's
  unit), or a resident unit assigned directly.
- points count for the account holder when the holder is a registered member, the
  member's unit, community and street (or a ``community_id`` extra).
- a review counts for its subject in the review's period and the periods enclosing it.

Each case / order fact is counted once per case / order (flags in the refs), so a
re-delivered event that slipped past the inbox changes no indicator (order dispatches are
the exception: each dispatch is an attempt; the inbox drops re-deliveries by envelope id).

Time: the instant a fact occurred is the ``occurred_at``/``at``/``posted_at``... field of
``data`` when present, else the envelope ``time`` (:func:`occurred_at`). Cohorts (which
period a counter lands in) are listed on :class:`.indicators.Fact`. Overdue events count as
延期 only for the handling or verification stage (:data:`LATE_STAGES`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, ClassVar, Iterable, Mapping, Protocol, Union

from pydantic import BaseModel, ConfigDict

from schemas.assessment import EntityType

from .indicators import Fact
from .periods import enclosing_periods, periods_of

_GRID_RE = re.compile(r"^\d{15}$")
_COMMUNITY_RE = re.compile(r"^\d{12}$")
_STREET_RE = re.compile(r"^\d{9}$")

FactKey = tuple[str, str, str, str]
"""(entity_type, entity_id, period, fact)."""


@dataclass(frozen=True)
class FactDelta:
    """Add ``delta`` to the counter ``fact`` of (entity_type, entity_id) in ``period``."""

    entity_type: str
    entity_id: str
    period: str
    fact: str
    delta: float

    @property
    def key(self) -> FactKey:
        return (self.entity_type, self.entity_id, self.period, self.fact)


# ---------------------------------------------------------------------------------------
# References established by earlier events (stored by the application, as jsonb)
# ---------------------------------------------------------------------------------------


class _Ref(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    KIND: ClassVar[str] = ""

    @property
    def ref_id(self) -> str:
        raise NotImplementedError


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

    @property
    def ref_id(self) -> str:
        return self.case_id


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

    @property
    def ref_id(self) -> str:
        return self.order_id


class MemberRef(_Ref):
    """A Party member who reported to a community (双报到), with their unit."""

    KIND: ClassVar[str] = "member"
    member_id: str
    community_id: str | None = None
    unit_id: str | None = None

    @property
    def ref_id(self) -> str:
        return self.member_id


class UnitRef(_Ref):
    """A resident unit, placed in the community/street where its first member reported."""

    KIND: ClassVar[str] = "unit"
    unit_id: str
    community_id: str | None = None
    street_id: str | None = None

    @property
    def ref_id(self) -> str:
        return self.unit_id


class WorkerRef(_Ref):
    """A grid worker and the grid they last patrolled or reported in."""

    KIND: ClassVar[str] = "worker"
    worker_id: str
    grid_id: str | None = None

    @property
    def ref_id(self) -> str:
        return self.worker_id


class AccountRef(_Ref):
    """A points account: its holder and kind, and the periods it was already counted active in."""

    KIND: ClassVar[str] = "account"
    account_id: str
    holder_id: str | None = None
    kind: str | None = None
    community_id: str | None = None
    active_periods: tuple[str, ...] = ()

    @property
    def ref_id(self) -> str:
        return self.account_id


Ref = Union[CaseRef, OrderRef, MemberRef, UnitRef, WorkerRef, AccountRef]
REF_TYPES: dict[str, type[_Ref]] = {c.KIND: c for c in (CaseRef, OrderRef, MemberRef, UnitRef, WorkerRef, AccountRef)}


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


@dataclass
class MemoryLookup:
    """A :class:`Lookup` over dicts — for tests and for the recompute's scratch projection."""

    refs: dict[tuple[str, str], Ref] = field(default_factory=dict)

    def _get(self, kind: str, id: str | None) -> Any:
        return None if id is None else self.refs.get((kind, id))

    def case(self, case_id: str) -> CaseRef | None:
        return self._get("case", case_id)

    def order(self, order_id: str) -> OrderRef | None:
        return self._get("order", order_id)

    def member(self, member_id: str) -> MemberRef | None:
        return self._get("member", member_id)

    def unit(self, unit_id: str) -> UnitRef | None:
        return self._get("unit", unit_id)

    def worker(self, worker_id: str) -> WorkerRef | None:
        return self._get("worker", worker_id)

    def account(self, account_id: str) -> AccountRef | None:
        return self._get("account", account_id)

    def put(self, ref: Ref) -> None:
        self.refs[(ref.KIND, ref.ref_id)] = ref

    def apply(self, refs: Iterable[Ref]) -> None:
        for r in refs:
            self.put(r)


# ---------------------------------------------------------------------------------------
# The mapping
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventEffect:
    """What one event does to the projection: counter increments and refs to upsert."""

    facts: list[FactDelta] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)


Entity = tuple[str, str]  # (entity_type, entity_id)


def _s(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _ts(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v if v.tzinfo is not None else None
    if isinstance(v, str) and v:
        try:
            t = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        return t if t.tzinfo is not None else None
    return None


def _num(v: Any, default: float = 0.0) -> float:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    return default


def _inc(entities: Iterable[Entity], at: datetime | None, fact: Fact, amount: float = 1.0) -> list[FactDelta]:
    """One increment per entity per period (month, quarter, year) that ``at`` falls in."""
    if at is None or amount == 0:
        return []
    periods = periods_of(at)
    return [FactDelta(et, eid, p, fact.value, amount) for et, eid in _dedupe(entities) for p in periods]


def _inc_periods(entities: Iterable[Entity], periods: Iterable[str], fact: Fact, amount: float) -> list[FactDelta]:
    if amount == 0:
        return []
    ps = tuple(periods)
    return [FactDelta(et, eid, p, fact.value, amount) for et, eid in _dedupe(entities) for p in ps]


def _dedupe(entities: Iterable[Entity]) -> list[Entity]:
    seen: list[Entity] = []
    for e in entities:
        if e[1] and e not in seen:
            seen.append(e)
    return seen


def area_entities(grid_id: str | None = None, community_id: str | None = None, street_id: str | None = None) -> list[Entity]:
    """Grid, community and street a place belongs to (codes derived from the grid code)."""
    out: list[Entity] = []
    if grid_id and _GRID_RE.match(grid_id):
        out.append((EntityType.GRID.value, grid_id))
        community_id = community_id or grid_id[:12]
    if community_id and _COMMUNITY_RE.match(community_id):
        out.append((EntityType.COMMUNITY.value, community_id))
        street_id = street_id or community_id[:9]
    if street_id and _STREET_RE.match(street_id):
        out.append((EntityType.STREET.value, street_id))
    return out


# -- grid ----------------------------------------------------------------------------------


def _case_base(data: Mapping[str, Any], lookup: Lookup) -> tuple[CaseRef | None, CaseRef]:
    """(the stored ref or None, a ref to work on, completed from extras)."""
    case_id = str(data.get("case_id"))
    old = lookup.case(case_id)
    ref = old or CaseRef(case_id=case_id)
    upd: dict[str, Any] = {}
    for k in ("grid_id", "community_id", "street_id"):
        if getattr(ref, k) is None and _s(data.get(k)):
            upd[k] = data[k]
    return old, (ref.model_copy(update=upd) if upd else ref)


def _case_entities(ref: CaseRef) -> list[Entity]:
    out = area_entities(ref.grid_id, ref.community_id, ref.street_id)
    if ref.worker_id:
        out.append((EntityType.GRID_WORKER.value, ref.worker_id))
    return out


def _case_reported(data, time, lookup) -> EventEffect:
    old, ref = _case_base(data, lookup)
    if old is not None and old.reported_at is not None:
        return EventEffect()  # already counted
    reporter = data.get("reporter") if isinstance(data.get("reporter"), Mapping) else {}
    worker = _s(reporter.get("id")) if reporter.get("kind") == "grid_worker" else None
    ref = ref.model_copy(update={"reported_at": time, "worker_id": ref.worker_id or worker})
    refs: list[Ref] = [ref]
    if worker and ref.grid_id:
        refs.append(WorkerRef(worker_id=worker, grid_id=ref.grid_id))
    return EventEffect(_inc(_case_entities(ref), time, Fact.CASES_RECEIVED), refs)


def _receive_if_unseen(old: CaseRef | None, ref: CaseRef, time: datetime) -> tuple[CaseRef, list[FactDelta]]:
    """A case whose report was never seen counts as received when first seen."""
    if old is not None and old.reported_at is not None:
        return ref, []
    ref = ref.model_copy(update={"reported_at": time})
    return ref, _inc(_case_entities(ref), time, Fact.CASES_RECEIVED)


def _ensure_due(ref: CaseRef, due: datetime | None) -> tuple[CaseRef, list[FactDelta]]:
    """Count the case as due (应结案) once, in the period of its first handling deadline."""
    if ref.due_at is not None or due is None:
        return ref, []
    return ref.model_copy(update={"due_at": due}), _inc(_case_entities(ref), due, Fact.CASES_DUE)


def _mark_late(ref: CaseRef, data: Mapping[str, Any], time: datetime) -> tuple[CaseRef, list[FactDelta]]:
    """Count the case as extended-or-overdue (延期) once, in its deadline cohort."""
    if ref.late or ref.closed:
        return ref, []
    ref, facts = _ensure_due(ref, _ts(data.get("due_at")) or time)
    return ref.model_copy(update={"late": True}), facts + _inc(_case_entities(ref), ref.due_at, Fact.CASES_LATE)


def _case_registered(data, time, lookup) -> EventEffect:
    """立案. Its ``due_at`` is the dispatch deadline (a stage time limit), not the handling
    deadline, so it does not make the case due; the first dispatch does."""
    old, ref = _case_base(data, lookup)
    if ref.registered:
        return EventEffect()
    ref, facts = _receive_if_unseen(old, ref, time)
    facts += _inc(_case_entities(ref), ref.reported_at, Fact.CASES_REGISTERED)
    return EventEffect(facts, [ref.model_copy(update={"registered": True})])


def _case_dismissed(data, time, lookup) -> EventEffect:
    old, ref = _case_base(data, lookup)
    ref, facts = _receive_if_unseen(old, ref, time)
    return EventEffect(facts, [ref] if facts else [])


def _case_dispatched(data, time, lookup) -> EventEffect:
    """派遣. The first dispatch's ``due_at`` (handling deadline) puts the case in its deadline
    cohort; a later dispatch with a later deadline (other than after a rework) is an
    extension (延期)."""
    old, ref = _case_base(data, lookup)
    facts: list[FactDelta] = []
    if not ref.registered:  # dispatch implies registration (立案 precedes 派遣)
        ref, facts = _receive_if_unseen(old, ref, time)
        facts += _inc(_case_entities(ref), ref.reported_at, Fact.CASES_REGISTERED)
        ref = ref.model_copy(update={"registered": True})
    if not ref.dispatched:
        facts += _inc(_case_entities(ref), ref.reported_at or time, Fact.CASES_DISPATCHED)
        ref = ref.model_copy(update={"dispatched": True})
    due = _ts(data.get("due_at"))
    if ref.due_at is None:
        ref, more = _ensure_due(ref, due)
        facts += more
    elif due is not None and due > ref.due_at and not ref.reworked:
        ref, more = _mark_late(ref, data, time)
        facts += more
    return EventEffect(facts, [ref])


def _case_verified(data, time, lookup) -> EventEffect:
    """核查. A failed verification (返工) counts once per case, in its deadline cohort."""
    _, ref = _case_base(data, lookup)
    if data.get("passed") is not False or ref.reworked:
        return EventEffect()
    ref, facts = _ensure_due(ref, time)
    facts += _inc(_case_entities(ref), ref.due_at, Fact.CASES_REWORKED)
    return EventEffect(facts, [ref.model_copy(update={"reworked": True})])


def _case_closed(data, time, lookup) -> EventEffect:
    """结案, in the deadline cohort; a case closed without ever getting a handling deadline
    is due in the period it was closed (so closed never exceeds due)."""
    _, ref = _case_base(data, lookup)
    if ref.closed:
        return EventEffect()
    ref, facts = _ensure_due(ref, _ts(data.get("due_at")) or time)
    ents = _case_entities(ref)
    facts += _inc(ents, ref.due_at, Fact.CASES_CLOSED)
    if data.get("on_time") is True:
        facts += _inc(ents, ref.due_at, Fact.CASES_CLOSED_ON_TIME)
    facts += _inc(ents, ref.due_at, Fact.HANDLING_SECONDS, _num(data.get("handling_seconds")))
    return EventEffect(facts, [ref.model_copy(update={"closed": True})])


LATE_STAGES = frozenset({None, "handle", "verify"})
"""Overdue stages that make a case 延期: a missed handling or verification deadline (or no
stage given). Missed register/dispatch deadlines are intake delays, seen in 立案率/派遣率."""


def _case_overdue(data, time, lookup) -> EventEffect:
    _, ref = _case_base(data, lookup)
    if data.get("stage") not in LATE_STAGES:
        return EventEffect()
    ref, facts = _mark_late(ref, data, time)
    return EventEffect(facts, [ref] if facts else [])


_SATISFACTION = {
    "satisfied": Fact.FEEDBACK_SATISFIED,
    "basically_satisfied": Fact.FEEDBACK_BASICALLY_SATISFIED,
    "unsatisfied": Fact.FEEDBACK_UNSATISFIED,
}


def _case_feedback(data, time, lookup) -> EventEffect:
    _, ref = _case_base(data, lookup)
    fact = _SATISFACTION.get(data.get("satisfaction"))  # type: ignore[arg-type]
    if ref.feedback or fact is None:
        return EventEffect()  # the first feedback of a case counts
    ents = _case_entities(ref)
    facts = _inc(ents, time, Fact.FEEDBACK_RECEIVED) + _inc(ents, time, fact)
    return EventEffect(facts, [ref.model_copy(update={"feedback": True})])


def _patrol_logged(data, time, lookup) -> EventEffect:
    worker = _s(data.get("grid_worker_id"))
    grid = _s(data.get("grid_id"))
    started, ended = _ts(data.get("started_at")), _ts(data.get("ended_at"))
    at = started or time
    ents = area_entities(grid, _s(data.get("community_id")), _s(data.get("street_id")))
    if worker:
        ents.append((EntityType.GRID_WORKER.value, worker))
    facts = _inc(ents, at, Fact.PATROLS_LOGGED)
    if started and ended and ended > started:
        facts += _inc(ents, at, Fact.PATROL_SECONDS, (ended - started).total_seconds())
    refs: list[Ref] = [WorkerRef(worker_id=worker, grid_id=grid)] if worker and grid else []
    return EventEffect(facts, refs)


# -- orders --------------------------------------------------------------------------------


def _order_base(data: Mapping[str, Any], lookup: Lookup) -> OrderRef:
    order_id = str(data.get("order_id"))
    ref = lookup.order(order_id) or OrderRef(order_id=order_id)
    upd = {k: data[k] for k in ("community_id", "grid_id") if getattr(ref, k) is None and _s(data.get(k))}
    return ref.model_copy(update=upd) if upd else ref


def _order_area(ref: OrderRef) -> list[Entity]:
    return [e for e in area_entities(None, ref.community_id or (ref.grid_id[:12] if ref.grid_id else None))]


def assignee_entities(assignee_id: str | None, lookup: Lookup) -> list[Entity]:
    """A registered member and their unit, or a unit assigned directly; else nothing."""
    if not assignee_id:
        return []
    m = lookup.member(assignee_id)
    if m is not None:
        out = [(EntityType.MEMBER.value, assignee_id)]
        if m.unit_id:
            out.append((EntityType.UNIT.value, m.unit_id))
        return out
    if lookup.unit(assignee_id) is not None:
        return [(EntityType.UNIT.value, assignee_id)]
    return []


def _order_placed(data, time, lookup) -> EventEffect:
    order_id = str(data.get("order_id"))
    if lookup.order(order_id) is not None:
        return EventEffect()
    ref = _order_base(data, lookup)
    return EventEffect(_inc(_order_area(ref), time, Fact.ORDERS_PLACED), [ref])


def _order_dispatched(data, time, lookup) -> EventEffect:
    ref = _order_base(data, lookup)
    assignee = _s(data.get("assignee_id"))
    facts = _inc(_order_area(ref) + assignee_entities(assignee, lookup), time, Fact.ORDERS_DISPATCHED)
    ref = ref.model_copy(update={"assignee_id": assignee, "dispatched_at": time, "accepted": False, "accepted_at": None})
    return EventEffect(facts, [ref])


def _order_accepted(data, time, lookup) -> EventEffect:
    ref = _order_base(data, lookup)
    if ref.accepted:
        return EventEffect()
    assignee = _s(data.get("assignee_id")) or ref.assignee_id
    facts = _inc(_order_area(ref) + assignee_entities(assignee, lookup), ref.dispatched_at or time, Fact.ORDERS_ACCEPTED)
    return EventEffect(facts, [ref.model_copy(update={"accepted": True, "accepted_at": time, "assignee_id": assignee})])


def _order_not_taken(fact: Fact) -> Callable[..., EventEffect]:
    def handler(data, time, lookup) -> EventEffect:
        ref = _order_base(data, lookup)
        assignee = _s(data.get("assignee_id")) or ref.assignee_id
        facts = _inc(_order_area(ref) + assignee_entities(assignee, lookup), time, fact)
        return EventEffect(facts, [ref.model_copy(update={"assignee_id": None})])

    return handler


def _order_completed(data, time, lookup) -> EventEffect:
    ref = _order_base(data, lookup)
    if ref.completed:
        return EventEffect()
    assignee = _s(data.get("assignee_id")) or ref.assignee_id
    ents = _order_area(ref) + assignee_entities(assignee, lookup)
    at = ref.accepted_at or time
    facts = _inc(ents, at, Fact.ORDERS_COMPLETED) + _inc(ents, at, Fact.SERVICE_MINUTES, _num(data.get("service_minutes")))
    return EventEffect(facts, [ref.model_copy(update={"completed": True})])


def _order_evaluated(data, time, lookup) -> EventEffect:
    ref = _order_base(data, lookup)
    if ref.evaluated:
        return EventEffect()
    assignee = _s(data.get("assignee_id")) or ref.assignee_id
    ents = _order_area(ref) + assignee_entities(assignee, lookup)
    facts = _inc(ents, time, Fact.ORDERS_EVALUATED) + _inc(ents, time, Fact.RATING_SUM, _num(data.get("rating")))
    if data.get("passed") is True:
        facts += _inc(ents, time, Fact.ORDERS_PASSED)
    return EventEffect(facts, [ref.model_copy(update={"evaluated": True})])


def _member_registered(data, time, lookup) -> EventEffect:
    member_id = _s(data.get("member_id"))
    if not member_id:
        return EventEffect()
    community, unit = _s(data.get("community_id")), _s(data.get("unit_id"))
    old = lookup.member(member_id)
    ref = MemberRef(member_id=member_id, community_id=community, unit_id=unit)
    if old == ref:
        return EventEffect()
    refs: list[Ref] = [ref]
    ents = area_entities(None, community)
    if unit:
        ents.append((EntityType.UNIT.value, unit))
        if lookup.unit(unit) is None:
            street = community[:9] if community and _COMMUNITY_RE.match(community) else None
            refs.append(UnitRef(unit_id=unit, community_id=community, street_id=street))
    return EventEffect(_inc(ents, time, Fact.MEMBERS_REPORTED), refs)


def _post_claimed(data, time, lookup) -> EventEffect:
    member = _s(data.get("member_id"))
    m = lookup.member(member) if member else None
    ents = area_entities(None, _s(data.get("community_id")) or (m.community_id if m else None))
    ents += assignee_entities(member, lookup)
    return EventEffect(_inc(ents, time, Fact.POSTS_CLAIMED))


# -- points --------------------------------------------------------------------------------


def _account_opened(data, time, lookup) -> EventEffect:
    account_id = _s(data.get("account_id"))
    if not account_id or lookup.account(account_id) is not None:
        return EventEffect()
    ref = AccountRef(
        account_id=account_id, holder_id=_s(data.get("holder_id")), kind=_s(data.get("kind")),
        community_id=_s(data.get("community_id")),
    )
    return EventEffect([], [ref])


def _person_entities(account: AccountRef, data: Mapping[str, Any], lookup: Lookup) -> tuple[list[Entity], list[Entity]]:
    """(the member entity if the holder is a member, the unit/community/street the person counts in:
    the member's community, else the account's, else a ``community_id`` extra on the event)."""
    holder = account.holder_id or account.account_id
    m = lookup.member(holder)
    person: list[Entity] = [(EntityType.MEMBER.value, holder)] if m else []
    community = (m.community_id if m else None) or account.community_id or _s(data.get("community_id"))
    area = area_entities(None, community)
    if m and m.unit_id:
        area.append((EntityType.UNIT.value, m.unit_id))
    return person, area


def _is_resident(acc: AccountRef) -> bool:
    return acc.kind in (None, "resident")


def _deed_approved(data, time, lookup) -> EventEffect:
    acc_id = _s(data.get("account_id"))
    if not acc_id:
        return EventEffect()
    acc = lookup.account(acc_id) or AccountRef(account_id=acc_id)
    person, area = _person_entities(acc, data, lookup)
    return EventEffect(_inc(person + area, time, Fact.DEEDS_APPROVED))


def transfer_kind(data: Mapping[str, Any]) -> str | None:
    """``kind`` extra, else ``reason`` when it is one of award/redemption/expiry/adjustment."""
    for v in (data.get("kind"), data.get("reason")):
        if v in ("award", "redemption", "expiry", "adjustment"):
            return v  # type: ignore[return-value]
    return None


def _transfer_posted(data, time, lookup) -> EventEffect:
    kind = transfer_kind(data)
    amount = _num(data.get("amount"))
    if kind not in ("award", "adjustment") or amount <= 0:
        return EventEffect()
    facts: list[FactDelta] = []
    refs: list[Ref] = []
    legs = [(_s(data.get("credit_account")), amount)]
    if kind == "adjustment":
        legs.append((_s(data.get("debit_account")), -amount))
    for acc_id, signed in legs:
        if not acc_id:
            continue
        acc = lookup.account(acc_id) or AccountRef(account_id=acc_id)
        if not _is_resident(acc):
            continue
        person, area = _person_entities(acc, data, lookup)
        facts += _inc(person + area, time, Fact.POINTS_EARNED, signed)
        if kind == "award":
            new = [p for p in periods_of(time) if p not in acc.active_periods]
            if new:
                facts += _inc_periods(area, new, Fact.ACTIVE_VOLUNTEERS, 1)
                refs.append(acc.model_copy(update={"active_periods": tuple(sorted(acc.active_periods + tuple(new)))}))
    return EventEffect(facts, refs)


# -- assessment's own events ---------------------------------------------------------------


def _review_recorded(data, time, lookup) -> EventEffect:
    subject_type, subject_id, period = _s(data.get("subject_type")), _s(data.get("subject_id")), _s(data.get("period"))
    if not (subject_type and subject_id and period):
        return EventEffect()
    ents = [(subject_type, subject_id)]
    periods = enclosing_periods(period)
    score = _num(data.get("score"))
    if data.get("replaces_review_id"):
        return EventEffect(_inc_periods(ents, periods, Fact.REVIEW_SCORE_SUM, score - _num(data.get("replaced_score"))))
    return EventEffect(
        _inc_periods(ents, periods, Fact.REVIEWS_RECEIVED, 1) + _inc_periods(ents, periods, Fact.REVIEW_SCORE_SUM, score)
    )


HANDLERS: dict[str, Callable[[Mapping[str, Any], datetime, Lookup], EventEffect]] = {
    "grid.case.reported.v1": _case_reported,
    "grid.case.registered.v1": _case_registered,
    "grid.case.dismissed.v1": _case_dismissed,
    "grid.case.dispatched.v1": _case_dispatched,
    "grid.case.verified.v1": _case_verified,
    "grid.case.closed.v1": _case_closed,
    "grid.case.overdue.v1": _case_overdue,
    "grid.case.feedback.v1": _case_feedback,
    "grid.patrol.logged.v1": _patrol_logged,
    "orders.order.placed.v1": _order_placed,
    "orders.order.dispatched.v1": _order_dispatched,
    "orders.order.accepted.v1": _order_accepted,
    "orders.order.declined.v1": _order_not_taken(Fact.ORDERS_DECLINED),
    "orders.order.dispatch_expired.v1": _order_not_taken(Fact.ORDERS_DISPATCH_EXPIRED),
    "orders.order.completed.v1": _order_completed,
    "orders.order.evaluated.v1": _order_evaluated,
    "orders.member.registered.v1": _member_registered,
    "orders.post.claimed.v1": _post_claimed,
    "points.account.opened.v1": _account_opened,
    "points.deed.approved.v1": _deed_approved,
    "points.transfer.posted.v1": _transfer_posted,
    "assessment.review.recorded.v1": _review_recorded,
}
"""Event types that change a counter or a ref. Every other type (grid.case.handled.v1,
grid.case.escalated.v1, orders.order.cancelled.v1, orders.post.released.v1,
points.deed.submitted.v1, points.deed.rejected.v1, points.transfer.refused.v1, ...) has
no effect on any indicator."""

CONSUMED_TYPES: frozenset[str] = frozenset(HANDLERS)


OCCURRENCE_FIELDS = ("occurred_at", "at", "posted_at", "reviewed_at", "opened_at")
"""Optional ``data`` fields that upstream services fill with the instant the fact occurred."""


def occurred_at(data: Mapping[str, Any], time: datetime) -> datetime:
    """When the fact occurred: the first occurrence field of ``data`` that holds an RFC 3339
    time with offset, else the envelope ``time`` (upstream sets both to the same instant;
    preferring ``data`` keeps a replay exact even if events were re-wrapped)."""
    for f in OCCURRENCE_FIELDS:
        t = _ts(data.get(f))
        if t is not None:
            return t
    return time


def effect_of_event(type: str, data: Mapping[str, Any], time: datetime, lookup: Lookup) -> EventEffect:
    """Counter increments and ref upserts for one event (apply both in one transaction)."""
    if time.tzinfo is None:
        raise ValueError("event time must carry an offset")
    handler = HANDLERS.get(type)
    if handler is None:
        return EventEffect()
    return handler(data, occurred_at(data, time), lookup)


def facts_from_event(type: str, data: Mapping[str, Any], time: datetime, lookup: Lookup) -> list[FactDelta]:
    """Counter increments keyed (entity_type, entity_id, period, fact) for one event."""
    return effect_of_event(type, data, time, lookup).facts


def refs_from_event(type: str, data: Mapping[str, Any], time: datetime, lookup: Lookup) -> list[Ref]:
    """Refs to upsert after this event, so that later events can be attributed."""
    return effect_of_event(type, data, time, lookup).refs


FactTable = dict[FactKey, float]


def replay(
    events: Iterable[tuple[str, Mapping[str, Any], datetime]], lookup: MemoryLookup | None = None
) -> tuple[FactTable, MemoryLookup]:
    """Fold a history (type, data, time) into counters from scratch — the recompute's projection.

    Events must come in the order they were processed (per topic; across topics, by time).
    """
    lookup = lookup if lookup is not None else MemoryLookup()
    table: FactTable = {}
    for type_, data, time in events:
        eff = effect_of_event(type_, data, time, lookup)
        for d in eff.facts:
            table[d.key] = table.get(d.key, 0.0) + d.delta
        lookup.apply(eff.refs)
    return table, lookup


def facts_by_entity(table: Mapping[FactKey, float], period: str) -> dict[Entity, dict[str, float]]:
    """The counters of every entity that has any in ``period``."""
    out: dict[Entity, dict[str, float]] = {}
    for (et, eid, p, fact), v in table.items():
        if p == period:
            out.setdefault((et, eid), {})[fact] = v
    return dict(sorted(out.items()))


def parent_of(entity_type: str, entity_id: str, lookup: Lookup) -> str | None:
    """Where an entity is ranked: grids and members within their community, grid workers within
    the community of their grid, communities and units within their street, streets within
    their district (6-digit division code). None when unknown (ranked with the other orphans).
    """
    et = EntityType(entity_type)
    if et is EntityType.GRID:
        return entity_id[:12] if _GRID_RE.match(entity_id) else None
    if et is EntityType.COMMUNITY:
        return entity_id[:9] if _COMMUNITY_RE.match(entity_id) else None
    if et is EntityType.STREET:
        return entity_id[:6] if _STREET_RE.match(entity_id) else None
    if et is EntityType.GRID_WORKER:
        w = lookup.worker(entity_id)
        return w.grid_id[:12] if w and w.grid_id and _GRID_RE.match(w.grid_id) else None
    if et is EntityType.MEMBER:
        m = lookup.member(entity_id)
        return m.community_id if m else None
    u = lookup.unit(entity_id)
    return u.street_id if u else None
