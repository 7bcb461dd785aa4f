"""The assessment handler: upstream events into the event log; reviews, scheme changes and
period closes from the intake (and ``POST /v1/commands``); the period-close timer.

Facts are never counted incrementally. Every consumed upstream event (the types that count,
:data:`~services.assessment.domain.CONSUMED_TYPES`) is appended verbatim to ``event_log``
(keyed by CloudEvents source and id, so a duplicate is stored once); closing a period
replays the whole log in event-time order through the pure domain — the very code path of
the recompute CLI — and scores the period. Indicator values therefore depend on the event
history alone, not on arrival order across topics and partitions, and duplicated input
changes nothing.

Publishing is idempotent: scorecard and alert ids are derived from (entity, period,
scheme [, indicator]) and each published payload is remembered with a content hash.
Closing a period again re-computes it and publishes only the scorecards and alerts whose
content changed (late events, a corrected review) — as corrections under the same
scorecard id with a new envelope id; unchanged ones are not re-published, so a re-close of
an unchanged history is a no-op on the topic. Alerts that no longer hold are withdrawn from
the query view (the contract has no retraction event).
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Sequence

from schemas.assessment import ChangeScheme, ClosePeriod, RecordReview, ReviewRecorded
from schemas.envelope import Message
from schemas.topics import ASSESSMENT, BY_SERVICE
from services.assessment.domain import (
    CONSUMED_TYPES,
    Publication,
    ReviewBook,
    Scheme,
    SchemeState,
    check_close,
    decide_review,
    decide_scheme_change,
    evolve_review,
    periods_ended_between,
    scheme_for_period,
)
from services.assessment.projection import store
from services.assessment.projection.history import (
    StoredEvent,
    content_hash,
    envelope_id,
    fold,
    publication_for,
    scheme_in_force,
)
from services.kit import aggregates
from services.kit.errors import Rejected
from services.kit.uow import Handler, UnitOfWork, on

from . import metrics as m

log = logging.getLogger("assessment.handler")

UPSTREAM_TYPES: tuple[str, ...] = tuple(sorted(t for t in CONSUMED_TYPES if not t.startswith("assessment.")))
REVIEW_BOOK = "review_book"
CLOSE_MARK = "period_close"
OWN_SOURCE = "/services/assessment"


def topic_of(type_: str) -> str:
    """The events topic an event type is published on."""
    return BY_SERVICE[type_.split(".", 1)[0]].events.name


def stored(msg: Message) -> StoredEvent:
    env = msg.envelope
    if env.time is None:
        raise ValueError(f"{msg.type} {msg.id} has no time; assessment cannot place it in a period")
    return StoredEvent(env.source, env.id, topic_of(env.type), env.type, msg.data(), env.time)


class AssessmentHandler(Handler):
    service = "assessment"

    def __init__(self, default: Scheme, *, close_delay: timedelta = timedelta(0), timer_since: datetime | None = None):
        self.default = default
        self.close_delay = close_delay
        self.timer_since = timer_since

    # -- upstream facts -------------------------------------------------------------------

    async def handle_batch(self, uow: UnitOfWork, messages: Sequence[Message]) -> None:
        """Upstream events of a batch in one insert; then the service's own commands one by one."""
        upstream = [msg for msg in messages if msg.type in UPSTREAM_TYPES]
        if upstream:
            await self._record(uow, [stored(msg) for msg in upstream])
        for msg in messages:
            if msg.type not in UPSTREAM_TYPES:
                await self.handle(uow, msg)

    @on(*UPSTREAM_TYPES)
    async def record_upstream(self, uow: UnitOfWork, msg: Message) -> None:
        await self._record(uow, [stored(msg)])

    async def _record(self, uow: UnitOfWork, events: list[StoredEvent]) -> None:
        new = await store.record_events(uow.conn, events)

        def observe() -> None:
            for e in new:
                m.EVENTS_RECORDED.labels(e.topic).inc()
            if new:
                m.applied(max(e.time for e in new))

        uow.after_commit(observe)

    # -- reviews --------------------------------------------------------------------------

    @on(RecordReview.TYPE)
    async def record_review(self, uow: UnitOfWork, msg: Message) -> None:
        cmd: RecordReview = msg.payload  # type: ignore[assignment]
        book = (await aggregates.load(uow.conn, REVIEW_BOOK, [cmd.subject_id], ReviewBook)).get(cmd.subject_id,
                                                                                               ReviewBook())
        events = decide_review(book, cmd, uow.now)
        for ev in events:
            book = evolve_review(book, ev)
        if not events:
            return
        await aggregates.save(uow.conn, REVIEW_BOOK, {cmd.subject_id: book})
        for ev in events:
            env = uow.emit(ev, cause=msg)
            # the review counts like any other fact: it enters the log the closes replay
            await self._record_own(uow, env.id, ev, env.time)

    async def _record_own(self, uow: UnitOfWork, id_: str, ev: ReviewRecorded, at: datetime | None) -> None:
        await store.record_events(uow.conn, [StoredEvent(OWN_SOURCE, id_, ASSESSMENT.events.name, ev.TYPE,
                                                         ev.model_dump(mode="json"), at or uow.now)])

    # -- schemes --------------------------------------------------------------------------

    async def all_schemes(self, conn) -> list[Scheme]:
        return [self.default, *await store.load_schemes(conn)]

    async def find_scheme(self, conn, scheme_id: str) -> Scheme | None:
        if scheme_id == self.default.scheme_id:
            return self.default
        return await store.load_scheme(conn, scheme_id)

    async def current_scheme(self, conn, at: datetime) -> Scheme:
        """The scheme in force at ``at`` (the latest effective before it)."""
        return scheme_for_period(await self.all_schemes(conn), at) or self.default

    @on(ChangeScheme.TYPE)
    async def change_scheme(self, uow: UnitOfWork, msg: Message) -> None:
        cmd: ChangeScheme = msg.payload  # type: ignore[assignment]
        await store.lock(uow.conn, "schemes")
        if cmd.base_scheme_id is not None:
            base = await self.find_scheme(uow.conn, cmd.base_scheme_id)
            if base is None:
                raise Rejected("unknown_scheme", f"no scheme {cmd.base_scheme_id!r}", "base_scheme_id")
        else:
            base = await self.current_scheme(uow.conn, uow.now)
        existing = await self.find_scheme(uow.conn, cmd.scheme_id)
        events = decide_scheme_change(SchemeState(scheme=existing), cmd, base)
        for ev in events:
            scheme = Scheme.model_validate(ev.definition)
            await store.save_scheme(uow.conn, scheme, ev.base_scheme_id)
            uow.emit(ev, cause=msg)

    # -- closing periods ------------------------------------------------------------------

    @on(ClosePeriod.TYPE)
    async def close_period(self, uow: UnitOfWork, msg: Message) -> None:
        cmd: ClosePeriod = msg.payload  # type: ignore[assignment]
        period = check_close(cmd, uow.now)
        if cmd.scheme_id is not None:
            scheme = await self.find_scheme(uow.conn, cmd.scheme_id)
            if scheme is None:
                raise Rejected("unknown_scheme", f"no scheme {cmd.scheme_id!r}", "scheme_id")
        else:
            scheme = scheme_in_force(await store.load_schemes(uow.conn), str(period), self.default)
        await self.close(uow, str(period), scheme, cause=msg, trigger="command")

    async def compute(self, conn, period: str, scheme: Scheme) -> Publication:
        """Replay the event log and score ``period`` under ``scheme`` (nothing is written)."""
        table, lookup = fold(await store.load_history(conn))
        return publication_for(period, table, lookup, scheme)

    async def close(self, uow: UnitOfWork, period: str, scheme: Scheme, *, cause: Message | None,
                    trigger: str) -> Publication:
        """Compute the period and publish what is new or changed (see the module docstring)."""
        started = time.perf_counter()
        await store.lock(uow.conn, f"close:{period}")
        pub = await self.compute(uow.conn, period, scheme)
        cards = [(c, content_hash(c)) for c in pub.scorecards]
        old = await store.published_hashes(uow.conn, [c.scorecard_id for c, _ in cards])
        fresh_cards = [(c, h, envelope_id("scorecard", c.scorecard_id, h)) for c, h in cards if old.get(c.scorecard_id) != h]
        alerts = [(a, content_hash(a)) for a in pub.alerts]
        old_alerts = await store.alert_hashes(uow.conn, period, scheme.scheme_id)
        all_alerts = [(a, h, envelope_id("alert", a.alert_id, h)) for a, h in alerts]
        fresh_alerts = [t for t in all_alerts if old_alerts.get(t[0].alert_id) != t[1]]
        for c, _, eid in fresh_cards:
            uow.emit(c, cause=cause, id=eid)
        for a, _, eid in fresh_alerts:
            uow.emit(a, cause=cause, id=eid)
        await store.upsert_scorecards(uow.conn, fresh_cards, uow.now)
        withdrawn = await store.replace_alerts(uow.conn, period, scheme.scheme_id, all_alerts, uow.now)
        await store.record_close(uow.conn, period, scheme.scheme_id, uow.now, scorecards=len(cards),
                                 alerts=len(alerts), published=len(fresh_cards), trigger=trigger)
        duration = time.perf_counter() - started

        def observe() -> None:
            for c, _, _ in fresh_cards:
                m.SCORECARDS_PUBLISHED.labels(c.entity_type.value).inc()
            for a, _, _ in fresh_alerts:
                m.ALERTS_RAISED.labels(a.indicator).inc()
            m.PERIODS_CLOSED.labels(trigger).inc()
            m.CLOSE_DURATION.observe(duration)

        uow.after_commit(observe)
        log.info("closed %s under %s: %d scorecards (%d published), %d alerts (%d raised, %d withdrawn)",
                 period, scheme.scheme_id, len(cards), len(fresh_cards), len(alerts), len(fresh_alerts), withdrawn)
        return pub

    async def close_due_periods(self, uow: UnitOfWork) -> list[str]:
        """The timer: close every period that ended (plus the grace delay) since the last run.

        The mark row is locked, so several workers never close the same periods at once, and
        it survives restarts. On its first run the timer starts from ``timer_since`` (else now).
        """
        upto = uow.now - self.close_delay
        mark = await store.get_mark(uow.conn, CLOSE_MARK)
        if mark is None:
            mark = self.timer_since or upto
        if mark >= upto:
            await store.set_mark(uow.conn, CLOSE_MARK, mark)
            return []
        ended = periods_ended_between(mark, upto)
        schemes = await store.load_schemes(uow.conn)
        for p in ended:
            await self.close(uow, p, scheme_in_force(schemes, p, self.default), cause=None, trigger="timer")
        await store.set_mark(uow.conn, CLOSE_MARK, upto)
        return ended
