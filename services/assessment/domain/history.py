"""The event history: what the event log keeps of each consumed event, the order it is
replayed in, and its fold into counters.

The service holds the consumed events as :class:`StoredEvent` (the typed payload with its
envelope source, id and time) and folds them through the fact builders one at a time as they
arrive (:mod:`.incremental`), with the result of putting them all in :func:`replay_order` and
folding them at once (:func:`fold`, what the tests compare it with). The order is
the time each fact occurred, then a lifecycle rank for facts of the same instant (a member
registers before taking an order, a case is reported before it is registered...), then
(source, id) — a total order that depends on the history alone, never on the order Kafka
delivered it in (Kafka orders nothing across topics or partitions).
"""
from __future__ import annotations

import functools

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

from pydantic import ValidationError

from schemas import assessment, grid, orders, party, points
from schemas.common import Event
from schemas.envelope import DecodeError
from schemas.pii import field_tags, minimised, restored
from schemas.registry import model_for

from .facts import CONSUMED, MemoryLookup, replay
from .facts.core import FactTable, occurred_at

LIFECYCLE: tuple[type[Event], ...] = (
    party.OrgEstablished,
    party.CoverageGap,
    party.CouncilEffective,
    party.UnitReported,
    party.AgreementSigned,
    party.MemberReportOverdue,
    orders.MemberRegistered,
    points.AccountOpened,
    grid.CaseReported,
    grid.CaseRegistered,
    grid.CaseDismissed,
    grid.CaseDispatched,
    grid.CaseAccepted,
    grid.CaseContacted,
    grid.CaseReturnReviewed,
    grid.CaseExtensionGranted,
    grid.CaseHandled,
    grid.CaseVerified,
    grid.CaseOverdue,
    grid.CaseSupervised,
    grid.CaseClosed,
    grid.CaseFeedback,
    grid.CaseExclusionReviewed,
    grid.PatrolLogged,
    grid.WhistleBlown,
    grid.WhistleAnswered,
    grid.WhistleRated,
    orders.OrderPlaced,
    orders.OrderDispatched,
    orders.OrderAccepted,
    orders.OrderDeclined,
    orders.OrderDispatchExpired,
    orders.OrderCompleted,
    orders.OrderEvaluated,
    orders.PostClaimed,
    points.DeedApproved,
    points.TransferPosted,
    party.MeetingHeld,
    party.MeetingOverdue,
    party.ResolutionCompleted,
    party.ResolutionOverdue,
    party.ProjectPosted,
    party.ProjectClaimed,
    party.ProjectCompleted,
    party.OrgLifeHeld,
    party.OrgLifeOverdue,
    party.CommitmentMade,
    party.CommitmentFulfilled,
    assessment.ReviewRecorded,
)
"""Lifecycle rank of the consumed payload classes, for facts that occurred at the same instant."""
_RANK = {c: i for i, c in enumerate(LIFECYCLE)}
if set(LIFECYCLE) != CONSUMED:
    raise RuntimeError(f"every consumed payload class needs a lifecycle rank: {set(LIFECYCLE) ^ CONSUMED}")


UNREAD_IDENTIFIERS: dict[type[Event], frozenset[str]] = {
    c: frozenset(name for name, category in field_tags(c).items() if category == "identifier")
    for c in (grid.CaseHandled, grid.CaseAccepted, grid.CaseContacted, grid.CaseReturnReviewed,
              grid.CaseExtensionGranted, grid.CaseSupervised, grid.CaseExclusionReviewed,
              grid.WhistleBlown, grid.WhistleAnswered, grid.WhistleRated, party.OrgEstablished)
}
"""Consumed event types whose identifiers no rule reads (who accepted, contacted, reviewed,
blew, answered or rated: department staff and officers; an organisation's secretary): the log
keeps none of them. A
department's, street's or case's id is no person's and stays."""

_IDENTIFIER_STAND_IN = "-"

COUNTED_ONLY: dict[type[Event], tuple[str, ...]] = {
    party.MeetingHeld: ("attendees", "absentees"),
    party.OrgLifeHeld: ("attendees", "absentees"),
}
"""Lists of people the rules only count (出勤率, 参学率): the log keeps how many, each id
replaced by a neutral stand-in."""


def log_data(model: type[Event], data: Mapping[str, Any]) -> dict[str, Any]:
    """What the event log keeps of an event's ``data``: :func:`schemas.pii.minimised` (no free
    text, places, media, names, contacts or credentials), less the identifiers no rule reads
    (:data:`UNREAD_IDENTIFIERS`), and only the length of the lists the rules count
    (:data:`COUNTED_ONLY`)."""
    kept = minimised(model, data)
    drop = UNREAD_IDENTIFIERS.get(model, frozenset())
    counted = {n: [_IDENTIFIER_STAND_IN] * len(kept[n]) for n in COUNTED_ONLY.get(model, ()) if n in kept}
    return {k: counted.get(k, v) for k, v in kept.items() if k not in drop}


def _with_stand_ins(model: type[Event], data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` with a neutral stand-in for each required identifier the log did not keep."""
    missing = [n for n in UNREAD_IDENTIFIERS.get(model, ()) if n not in data and model.model_fields[n].is_required()]
    return {**data, **{n: _IDENTIFIER_STAND_IN for n in missing}} if missing else data


@dataclass(frozen=True)
class StoredEvent:
    """One consumed event as the event log keeps it: its typed payload, the envelope's source,
    id and time, and the topic it came from. ``raw`` is the ``data`` as received, which the
    log stores without the personal fields no rule reads (free text, places, media, names:
    :func:`schemas.pii.minimised`, and the identifiers of :data:`UNREAD_IDENTIFIERS`:
    :func:`log_data`; None: the payload's own JSON); the domain never reads it."""

    source: str
    id: str
    topic: str
    payload: Event
    time: datetime  # envelope time
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def type(self) -> str:
        return self.payload.TYPE

    @property
    def rank(self) -> int:
        return _RANK[type(self.payload)]

    # kept once computed (the fold sorts and compares events by them many times over)
    @functools.cached_property
    def occurred_at(self) -> datetime:
        return occurred_at(self.payload, self.time)

    @functools.cached_property
    def sort_key(self) -> tuple:
        return (self.occurred_at, self.rank, self.source, self.id)


def stored_event(source: str, id: str, topic: str, type_: str, data: Mapping[str, Any], time: datetime) -> StoredEvent:
    """A row of the event log (its stored JSON) decoded into its payload class by the contract
    registry (the personal fields the log does not keep get neutral stand-ins,
    :func:`schemas.pii.restored`); :class:`~schemas.envelope.DecodeError` when the type is not consumed or the data
    does not validate."""
    model = model_for(type_)
    if model not in CONSUMED:
        raise DecodeError("unexpected_type", f"{type_!r} is not an event assessment consumes", "type")
    try:
        payload = restored(model, _with_stand_ins(model, data))  # type: ignore[arg-type]
    except ValidationError as e:
        raise DecodeError("invalid_data", f"{source} {id}: {e.errors()[0]['msg']}", "data") from None
    return StoredEvent(source, id, topic, payload, time)


def replay_order(events: Iterable[StoredEvent]) -> list[StoredEvent]:
    """Distinct (source, id), in replay order."""
    seen: dict[tuple[str, str], StoredEvent] = {}
    for e in events:
        seen.setdefault((e.source, e.id), e)
    return sorted(seen.values(), key=lambda e: e.sort_key)


def fold(events: Iterable[StoredEvent]) -> tuple[FactTable, MemoryLookup]:
    """Counters and refs of a history (already in replay order)."""
    return replay((e.payload, e.time) for e in events)
