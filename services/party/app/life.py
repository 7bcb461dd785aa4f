"""Organisational life, commitments and the member half of 双报到 in the party worker: the
handler steps, the timers' steps, what the life route takes and answers, and the metrics.

:class:`LifeSteps` is a part of :class:`~services.party.app.handler.PartyHandler` (which sets
``life_policy``, the frequency table of ``org_life.yaml``, and ``settings``):

- ``RecordOrgLife``: a party secretary records a meeting of an organisation of their scope; an
  organisation outside it is refused exactly as an unknown one (``unknown_org``);
- ``MakeCommitment`` / ``FulfilCommitment`` / ``RateCommitment``: a party secretary, for a member
  of an organisation of their scope; a member of no organisation, or of one outside the scope,
  is refused as unknown (``unknown_member``; a commitment of theirs as ``unknown_commitment``);
- ``orders.member.registered.v1``: the member is followed (a move flagged once), and the report
  timer flags them once when their unit has not reported (单位报到) within the window;
- ``orders.member.moved.v1``: the move is flagged once, with the new community's deadline (the
  timer's window then ends there), and it goes into the 组织关系 history of the member's
  organisation (the relationship is transferred by a secretary of the new community);
- ``orders.order.completed.v1`` / ``orders.order.evaluated.v1``: what the member's quarterly
  feedback (双重管理) counts, kept per order.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from prometheus_client.core import REGISTRY, CounterMetricFamily
from pydantic import BaseModel, Field

from schemas.common import Event
from schemas.orders import MemberMoved, MemberRegistered, OrderCompleted, OrderEvaluated
from schemas.party import (
    FulfilCommitment, MakeCommitment, MemberFeedback, OrgLifeKind, RateCommitment, RecordOrgLife,
)
from services.kit.errors import NotFound
from services.kit.handlers import handles, prepares
from services.kit.locks import advisory_locks
from services.kit.routes import Page
from services.kit.uow import UnitOfWork
from services.party.domain.life import (
    Every, LifeContext, OrgLifePolicy, OrgRef, decide_commitment, decide_org_life, evolve_commitment, evolve_org_life,
    org_life_overdue, period_of,
)
from services.party.domain.members import (
    SHANGHAI, MemberContext, MemberFollowUp, evolve_follow_up, member_report_overdue, on_member_moved,
    on_member_registered, quarterly_feedback, settle_report,
)
from services.party.projection import life as db
from services.party.projection.councils import UNITS
from services.party.projection.life import COMMITMENTS, FOLLOW_UPS, ORG_LIFE
from services.party.projection.store import ORGS, OrgLog

from . import access

log = logging.getLogger("party.life")

LIFE_COMMANDS = (RecordOrgLife,)
COMMITMENT_COMMANDS = (MakeCommitment, FulfilCommitment, RateCommitment)


def load_life_policy(path: Path | str) -> OrgLifePolicy:
    """The frequency table of organisational life, from its YAML file."""
    return OrgLifePolicy.from_mapping(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def previous_quarter(now: datetime) -> str:
    """The last quarter (Asia/Shanghai) that has ended by ``now``."""
    local = now.astimezone(SHANGHAI)
    q = (local.month - 1) // 3 + 1
    return f"{local.year - 1}-Q4" if q == 1 else f"{local.year}-Q{q - 1}"


class LifeSteps:
    """The organisational life, commitment and member steps of the party handler."""

    life_policy: OrgLifePolicy
    report_window: timedelta
    _life_checked: tuple[str, dict[str, OrgRef]] | None = None
    """The Shanghai month of the organisations the life timer has checked, and each one as it was
    checked (see :meth:`check_org_life`)."""

    # -- organisational life -----------------------------------------------------------

    @prepares(*LIFE_COMMANDS)
    async def load_life(self, uow: UnitOfWork, commands: Sequence[RecordOrgLife]) -> None:
        """Lock by name, then lock and load, the organisations' life the batch names; read the
        organisations themselves that the batch's states do not hold (:class:`_OrgRefs`)."""
        ids = {c.org_id for c in commands}
        await advisory_locks(uow.conn, {f"party:life:{i}" for i in ids})
        await ORG_LIFE.of(uow).load(ids)
        orgs = ORGS.of(uow)
        await _OrgRefs.of(uow).read(uow, [i for i in ids if i not in orgs])

    @handles(RecordOrgLife)
    async def record_org_life(self, uow: UnitOfWork, cmd: RecordOrgLife) -> None:
        """三会一课, 主题党日: a meeting held, recorded by a secretary of the organisation's area."""
        found = await _org_ref(uow, cmd.org_id)
        org = found[0] if found is not None and access.may_act(uow.principal, found[1]) else None
        lives = ORG_LIFE.of(uow)
        state = await lives.fetch(cmd.org_id)
        events = decide_org_life(state, cmd, LifeContext(now=uow.now, org=org, policy=self.life_policy))
        await self._apply_life(uow, events)

    async def check_org_life(self, uow: UnitOfWork) -> int:
        """Each closed period without a meeting of a kind an organisation must hold is reported
        once (``party.org_life.overdue.v1``); returns how many were reported this round. It waits
        for the batches that hold an organisation's life.

        Every period of organisational life (a month, a quarter) ends when a Shanghai month
        begins, and a meeting recorded or a period reported only takes findings away: between two
        month starts an organisation's findings can only change if the organisation itself does
        (established, its kind or date corrected). So an organisation checked this month, as it
        is now, is not loaded again before the next month (:attr:`_life_checked`, this worker's
        memory: a worker that starts checks every organisation once). Each organisation's life
        holds every meeting of its years; loading all of them each round grew with the history."""
        refs = await db.org_refs(uow.conn)
        month = period_of(uow.now, Every.MONTH)
        checked = self._life_checked
        if checked is None or checked[0] != month:
            checked = self._life_checked = (month, {})
        todo = {i: r for i, r in refs.items() if checked[1].get(i) != r[0]}
        if not todo:
            return 0
        n = await self._check_life(uow, todo)
        uow.after_commit(lambda: checked[1].update({i: r[0] for i, r in todo.items()}))  # not if rolled back
        return n

    async def life_again(self, uow: UnitOfWork, org_ids: list[str]) -> None:
        """What a round of :meth:`check_org_life` did to these organisations, done again at
        ``uow.now`` (a rebuild runs each round that published, among the messages of its batch).
        The round waited for the batches holding an organisation's life, and what it finds is a
        function of that life, the organisation and the time."""
        await uow.flush()  # the organisations as the messages before the round left them
        await self._check_life(uow, await db.org_refs(uow.conn, org_ids))

    async def _check_life(self, uow: UnitOfWork, refs: dict[str, tuple[OrgRef, str]]) -> int:
        await advisory_locks(uow.conn, {f"party:life:{i}" for i in refs})
        lives = ORG_LIFE.of(uow)
        await lives.load(refs)
        events: list[Event] = []
        for org_id, (org, _) in refs.items():
            events += org_life_overdue(org, lives.get(org_id), self.life_policy, uow.now)
        await self._apply_life(uow, events)
        return len(events)

    async def _apply_life(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        if not events:
            return
        lives = ORG_LIFE.of(uow)
        for e in events:
            lives.put(e.org_id, evolve_org_life(lives.get(e.org_id), e))
        db.LifeLog.of(uow).add(uow.emit_all(events), self.life_policy)

    # -- commitments (承诺、践诺、评诺) ---------------------------------------------------

    @prepares(*COMMITMENT_COMMANDS)
    async def load_commitments(self, uow: UnitOfWork, commands: Sequence[MakeCommitment]) -> None:
        ids = {c.member_id for c in commands}
        await advisory_locks(uow.conn, {f"party:commitments:{i}" for i in ids})
        await COMMITMENTS.of(uow).load(ids)

    @handles(*COMMITMENT_COMMANDS)
    async def commitment(self, uow: UnitOfWork, cmd: MakeCommitment | FulfilCommitment | RateCommitment) -> None:
        """A member's yearly commitment, made, fulfilled and rated through a secretary of their organisation."""
        org_id = await _org_of_member(uow, cmd.member_id)
        scope_id = None
        if org_id is not None:
            found = await _org_ref(uow, org_id)
            scope_id = found[1] if found is not None else None
        if not access.may_act(uow.principal, scope_id):
            raise NotFound("member", cmd.member_id, "member_id")
        commitments = COMMITMENTS.of(uow)
        state = await commitments.fetch(cmd.member_id)
        events = decide_commitment(state, cmd, LifeContext(now=uow.now, member_org_id=org_id))
        for e in events:
            state = evolve_commitment(state, e)
            commitments.put(cmd.member_id, state)
        uow.emit_all(events)

    # -- the member half of 双报到 -------------------------------------------------------

    @prepares(MemberRegistered, MemberMoved)
    async def load_follow_ups(self, uow: UnitOfWork, events: Sequence[MemberRegistered | MemberMoved]) -> None:
        """Lock by name, then load, the units the members register or move with (before their
        follow-ups, as a unit's report takes them: :meth:`settle_reported`), then lock and load
        the follow-ups."""
        units = {e.unit_id for e in events}
        await advisory_locks(uow.conn, {f"party:unit:{u}" for u in units})
        await UNITS.of(uow).load(units)  # those that have reported: a state each
        ids = {e.member_id for e in events}
        await advisory_locks(uow.conn, {f"party:follow_up:{i}" for i in ids})
        await FOLLOW_UPS.of(uow).load(ids)

    @handles(MemberRegistered)
    async def member_registered(self, uow: UnitOfWork, event: MemberRegistered) -> None:
        """A member's registration with orders: follow them; a move to another community is flagged once."""
        follow_ups = FOLLOW_UPS.of(uow)
        state = await follow_ups.fetch(event.member_id)
        ctx = MemberContext(now=uow.now, report_window=self.report_window)
        flags = on_member_registered(state, event, ctx)
        state = evolve_follow_up(state, event, uow.now)
        for f in flags:
            state = evolve_follow_up(state, f)
        follow_ups.put(event.member_id, self._settled(uow, state))
        uow.emit_all(flags)

    @handles(MemberMoved)
    async def member_moved(self, uow: UnitOfWork, event: MemberMoved) -> None:
        """A member moved to another community (orders): flagged once, followed there with the
        move's deadline, and written into the history of the organisation they belong to."""
        follow_ups = FOLLOW_UPS.of(uow)
        state = await follow_ups.fetch(event.member_id)
        flags = on_member_moved(state, event, MemberContext(now=uow.now, report_window=self.report_window))
        state = evolve_follow_up(state, event, uow.now)
        for f in flags:
            state = evolve_follow_up(state, f)
        follow_ups.put(event.member_id, self._settled(uow, state))
        emitted = uow.emit_all(flags)
        org_id = await _org_of_member(uow, event.member_id)
        if org_id is not None and emitted:
            OrgLog.of(uow).record(emitted, org_id)

    def _settled(self, uow: UnitOfWork, state: MemberFollowUp) -> MemberFollowUp:
        """The follow-up, settled when its unit has reported: in this batch, or as committed when
        the batch took the unit's name lock (which waits for a report being handled)."""
        reported = UNITS.of(uow).get(state.unit_id) is not None
        ctx = MemberContext(now=uow.now, report_window=self.report_window,
                            reported_units=frozenset({state.unit_id} if reported else ()))
        return settle_report(state, ctx) or state

    async def settle_reported(self, uow: UnitOfWork, unit_id: str) -> None:
        """A unit has reported (单位报到): the follow-ups of its members neither flagged nor settled
        yet are settled, as committed and as this batch holds them. The caller holds the unit's
        name lock, so that a registration with the unit either came before (committed, found
        here) or waits and finds the report."""
        follow_ups = FOLLOW_UPS.of(uow)
        await follow_ups.load(await db.unsettled_of_unit(uow.conn, unit_id))
        ctx = MemberContext(now=uow.now, report_window=self.report_window, reported_units=frozenset({unit_id}))
        for member_id, state in list(follow_ups.items()):
            if state is not None and (settled := settle_report(state, ctx)) is not None:
                follow_ups.put(member_id, settled)

    @handles(OrderCompleted)
    async def order_completed(self, uow: UnitOfWork, event: OrderCompleted) -> None:
        """Counted for the assignee's quarterly feedback."""
        await db.order_completed(uow.conn, event.order_id, event.assignee_id, event.at or uow.now)

    @handles(OrderEvaluated)
    async def order_evaluated(self, uow: UnitOfWork, event: OrderEvaluated) -> None:
        """考单: counted for the assignee's quarterly feedback."""
        await db.order_evaluated(uow.conn, event.order_id, event.assignee_id, event.passed, event.rating,
                                 event.at or uow.now)

    async def check_member_reports(self, uow: UnitOfWork, limit: int = 500) -> int:
        """Members whose unit has not reported within the window after their registration are
        flagged once (``party.member.report_overdue.v1``); returns how many this round. A member
        whose unit has reported was settled when the service learnt of the report, and is not
        taken up."""
        due = await db.follow_ups_due(uow.conn, uow.now - self.report_window, limit, now=uow.now)
        if not due:
            return 0
        follow_ups = FOLLOW_UPS.of(uow)
        follow_ups.adopt(due)
        ctx = MemberContext(now=uow.now, report_window=self.report_window,
                            reported_units=await db.reported_units(uow.conn, (s.unit_id for _, s in due.values())))
        n = 0
        for member_id, (_, state) in due.items():
            flags = self._flag(uow, member_id, state, ctx)
            n += len(flags)
            if not flags and (settled := settle_report(state, ctx)) is not None:
                # its unit reported, which settles it where the report is learnt: none expected here
                log.warning("member %s: unit %s reported, follow-up not settled", member_id, state.unit_id)
                follow_ups.put(member_id, settled)
        return n

    async def reports_again(self, uow: UnitOfWork, member_ids: list[str]) -> None:
        """What a round of :meth:`check_member_reports` flagged, flagged again at ``uow.now`` (a
        rebuild runs each round that published, among the messages of its batch). That a
        member's unit had not reported rests on the units as the round read them, which a batch
        of another lane may have been changing at that moment: its event says the round found
        none."""
        follow_ups = FOLLOW_UPS.of(uow)
        await follow_ups.load(member_ids)
        ctx = MemberContext(now=uow.now, report_window=self.report_window, reported_units=frozenset())
        for member_id in member_ids:
            self._flag(uow, member_id, follow_ups.get(member_id), ctx)

    def _flag(self, uow: UnitOfWork, member_id: str, state: MemberFollowUp | None, ctx: MemberContext) -> list[Event]:
        flags = member_report_overdue(state, ctx)
        for f in flags:
            state = evolve_follow_up(state, f)
            FOLLOW_UPS.of(uow).put(member_id, state)
            uow.emit(f)
        return flags

    async def quarterly_feedback(self, uow: UnitOfWork, limit: int = 500) -> int:
        """双重管理: each member registered before the last quarter's end gets its feedback once
        (``party.member.feedback.v1``), with the quarter's tallies; returns how many this round."""
        quarter = previous_quarter(uow.now)
        members = await db.followed_members(uow.conn, quarter, limit)
        if not members:
            return 0
        follow_ups = FOLLOW_UPS.of(uow)
        follow_ups.adopt(members)
        tallies = await db.tallies(uow.conn, quarter, members)
        events = quarterly_feedback(quarter, [s for _, s in members.values()], tallies, uow.now)
        self._give_feedback(uow, events)
        return len(events)

    async def feedback_again(self, uow: UnitOfWork, member_ids: list[str]) -> None:
        """What a round of :meth:`quarterly_feedback` gave, given again at ``uow.now`` (a rebuild
        runs each round that published, among the messages of its batch): the feedback as the
        round's events give it. Its tallies count the orders completed and evaluated in the
        quarter as the round read them, which a batch of another lane may have been adding to
        at that moment."""
        await FOLLOW_UPS.of(uow).load(member_ids)
        self._give_feedback(uow, [MemberFeedback.model_validate(d) for d in uow.live_events(MemberFeedback.TYPE) or ()])

    def _give_feedback(self, uow: UnitOfWork, events: Sequence[MemberFeedback]) -> None:
        follow_ups = FOLLOW_UPS.of(uow)
        for e in events:
            follow_ups.put(e.member_id, evolve_follow_up(follow_ups.get(e.member_id), e))
        uow.emit_all(events)


# -- the life route -----------------------------------------------------------------------------


class LifeQuery(Page.sized(100, 500)):
    period: str | None = Field(None, pattern=r"^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$",
                               description="a Shanghai month (2026-11) or quarter (2026-Q4); every period when absent")


class LifeEntry(BaseModel):
    """A meeting held (held = true), or a period missed (held = false, reported overdue)."""

    kind: OrgLifeKind
    held: bool
    meeting_id: str | None
    period: str
    held_at: datetime | None
    attendees: int | None
    absentees: int | None
    at: datetime = Field(description="when it was recorded, or reported overdue")
    event_id: str = Field(description="the event that recorded it (party.org_life.held.v1 / .overdue.v1)")


class LifeOut(BaseModel):
    """组织生活: an organisation's meetings held and periods missed (of ``period``, else of every
    period), newest period first, within a period the latest recorded first, a page at a time;
    ``held`` and ``missed`` count them all."""

    org_id: str
    period: str | None
    held: int = Field(description="meetings held, on every page")
    missed: int = Field(description="periods missed (reported overdue), on every page")
    total: int = Field(description="held + missed")
    total_exact: bool
    limit: int
    offset: int
    next_cursor: str | None = Field(description="the `cursor` of the next page; null on the last page")
    entries: list[LifeEntry]


# -- metrics -----------------------------------------------------------------------------------


class LifeMetrics:
    """A prometheus collector over the latest :class:`~services.party.projection.life.LifeSnapshot`
    (from committed rows, so a replay or a restart never counts twice; no ids as labels):
    ``party_org_life_held_total{kind}`` and ``party_org_life_overdue_total{kind}`` (the regional
    councils' joint meetings are counted by :mod:`.metrics`)."""

    def __init__(self) -> None:
        self.snapshot = db.LifeSnapshot()

    def update(self, snapshot: db.LifeSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self):
        s = self.snapshot
        held = CounterMetricFamily("party_org_life_held", "Meetings of organisational life held (三会一课, 主题党日)",
                                   labels=["kind"])
        overdue = CounterMetricFamily("party_org_life_overdue", "Periods without a meeting of a kind an "
                                      "organisation must hold, reported overdue", labels=["kind"])
        for k in OrgLifeKind:
            held.add_metric([k.value], s.held.get(k.value, 0))
            overdue.add_metric([k.value], s.overdue.get(k.value, 0))
        yield held
        yield overdue


LIFE_METRICS = LifeMetrics()
_registered = False


def register_metrics() -> LifeMetrics:
    """Register the collector once per process (idempotent)."""
    global _registered
    if not _registered:
        REGISTRY.register(LIFE_METRICS)
        _registered = True
    return LIFE_METRICS


# The organisations as the batch has them. An organisation established, or a member attached,
# earlier in the same batch is only in the batch's states until the unit of work is flushed:
# read from the tables alone, it would be unknown to the messages after it in the batch, and a
# message's outcome would depend on which batch it came in. Neither reads locks anything.

class _OrgRefs:
    """The refs of the organisations a batch's life commands name that its states do not hold,
    read at once for the batch (:meth:`LifeSteps.load_life`) rather than one query a command. An
    organisation changes only through the batch's states, so one they do not hold is as read
    until they do; then :func:`_org_ref` takes it from them."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[OrgRef, str | None] | None] = {}  # None: unknown or not established

    @classmethod
    def of(cls, uow: UnitOfWork) -> "_OrgRefs":
        return uow.attach(cls, cls)

    async def read(self, uow: UnitOfWork, org_ids: Sequence[str]) -> None:
        wanted = [i for i in org_ids if i not in self.known]
        if wanted:
            found = await db.org_refs(uow.conn, wanted)
            self.known.update((i, found.get(i)) for i in wanted)

    def mark(self) -> None:  # what the projection held: no message's undoing changes it
        return None

    def rollback(self, mark: None) -> None:
        pass

    async def flush(self, uow: UnitOfWork) -> None:
        pass


async def _org_ref(uow: UnitOfWork, org_id: str) -> tuple[OrgRef, str | None] | None:
    """(what organisational life needs of the organisation, the area a scope must cover), for an
    established organisation; None for one unknown or not established."""
    org = ORGS.of(uow).get(org_id)
    if org is None:
        known = _OrgRefs.of(uow).known
        if org_id in known:
            return known[org_id]
        return (await db.org_refs(uow.conn, [org_id])).get(org_id)
    if org.established_at is None:
        return None
    return OrgRef(org_id=org_id, kind=org.kind, established_at=org.established_at, area_id=org.area_id), org.scope_id


async def _org_of_member(uow: UnitOfWork, member_id: str) -> str | None:
    """The organisation the member belongs to now."""
    orgs = ORGS.of(uow)
    for org_id, org in orgs.items():
        if member_id in org.members:
            return org_id
    committed = await db.org_of_member(uow.conn, member_id)
    if committed is not None and committed in orgs:  # the batch's state of it no longer holds the member
        return None
    return committed
