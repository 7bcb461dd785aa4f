"""The assessment handler: upstream events into the event log; reviews, scheme changes and
period closes from the intake (and ``POST /v1/commands``); the period-close timer. Who may send
which command is the policy's (:mod:`services.assessment.app.policy`), checked by the kit first.

Facts are counted as events arrive. Every consumed upstream event (the payload classes the
fact builders register for, :data:`UPSTREAM`) and every review this service records is
appended to ``event_log`` as received, less the personal fields no indicator reads (free text,
places, media, names: :func:`schemas.pii.minimised`; ids, times and outcomes stay), keyed by
CloudEvents source and id so that a duplicate is stored and counted once; in the same
transaction as the inbox it is folded into the counters per (period, entity, fact) and the
refs (:mod:`.event_log`, :mod:`services.assessment.domain.incremental`). An event that arrives
after events that occurred later has those unwound and folded again after it, so the counters
always equal one replay of the log in event-time order: they depend on the event history
alone, not on arrival order across topics and partitions. Closing a period, and a provisional
scorecard, read the period's counters and the refs of what they score — never the history.

Publishing is idempotent: scorecard and alert ids are derived from (entity, period,
scheme [, indicator]) and each published payload is remembered with a content hash.
Closing a period again re-computes it and publishes only the scorecards and alerts whose
content changed (late events, a corrected review) — as corrections under the same
scorecard id with a new envelope id; unchanged ones are not re-published, so a re-close of
an unchanged history is a no-op on the topic. A close that changed anything is published
itself last (``PeriodClosed``: what the period's results are as of then). Alerts that no longer hold are withdrawn from
the query view (the contract has no retraction event).
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import NamedTuple, Sequence

from schemas.assessment import (AlertRaised, ChangeScheme, ClosePeriod, CloseTrigger, ErasePerson, PeriodClosed,
                                RecordReview, ScorecardPublished)
from schemas.common import Event
from schemas.topics import BY_SERVICE
from services.assessment.domain import (
    CONSUMED,
    Publication,
    ReviewBook,
    Scheme,
    SchemeState,
    alerts_for,
    check_close,
    decide_review,
    decide_scheme_change,
    evolve_review,
    periods_ended_between,
    scheme_for_period,
)
from services.assessment.domain.facts.core import occurred_at
from services.assessment.domain.history import StoredEvent
from services.assessment.domain.publication import content_hash, envelope_id, scheme_in_force
from services.assessment.projection import store
from services.kit import erasure
from services.kit.aggregates import AggregateStore
from services.kit.errors import Rejected
from services.kit.handlers import Handler, handles, prepares
from services.kit.locks import advisory_lock
from services.kit.uow import UnitOfWork

from . import metrics as m
from .event_log import EventLogWriter
from .scoring import compute_period
from .policy import POLICY

log = logging.getLogger("assessment.handler")

SERVICE = "assessment"
UPSTREAM: tuple[type[Event], ...] = tuple(sorted((c for c in CONSUMED if c.service() != SERVICE),
                                                 key=lambda c: c.TYPE))
"""The upstream payload classes that enter the event log (assessment's own reviews enter it
when recorded)."""
REVIEW_BOOKS = AggregateStore(ReviewBook, kind="review_book")
CLOSE_MARK = "period_close"


def topic_of(event: Event) -> str:
    """The events topic an event is published on."""
    return BY_SERVICE[event.service()].events.name


def _event_time(payload: Event, time: datetime | None) -> datetime | None:
    """What periods are dated by: the payload's occurrence time, else the envelope's."""
    return occurred_at(payload, time) if time is not None else None


async def _nothing_more(conn, person_id: str, pseudonym: str) -> None:
    """assessment keeps ids, times and outcomes only: the kit's replacement of the id is all."""


class LiveClose(NamedTuple):
    """What a close published live, as a rebuild finds it on the topic."""

    cards: list[ScorecardPublished]
    alerts: list[AlertRaised]
    closed: PeriodClosed | None  # None: the close changed nothing, or it was published before the event was


