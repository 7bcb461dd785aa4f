"""The event history and what a period's scorecards are, computed from it (no I/O here).

The service and the recompute CLI share this code path: both hold the consumed events as
:class:`StoredEvent` rows, put them in :func:`replay_order`, fold them through the pure
domain (:func:`services.assessment.domain.replay`) and score a period
(:func:`publication_for`). The order is the time each fact occurred, then a lifecycle rank
for facts of the same instant (a member registers before taking an order, a case is
reported before it is registered...), then (source, id) — a total order that depends on
the history alone, never on the order Kafka delivered it in (Kafka orders nothing across
topics or partitions).
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

import orjson

from schemas.assessment import AlertRaised, ScorecardPublished
from services.assessment.domain import (
    CONSUMED_TYPES,
    EntityFacts,
    MemoryLookup,
    Publication,
    Scheme,
    close_period,
    facts_by_entity,
    parent_of,
    replay,
    scheme_for_period,
)
from services.assessment.domain.facts import FactTable, occurred_at
from services.assessment.domain.periods import Period
from services.assessment.domain.scorecards import NAMESPACE

TYPE_ORDER: tuple[str, ...] = (
    "orders.member.registered.v1",
    "points.account.opened.v1",
    "grid.case.reported.v1",
    "grid.case.registered.v1",
    "grid.case.dismissed.v1",
    "grid.case.dispatched.v1",
    "grid.case.verified.v1",
    "grid.case.overdue.v1",
    "grid.case.closed.v1",
    "grid.case.feedback.v1",
    "grid.patrol.logged.v1",
    "orders.order.placed.v1",
    "orders.order.dispatched.v1",
    "orders.order.accepted.v1",
    "orders.order.declined.v1",
    "orders.order.dispatch_expired.v1",
    "orders.order.completed.v1",
    "orders.order.evaluated.v1",
    "orders.post.claimed.v1",
    "points.deed.approved.v1",
    "points.transfer.posted.v1",
    "assessment.review.recorded.v1",
)
"""Lifecycle rank of the event types that count, for facts that occurred at the same instant."""
_RANK = {t: i for i, t in enumerate(TYPE_ORDER)}
assert set(TYPE_ORDER) == set(CONSUMED_TYPES), "every consumed type needs a rank"


def type_rank(type_: str) -> int:
    return _RANK.get(type_, len(_RANK))


@dataclass(frozen=True)
class StoredEvent:
    """One consumed event as the event log keeps it."""

    source: str
    id: str
    topic: str
    type: str
    data: Mapping[str, Any]
    time: datetime  # envelope time

    @property
    def occurred_at(self) -> datetime:
        return occurred_at(self.data, self.time)

    @property
    def sort_key(self) -> tuple:
        return (self.occurred_at, type_rank(self.type), self.source, self.id)


def replay_order(events: Iterable[StoredEvent]) -> list[StoredEvent]:
    """Distinct (source, id), in replay order."""
    seen: dict[tuple[str, str], StoredEvent] = {}
    for e in events:
        seen.setdefault((e.source, e.id), e)
    return sorted(seen.values(), key=lambda e: e.sort_key)


def fold(events: Iterable[StoredEvent]) -> tuple[FactTable, MemoryLookup]:
    """Counters and refs of a history (already in replay order)."""
    return replay((e.type, e.data, e.time) for e in events)


def publication_for(period: str, table: FactTable, lookup: MemoryLookup, scheme: Scheme) -> Publication:
    """Ranked, graded scorecards of every entity with counters in ``period``, and the alerts."""
    p = str(Period.parse(period))
    entities = [
        EntityFacts(et, eid, facts, parent_of(et, eid, lookup))
        for (et, eid), facts in facts_by_entity(table, p).items()
    ]
    return close_period(p, entities, scheme)


def scheme_in_force(schemes: Iterable[Scheme], period: str, default: Scheme) -> Scheme:
    """The scheme governing a period: the latest in force at its end (the default file if none)."""
    return scheme_for_period([default, *schemes], Period.parse(period).end) or default


def content_hash(payload: ScorecardPublished | AlertRaised) -> str:
    """A stable hash of what is published (sorted keys, JSON values)."""
    return hashlib.sha256(orjson.dumps(payload.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


def envelope_id(kind: str, object_id: str, digest: str) -> str:
    """Deterministic CloudEvents id of one publication: the same content gets the same id, so a
    consumer's inbox drops a re-publication; a correction (new content) gets a new id."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{object_id}:{digest}"))