def _published_live(uow: UnitOfWork) -> dict[str, LiveClose] | None:
    """In a rebuild, what the message being handled (a close command, or a timer's round)
    published live, by period, in the order it closed them; None when handled live."""
    found = {model: uow.live_events(model.TYPE) for model in (PeriodClosed, ScorecardPublished, AlertRaised)}
    if any(f is None for f in found.values()):
        return None
    live: dict[str, LiveClose] = {}
    for data in found[PeriodClosed]:
        closed = PeriodClosed.model_validate(data)
        live[closed.period] = LiveClose([], [], closed)
    for i, model in enumerate((ScorecardPublished, AlertRaised)):
        for data in found[model]:
            event = model.model_validate(data)
            if event.period is not None:
                live.setdefault(str(event.period), LiveClose([], [], None))[i].append(event)  # type: ignore[index]
    return live


class AssessmentHandler(Handler):
    service = SERVICE
    policy = POLICY
    event_time = staticmethod(_event_time)
    # a close replayed by a rebuild takes what it published live (close, closed_again)
    replayed = (PeriodClosed.TYPE, ScorecardPublished.TYPE, AlertRaised.TYPE)

    def __init__(self, default: Scheme, *, close_delay: timedelta = timedelta(0), timer_since: datetime | None = None):
        self.default = default
        self.close_delay = close_delay
        self.timer_since = timer_since

    # -- the batch step ----------------------------------------------------------------
    @prepares(RecordReview)
    async def load(self, uow: UnitOfWork, commands: Sequence[RecordReview]) -> None:
        """Lock the review books of the subjects the batch's reviews name."""
        await REVIEW_BOOKS.of(uow).load(c.subject_id for c in commands)

    # -- reactions: upstream facts -----------------------------------------------------

    @handles(*UPSTREAM)
    async def record_fact(self, uow: UnitOfWork, event: Event) -> None:
        """Into the event log (written with the rest of the batch, in one insert)."""
        env = uow.message.envelope  # type: ignore[union-attr]
        if env.time is None:
            raise ValueError(f"{env.type} {env.id} has no time; assessment cannot place it in a period")
        EventLogWriter.of(uow).append(StoredEvent(env.source, env.id, topic_of(event), event, env.time,
                                                  raw=uow.message.data()))  # type: ignore[union-attr]

    # -- erasure -----------------------------------------------------------------------

    @handles(ErasePerson)
    async def erase_person(self, uow: UnitOfWork, cmd: ErasePerson) -> None:
        """擦除: the person's id becomes a pseudonym in the event log, the review books and the
        published scorecards (the log keeps no free text, addresses or media: it is minimised
        when recorded). Counts and scores stay."""
        await erasure.erase(uow, cmd.person_id, _nothing_more)

    @handles(*erasure.other_services_erased(SERVICE))
    async def person_erased(self, uow: UnitOfWork, event) -> None:
        """Another service erased a person: erase assessment's copy under the same pseudonym."""
        await erasure.erase(uow, event.person_id, _nothing_more, pseudonym=event.pseudonym, origin=event.service())

    # -- commands: reviews -------------------------------------------------------------

    @handles(RecordReview)
    async def record_review(self, uow: UnitOfWork, cmd: RecordReview) -> None:
        books = REVIEW_BOOKS.of(uow)
        book = await books.fetch(cmd.subject_id) or ReviewBook()
        events = decide_review(book, cmd, uow.now)
        if not events:
            return
        for ev in events:
            book = evolve_review(book, ev)
            env = uow.emit(ev)
            # the review counts like any other fact: it enters the log and the counters
            EventLogWriter.of(uow).append(StoredEvent(env.source, env.id, topic_of(ev), ev, env.time))
        books.put(cmd.subject_id, book)

    # -- commands: schemes -------------------------------------------------------------

    async def all_schemes(self, conn) -> list[Scheme]:
        return [self.default, *await store.load_schemes(conn)]

    async def find_scheme(self, conn, scheme_id: str) -> Scheme | None:
        if scheme_id == self.default.scheme_id:
            return self.default
        return await store.load_scheme(conn, scheme_id)

    async def current_scheme(self, conn, at: datetime) -> Scheme:
        """The scheme in force at ``at`` (the latest effective before it)."""
        return scheme_for_period(await self.all_schemes(conn), at) or self.default

    @handles(ChangeScheme)
    async def change_scheme(self, uow: UnitOfWork, cmd: ChangeScheme) -> None:
        await advisory_lock(uow.conn, "assessment:schemes")
        if cmd.base_scheme_id is not None:
            base = await self.find_scheme(uow.conn, cmd.base_scheme_id)
            if base is None:
                raise Rejected("unknown_scheme", f"no scheme {cmd.base_scheme_id!r}", "base_scheme_id")
        else:
            base = await self.current_scheme(uow.conn, uow.now)
        existing = await self.find_scheme(uow.conn, cmd.scheme_id)
        for ev in decide_scheme_change(SchemeState(scheme=existing), cmd, base):
            await store.save_scheme(uow.conn, Scheme.model_validate(ev.definition), ev.base_scheme_id)
            uow.emit(ev)

    # -- commands and timers: closing periods ------------------------------------------

    @handles(ClosePeriod)
    async def close_period(self, uow: UnitOfWork, cmd: ClosePeriod) -> None:
        period = check_close(cmd, uow.now)
        if cmd.scheme_id is not None:
            scheme = await self.find_scheme(uow.conn, cmd.scheme_id)
            if scheme is None:
                raise Rejected("unknown_scheme", f"no scheme {cmd.scheme_id!r}", "scheme_id")
        else:
            scheme = scheme_in_force(await store.load_schemes(uow.conn), str(period), self.default)
        live = _published_live(uow)  # in a rebuild, what the close published (see close)
        await self.close(uow, str(period), scheme, trigger=CloseTrigger.COMMAND,
                         live=None if live is None else live.get(str(period), LiveClose([], [], None)))

    async def compute(self, conn, period: str, scheme: Scheme) -> Publication:
        """Score ``period`` under ``scheme`` from its stored counters (nothing is written)."""
        return await compute_period(conn, period, scheme)

    async def close(self, uow: UnitOfWork, period: str, scheme: Scheme, *, trigger: CloseTrigger | str,
                    live: LiveClose | None = None) -> Publication:
        """Compute the period and publish what is new or changed (see the module docstring),
        caused by the message being handled (none from the timer). A close that changed
        something (the period's first, a card corrected, an alert raised or withdrawn) is
        recorded and published as ``PeriodClosed``; one that changed nothing leaves the record
        of the close that did, and publishes nothing.

        ``live``: in a rebuild, what the close (a command's, or a timer's round) published live
        for the period. Its ``PeriodClosed`` is recorded as it was published (a log written
        before that event existed has none: the close is recorded when it changed something).
        The live close read counters that batches handled at the
        same moment on other lanes were changing, and which of those it saw, no topic records;
        so the replay does not read them. The live close computed a card for every entity of
        the period: those it published, and those it found unchanged, which are the stored ones
        (what the closes before it published, replayed as published); its alerts are those of
        its cards (:func:`~services.assessment.domain.scorecards.alerts_for`), so the ones it
        withdrew are withdrawn again. A stored card of an entity the close published a card for
        under another id (a person's erasure changed the id it is derived from) is not one of
        them."""
        started = time.perf_counter()
        trigger = CloseTrigger(trigger)
        await advisory_lock(uow.conn, f"assessment:close:{period}")
        await EventLogWriter.of(uow).flush(uow)  # what this batch recorded before the close counts
        if live is None:
            pub = await self.compute(uow.conn, period, scheme)
        else:  # the live close's cards: those it published, and the stored ones it found unchanged
            published = {(c.entity_type, c.entity_id) for c in live.cards}
            computed = [*live.cards, *(c for c in await store.period_scorecards(uow.conn, period, scheme.scheme_id)
                                    if (c.entity_type, c.entity_id) not in published)]
            pub = Publication(computed, [a for c in computed for a in alerts_for(c, scheme)])
        cards = [(c, content_hash(c)) for c in pub.scorecards]
        alerts = [(a, content_hash(a)) for a in pub.alerts]
        all_alerts = [(a, h, envelope_id("alert", a.alert_id, h)) for a, h in alerts]
        if live is None:
            old = await store.published_hashes(uow.conn, [c.scorecard_id for c, _ in cards])
            fresh_cards = [(c, h, envelope_id("scorecard", c.scorecard_id, h)) for c, h in cards
                           if old.get(c.scorecard_id) != h]
            old_alerts = await store.alert_hashes(uow.conn, period, scheme.scheme_id)
            fresh_alerts = [t for t in all_alerts if old_alerts.get(t[0].alert_id) != t[1]]
        else:  # what it published, as published (its alerts are among those of its cards)
            fresh_cards = [(c, h, envelope_id("scorecard", c.scorecard_id, h))
                           for c in live.cards for h in [content_hash(c)]]
            fresh_alerts = [(a, h, envelope_id("alert", a.alert_id, h)) for a in live.alerts for h in [content_hash(a)]]
        for c, _, eid in fresh_cards:
            uow.emit(c, id=eid)
        for a, _, eid in fresh_alerts:
            uow.emit(a, id=eid)
        await store.upsert_scorecards(uow.conn, fresh_cards, uow.now)
        withdrawn = await store.replace_alerts(uow.conn, period, scheme.scheme_id, all_alerts, uow.now)
        # A close that changed nothing (every card and alert as published) leaves the record of
        # the close that did, and publishes nothing. A replayed close takes the record from its
        # event (a log older than the event has none: recorded when it changed something).
        closed = live.closed if live is not None else None
        if closed is None and (fresh_cards or fresh_alerts or withdrawn
                               or not await store.close_recorded(uow.conn, period, scheme.scheme_id)):
            scored = len({c.scorecard_id for c, _ in cards} | {c.scorecard_id for c, _, _ in fresh_cards})
            closed = PeriodClosed(period=period, scheme_id=scheme.scheme_id, scorecards=scored,
                                  published=len(fresh_cards), alerts=len(all_alerts), trigger=trigger,
                                  occurred_at=uow.now)
        if closed is not None:
            await store.record_close(uow.conn, period, scheme.scheme_id, uow.now, scorecards=closed.scorecards,
                                     alerts=closed.alerts, published=closed.published, trigger=closed.trigger.value)
            if live is None or live.closed is not None:
                uow.emit(closed)
        duration = time.perf_counter() - started

        def observe() -> None:
            for c, _, _ in fresh_cards:
                m.SCORECARDS_PUBLISHED.labels(c.entity_type.value).inc()
            for a, _, _ in fresh_alerts:
                m.ALERTS_RAISED.labels(a.indicator).inc()
            m.PERIODS_CLOSED.labels(trigger.value).inc()
            m.CLOSE_DURATION.observe(duration)

        uow.after_commit(observe)
        log.info("closed %s under %s: %d scorecards (%d published), %d alerts (%d raised, %d withdrawn)",
                 period, scheme.scheme_id, len(cards), len(fresh_cards), len(alerts), len(fresh_alerts), withdrawn)
        return pub

    async def closed_again(self, uow: UnitOfWork, subjects: list[str]) -> None:
        """What a round of :meth:`close_due_periods` did, done again at ``uow.now``, as a rebuild
        replays it: each period the round's live events were of closed again, in their order,
        under the scheme then in force, publishing and storing what the round published (see
        :meth:`close`), and the timer's mark moved where the round moved it."""
        schemes = await store.load_schemes(uow.conn)
        for p, published in (_published_live(uow) or {}).items():
            await self.close(uow, p, scheme_in_force(schemes, p, self.default), trigger=CloseTrigger.TIMER,
                             live=published)
        await store.set_mark(uow.conn, CLOSE_MARK, uow.now - self.close_delay)

    async def close_due_periods(self, uow: UnitOfWork) -> list[str]:
        """The timer: close every period that ended (plus the grace delay) since the mark.

        One worker of the group runs it at a time (an exclusive timer), and the mark row is
        locked besides, so periods are never closed twice at once; the mark survives restarts.
        On its first run the timer starts from ``timer_since`` (else now), and keeps that as its
        mark. The mark moves only with a round that closed periods, to where that round looked:
        a round that closes a period publishes it (``PeriodClosed``, unless a command's close
        left nothing to change), so a rebuild, which runs that round again, moves it there too,
        and the next worker's timer closes every period that ended since, however long the
        workers were stopped.
        """
        upto = uow.now - self.close_delay
        mark = await store.get_mark(uow.conn, CLOSE_MARK)
        if mark is None:
            mark = self.timer_since or upto
            await store.set_mark(uow.conn, CLOSE_MARK, mark)
        ended = periods_ended_between(mark, upto)
        if not ended:
            return []
        schemes = await store.load_schemes(uow.conn)
        for p in ended:
            await self.close(uow, p, scheme_in_force(schemes, p, self.default), trigger=CloseTrigger.TIMER)
        await store.set_mark(uow.conn, CLOSE_MARK, upto)
        return ended
