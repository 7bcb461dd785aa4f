"""The points handler: commands from ``points.intake.v1`` (and ``POST /v1/commands``),
reactions to the orders and grid services' events, and the expiry and deed-credit timers.

A batch first locks what its messages name (:meth:`PointsHandler.load`): the deeds, then
the accounts, each row-locked in one query in id order, so that concurrent batches wait for
each other instead of deadlocking. Each message then reads the row-locked state it needs, calls
the pure domain, and keeps the result in the unit of work: the openings, postings and account
states in its :class:`~services.points.projection.ledger.Ledger`, the grid cases in its
:class:`~services.points.projection.sources.Reports`, the deeds in the kit's aggregate store;
all are written once per batch, in its transaction (the postings move the balances there: the
ledger stays relational). A refused transfer of a command publishes
``points.transfer.refused.v1`` and ``points.command.rejected.v1`` (HTTP 409); refusals are
decided before the first write.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Sequence

from schemas.codes import GridCode
from schemas.common import Payload
from schemas.envelope import Message
from schemas.grid import CaseDismissed, CaseRegistered, CaseReported, ReporterKind
from schemas.orders import OrderCompleted, OrderEvaluated, OrderPlaced
from schemas.points import (
    AccountKind, Adjust, ApproveAdjustment, ErasePerson, OpenAccount, Redeem, RefusalReason, ReviewDeed, SubmitDeed,
    TransferPosted, TransferRefused,
)
from services.kit import erasure
from services.kit.aggregates import AggregateSet
from services.kit.clock import wall_clock
from services.kit.errors import NotFound
from services.kit.handlers import Handler, handles, prepares
from services.kit.policy import Refused, in_area
from services.kit.uow import UnitOfWork
from services.points.domain import (
    Account, Deed, DeedStatus, Earning, EarningRules, SourceKind, TransferRefusal, account_id_for, award_plan,
    award_transfer_id, check_consent,
    code_hash, decide_approve_adjustment, decide_award, decide_credit_deed, decide_expire, decide_open_account,
    decide_request_adjustment, decide_review_deed, decide_submit_deed, decide_transfer, deed_transfer_id,
    earning_from_order, earning_from_report, evolve_deed, needs_approval,
)
from services.points.domain.clock import day_of
from services.points.projection import approvals, ledger, sources
from services.points.projection.deeds import DEEDS, approved_uncredited, approved_uncredited_of
from services.points.projection.ledger import Holder, Ledger, LockedAccounts

from . import metrics
from .policy import POLICY
from .rules import RulesFile

log = logging.getLogger("points.handler")


def _issuer(community_id: str) -> Holder:
    return AccountKind.issuer, community_id


def _deed_accounts(deed: Deed) -> tuple[list[str], list[Holder]]:
    """What a deed's credit reads: its resident account, and its community's issuer (which the
    credit may open)."""
    return [deed.account_id], [_issuer(deed.community_id)]


def _message(uow: UnitOfWork) -> Message:
    """The message being handled (the envelope's source, id and time)."""
    assert uow.message is not None, "a handler runs with its message"
    return uow.message


def _occurred_at(uow: UnitOfWork) -> datetime:
    """When the message being handled happened: its envelope's time, else now."""
    return _message(uow).envelope.time or uow.now


def _taken(locked: LockedAccounts, *holders: Holder) -> set[str]:
    """The ledger's ids for ``holders`` that hold no account, where such an id exists already
    (held by someone else: an account opened under it before ids were derived)."""
    return {aid for kind, holder in holders
            if locked.held(kind, holder) is None and locked.get(aid := account_id_for(kind, holder)) is not None}


def _transfers_of(batch: Sequence[Message]) -> list[str]:
    """The ids of the transfers the messages of a batch may post: their awards, redemptions and
    adjustments (each is looked up before it is posted: a message delivered again must not pay
    twice)."""
    ids = []
    for msg in batch:
        p = msg.payload
        if isinstance(p, (Redeem, Adjust)):
            ids.append(p.transfer_id)
        elif isinstance(p, CaseRegistered):
            ids.append(award_transfer_id(msg.source, msg.id, SourceKind.report))
        elif isinstance(p, OrderEvaluated) and p.passed:
            ids.append(award_transfer_id(msg.source, msg.id, SourceKind.order))
        elif isinstance(p, ReviewDeed):
            ids.append(deed_transfer_id(p.deed_id))
    return ids


def _holders_ids(*holders: Holder) -> list[str]:
    return [account_id_for(kind, holder) for kind, holder in holders]


class PointsHandler(Handler):
    service = "points"
    policy = POLICY

    def __init__(self, rules: RulesFile):
        self.rules = rules

    # -- the batch step ----------------------------------------------------------------
    @prepares(OpenAccount, Redeem, Adjust, SubmitDeed, ReviewDeed, OrderPlaced, OrderCompleted, OrderEvaluated,
              CaseReported, CaseRegistered, CaseDismissed)
    async def load(self, uow: UnitOfWork, payloads: Sequence[Payload]) -> None:
        """Lock the grid cases and the orders the batch names, its deeds, then the accounts its messages will
        read or may open (those known from the messages themselves; a handler locks the rest
        itself)."""
        ledger_ = Ledger.of(uow)  # attached first, so flushed first: a deed names its account
        await sources.Reports.of(uow).load(
            [p.case_id for p in payloads if isinstance(p, (CaseReported, CaseRegistered, CaseDismissed))])
        await sources.Orders.of(uow).load(
            [p.order_id for p in payloads if isinstance(p, (OrderPlaced, OrderCompleted, OrderEvaluated))])
        deeds = DEEDS.of(uow)
        await deeds.load([p.deed_id for p in payloads if isinstance(p, (SubmitDeed, ReviewDeed))])
        ids: list[str] = []
        holders: list[Holder] = []
        keys: list[str] = []
        for p in payloads:
            if isinstance(p, OpenAccount):
                ids.append(p.account_id)
                keys.extend(ledger.opening_keys(p.kind, p.holder_id, p.account_id))
            elif isinstance(p, (Redeem, Adjust)):
                ids += [p.debit_account, p.credit_account]
            elif isinstance(p, ReviewDeed) and (deed := deeds.get(p.deed_id)) is not None:
                deed_ids, deed_holders = _deed_accounts(deed)
                ids += deed_ids
                holders += deed_holders
            elif isinstance(p, OrderEvaluated) and p.passed:
                award = [(AccountKind.resident, p.assignee_id)]
                if p.community_id is not None:
                    award.append(_issuer(p.community_id))
                ids += _holders_ids(*award)  # as the award locks them (an account it would open, read once here)
                holders += award
            elif isinstance(p, CaseRegistered) and p.reporter is not None and p.reporter.kind is ReporterKind.RESIDENT:
                award = [(AccountKind.resident, p.reporter.id)]
                if p.grid_id is not None:
                    award.append(_issuer(GridCode.parse(p.grid_id).community_id))
                ids += _holders_ids(*award)
                holders += award
        await ledger_.lock(ids=ids, holders=holders, keys=keys)
        await ledger_.know_postings(_transfers_of(uow.batch))

    # -- erasure -----------------------------------------------------------------------
    @handles(ErasePerson)
    async def erase_person(self, uow: UnitOfWork, cmd: ErasePerson) -> None:
        """擦除: the person's accounts get a pseudonymous id (balances and the ledger unchanged),
        their words go."""
        await self._erase(uow, cmd.person_id, None, "command")

    @handles(*erasure.other_services_erased("points"))
    async def person_erased(self, uow: UnitOfWork, event) -> None:
        """Another service erased a person: erase the points service's copy under the same pseudonym."""
        await self._erase(uow, event.person_id, event.pseudonym, event.service())

    async def _erase(self, uow: UnitOfWork, person_id: str, pseudonym: str | None, origin: str) -> None:
        from . import erasure as points_erasure

        await Ledger.of(uow).lock(holders=[(k, person_id) for k in points_erasure.HOLDER_KINDS])
        await erasure.erase(uow, person_id, points_erasure.scrub, pseudonym=pseudonym, origin=origin,
                            skip=points_erasure.SKIP)
        # what the batch read is renamed now (the unit of work flushed before): read it again
        Ledger.of(uow).forget()
        sources.Reports.of(uow).forget()

    # -- commands: accounts ------------------------------------------------------------
    @handles(OpenAccount)
    async def open_account(self, uow: UnitOfWork, cmd: OpenAccount) -> None:
        """开户. An issuer account is a points operator's to open (officers open residents and merchants)."""
        if cmd.kind is AccountKind.issuer and not (uow.principal is not None and uow.principal.has("points_operator")):
            raise Refused("forbidden", "issuer accounts are opened by a points operator", "kind")
        locked = await Ledger.of(uow).lock(ids=[cmd.account_id], holders=[(cmd.kind, cmd.holder_id)],
                                           keys=ledger.opening_keys(cmd.kind, cmd.holder_id, cmd.account_id))
        events = decide_open_account(locked.get(cmd.account_id), cmd, at=uow.now,
                                     holder_account=locked.held(cmd.kind, cmd.holder_id))
        await self._post(uow, {}, events)

    # -- commands: transfers -----------------------------------------------------------
    @handles(Redeem)
    async def redeem(self, uow: UnitOfWork, cmd: Redeem) -> None:
        """兑换 a redemption at a merchant, with the resident's consent code, consumed in this
        transaction. A refusal of the transfer publishes ``points.transfer.refused.v1`` beside the
        command's rejection (and leaves the code unused)."""
        existing = await Ledger.of(uow).posting(cmd.transfer_id)
        consume = None
        # A repeated command is answered by the posting itself. Replayed by a rebuild, a command
        # the worker posted or refused as a transfer had a good code (the code comes first): the
        # code (made over HTTP, valid for minutes of the wall clock) is no input, the posting or
        # the refusal on the topic is what says so.
        if existing is None and not uow.caused_live(TransferPosted.TYPE) and not uow.caused_live(TransferRefused.TYPE):
            key = code_hash(cmd.consent_code) if cmd.consent_code is not None else None
            # a code's few minutes are real minutes (the wall clock, not a simulated calendar that
            # may jump a month while the merchant waits)
            if check_consent(await approvals.lock_code(uow.conn, key) if key else None, cmd, wall_clock()):
                consume = key
        locked = await Ledger.of(uow).lock(ids=[cmd.debit_account, cmd.credit_account])
        events = self._decide_or_refuse(uow, lambda: decide_transfer(
            cmd, debit=locked.get(cmd.debit_account), credit=locked.get(cmd.credit_account), existing=existing,
            at=uow.now, rules=self.rules.current()))
        if events is None:
            return
        if consume is not None and events:
            await approvals.consume_code(uow.conn, consume, cmd.transfer_id, wall_clock())
        await self._post(uow, locked.by_id, events)

    @handles(Adjust)
    async def adjust(self, uow: UnitOfWork, cmd: Adjust) -> None:
        """调整 an operator's correction: posted at once up to 100 points, else requested for a
        second operator's approval."""
        locked = await Ledger.of(uow).lock(ids=[cmd.debit_account, cmd.credit_account])
        debit, credit = locked.get(cmd.debit_account), locked.get(cmd.credit_account)
        existing = await Ledger.of(uow).posting(cmd.transfer_id)
        if needs_approval(cmd):
            requested = await approvals.lock_request(uow.conn, cmd.transfer_id)
            events = self._decide_or_refuse(uow, lambda: decide_request_adjustment(
                cmd, debit=debit, credit=credit, requested=requested, existing=existing, at=uow.now))
            if events:
                await approvals.save_request(uow.conn, events[0])
                self._emit(uow, events)
            return
        events = self._decide_or_refuse(uow, lambda: decide_transfer(
            cmd, debit=debit, credit=credit, existing=existing, at=uow.now, rules=self.rules.current()))
        if events is not None:
            await self._post(uow, locked.by_id, events)

    @handles(ApproveAdjustment)
    async def approve_adjustment(self, uow: UnitOfWork, cmd: ApproveAdjustment) -> None:
        """批准调整 a second operator's approval: the requested adjustment is posted."""
        requested = await approvals.lock_request(uow.conn, cmd.transfer_id)
        if requested is None:
            raise NotFound("adjustment", cmd.transfer_id, "transfer_id")
        locked = await Ledger.of(uow).lock(ids=[requested.debit_account, requested.credit_account])
        existing = await Ledger.of(uow).posting(cmd.transfer_id)
        events = self._decide_or_refuse(uow, lambda: decide_approve_adjustment(
            requested, cmd, debit=locked.get(requested.debit_account), credit=locked.get(requested.credit_account),
            existing=existing, at=uow.now, rules=self.rules.current()))
        if events is None:
            return
        if events:
            await approvals.mark_approved(uow.conn, cmd.transfer_id, cmd.approver_id or "", uow.now)
        await self._post(uow, locked.by_id, events)

    def _decide_or_refuse(self, uow: UnitOfWork, decide) -> list | None:
        """``decide()``, or None when it refused the transfer: nothing written yet, the refusal
        event and the rejection are published."""
        try:
            return decide()
        except TransferRefusal as refusal:
            self._emit(uow, [refusal.event])
            uow.reject(_message(uow), refusal)
            return None

    async def _post(self, uow: UnitOfWork, accounts: dict[str, Account], events: list) -> None:
        """Store the openings and postings among ``events`` (``accounts``: the locked states the
        decision saw) and publish them all."""
        Ledger.of(uow).apply(accounts, events)
        self._emit(uow, events)

    @staticmethod
    def _emit(uow: UnitOfWork, events: list) -> None:
        uow.emit_all(events)
        uow.after_commit(partial(metrics.count, events))

    # -- shared steps: awards ----------------------------------------------------------
    async def _award(self, uow: UnitOfWork, earning: Earning) -> None:
        """Award an order's or a report's earning by the rules (nothing when no rule gives it points)."""
        plan = award_plan(self.rules.current(), earning)
        if plan is None:
            return
        resident, issuer = (AccountKind.resident, earning.holder_id), _issuer(earning.community_id)
        locked = await Ledger.of(uow).lock(ids=_holders_ids(resident, issuer), holders=[resident, issuer])
        events = decide_award(plan, resident=locked.held(*resident), issuer=locked.held(*issuer),
                              existing=await Ledger.of(uow).posting(plan.transfer_id), at=uow.now,
                              taken=_taken(locked, resident, issuer))
        await self._post(uow, locked.by_id, events)

    # -- reactions: orders -------------------------------------------------------------
    @handles(OrderPlaced)
    async def order_placed(self, uow: UnitOfWork, e: OrderPlaced) -> None:
        await sources.Orders.of(uow).remember(e.order_id, category=e.category.value, community_id=e.community_id)

    @handles(OrderCompleted)
    async def order_completed(self, uow: UnitOfWork, e: OrderCompleted) -> None:
        await sources.Orders.of(uow).remember(e.order_id, service_minutes=e.service_minutes)

    @handles(OrderEvaluated)
    async def order_evaluated(self, uow: UnitOfWork, e: OrderEvaluated) -> None:
        if not e.passed:
            return
        msg = _message(uow)
        earning = earning_from_order(e, facts=await sources.Orders.of(uow).fetch(e.order_id), source=msg.source,
                                     event_id=msg.id, occurred_at=_occurred_at(uow))
        if earning is None:
            log.warning("passed order %s earns nothing: its category or community is unknown", e.order_id)
            return
        await self._award(uow, earning)

    # -- reactions: the grid's cases ---------------------------------------------------
    @handles(CaseReported)
    async def case_reported(self, uow: UnitOfWork, e: CaseReported) -> None:
        reports = sources.Reports.of(uow)
        case = await reports.get(e.case_id)
        reports.save(e.case_id, reported=e)
        if case.outcome == "registered" and not case.awarded and case.registration is not None:
            await self._award_report(uow, e.case_id, case.registration, e)

    @handles(CaseRegistered)
    async def case_registered(self, uow: UnitOfWork, e: CaseRegistered) -> None:
        reports = sources.Reports.of(uow)
        case = await reports.get(e.case_id)
        if case.outcome is not None:
            return  # a case is registered or dismissed once
        msg = _message(uow)
        registration = sources.Registration(e, msg.source, msg.id, _occurred_at(uow))
        reports.save(e.case_id, outcome="registered", registration=registration)
        if case.reported is not None or e.reporter is not None:
            await self._award_report(uow, e.case_id, registration, case.reported)

    @handles(CaseDismissed)
    async def case_dismissed(self, uow: UnitOfWork, e: CaseDismissed) -> None:
        reports = sources.Reports.of(uow)
        if (await reports.get(e.case_id)).outcome is None:
            reports.save(e.case_id, outcome="dismissed")

    async def _award_report(self, uow: UnitOfWork, case_id: str, registration: sources.Registration,
                            reported: CaseReported | None) -> None:
        """Award the reporter of a registered case; the award is the registration's (its
        source, id and time)."""
        earning = earning_from_report(registration.event, reported, source=registration.source,
                                      event_id=registration.id, occurred_at=registration.at)
        sources.Reports.of(uow).save(case_id, awarded=True)
        if earning is not None:
            await self._award(uow, earning)

    # -- commands: deeds ---------------------------------------------------------------
    @handles(SubmitDeed)
    async def submit_deed(self, uow: UnitOfWork, cmd: SubmitDeed) -> None:
        deeds = DEEDS.of(uow)
        deed = await deeds.fetch(cmd.deed_id)
        account = await Ledger.of(uow).peek(cmd.account_id)
        events = decide_submit_deed(deed, cmd, account=account, rules=self.rules.current(), at=uow.now)
        await self._record_deed(uow, deeds, deed, {}, events)

    @handles(ReviewDeed)
    async def review_deed(self, uow: UnitOfWork, cmd: ReviewDeed) -> None:
        """评审, by an officer whose scope holds the deed's community (another community's deed is
        refused as an unknown one, so that its existence does not leak)."""
        deeds = DEEDS.of(uow)
        deed = await deeds.fetch(cmd.deed_id)
        if deed is not None and not in_area(uow.principal, deed.community_id):
            raise NotFound("deed", cmd.deed_id, "deed_id")
        resident, issuer, accounts = await self._credit_parties(uow, deed)
        events = decide_review_deed(deed, cmd, rules=self.rules.current(), resident=resident, issuer=issuer,
                                    existing=await Ledger.of(uow).posting(deed_transfer_id(cmd.deed_id)),
                                    at=uow.now)
        await self._record_deed(uow, deeds, deed, accounts, events)

    @staticmethod
    async def _credit_parties(uow: UnitOfWork, deed: Deed | None) -> tuple[Account | None, Account | None,
                                                                              dict[str, Account]]:
        """A deed's resident account and its community's issuer, row-locked (None: missing),
        and the map of the locked accounts."""
        if deed is None:
            return None, None, {}
        ids, holders = _deed_accounts(deed)
        locked = await Ledger.of(uow).lock(ids=ids, holders=holders)
        return locked.get(deed.account_id), locked.held(*_issuer(deed.community_id)), locked.by_id

    async def _record_deed(self, uow: UnitOfWork, deeds: AggregateSet[Deed], deed: Deed | None,
                           accounts: dict[str, Account], events: list) -> None:
        """Store and publish a deed decision's events: the postings in the ledger, the evolved
        deed in the batch's deed set."""
        after = deed
        for event in events:
            after = evolve_deed(after, event)
        if events and after is not None:
            deeds.put(after.deed_id, after)
        await self._post(uow, accounts, events)

    # -- timers ------------------------------------------------------------------------
    async def credit_refused_deeds(self, uow: UnitOfWork, limit: int = 200) -> int:
        """Credit again approved deeds whose credit was refused over a cap, once per Shanghai day
        (the deed remembers the refusal; a later day has room under the daily cap). Deeds a
        batch holds now are left for the next round."""
        ids = await approved_uncredited(uow.conn, limit)
        found = await DEEDS.read(uow.conn, ids, skip_locked=True)
        due = [found[i] for i in ids if i in found and self._credit_due(found[i][1], uow.now)]
        deeds = DEEDS.of(uow)
        deeds.adopt({deed.deed_id: (version, deed) for version, deed in due})
        return await self._credit_deeds(uow, deeds, [deed for _, deed in due])

    async def credit_deeds_of(self, uow: UnitOfWork, account_ids: list[str]) -> None:
        """What a round of :meth:`credit_refused_deeds` did to the deeds of ``account_ids`` (the
        accounts its events were about), done again at ``uow.now``, as a rebuild replays it: the
        due deeds of those accounts, as the unit of work holds them, in the timer's order."""
        wanted = set(account_ids)
        deeds = DEEDS.of(uow)
        await deeds.load(await approved_uncredited_of(uow.conn, sorted(wanted)))
        due = sorted((d for _, d in deeds.items() if d is not None and d.account_id in wanted
                      and self._credit_due(d, uow.now)), key=lambda d: (d.reviewed_at, d.deed_id))
        await self._credit_deeds(uow, deeds, due)

    async def _credit_deeds(self, uow: UnitOfWork, deeds: AggregateSet[Deed], due: list[Deed]) -> int:
        """Credit ``due`` (approved deeds whose credit was refused), in order; those still over
        the cap stay as they are."""
        if not due:
            return 0
        needs = [_deed_accounts(deed) for deed in due]  # all at once first, in id order
        await Ledger.of(uow).lock(ids=[i for ids, _ in needs for i in ids],
                                   holders=[h for _, holders in needs for h in holders])
        rules = self.rules.current()
        done = 0
        for deed in due:
            resident, issuer, accounts = await self._credit_parties(uow, deed)
            events = decide_credit_deed(deed, rules=rules, resident=resident, issuer=issuer,
                                        existing=await Ledger.of(uow).posting(deed_transfer_id(deed.deed_id)),
                                        at=uow.now)
            if any(isinstance(e, TransferRefused) and e.reason == RefusalReason.cap_reached for e in events):
                continue  # still over the cap: nothing new to say
            await self._record_deed(uow, deeds, deed, accounts, events)
            done += 1
        return done

    @staticmethod
    def _credit_due(deed: Deed, now: datetime) -> bool:
        """An approved deed whose credit was refused on an earlier Shanghai day than ``now``."""
        return (deed.status is DeedStatus.approved and deed.refused_reason is not None
                and not (deed.reviewed_at and day_of(deed.reviewed_at) == day_of(now)))

    async def expire(self, uow: UnitOfWork, *, limit: int) -> int:
        """过期 Expire lots older than the validity, FIFO by earning date, once per lot."""
        ids = await ledger.expiry_candidates(uow.conn, expiry_cutoff(self.rules.current(), uow.now), limit)
        if not ids:
            return 0
        return await self._expire(uow, ids, await ledger.origin_accounts(uow.conn, ids))

    async def expire_of(self, uow: UnitOfWork, account_ids: list[str]) -> None:
        """What a round of :meth:`expire` did to ``account_ids`` (the accounts its events were
        about), done again at ``uow.now``, as a rebuild replays it (the accounts as the unit of
        work holds them)."""
        ids = sorted(set(account_ids))
        # the accounts first (a rebuild is the only writer: the origins locked after them wait for nobody)
        locked = await Ledger.of(uow).lock(ids=ids)
        await self._expire(uow, ids, {lot.origin_account for a in locked.by_id.values() for lot in a.lots})

    async def _expire(self, uow: UnitOfWork, ids: list[str], origins: set[str]) -> int:
        """Expire what is due of the lots of ``ids`` (resident accounts, whose lots came from
        ``origins``): every account locked at once first, then each account's expiry decided
        on its latest state and posted."""
        book = Ledger.of(uow)
        await book.lock(ids=[*ids, *origins])
        rules = self.rules.current()
        posted = 0
        for account_id in ids:  # each locked above: no more queries
            account = (await book.lock(ids=[account_id])).get(account_id)
            if account is None:
                continue
            events = decide_expire(account, rules=rules, now=uow.now)
            if events:
                locked = await book.lock(ids=[account_id, *(e.credit_account for e in events)])
                await self._post(uow, locked.by_id, events)
                posted += len(events)
        return posted


def expiry_cutoff(rules: EarningRules, now: datetime) -> datetime:
    """A time every due lot was earned at or before (the timer then asks the domain exactly):
    N years are at least 365·N days (less one for 29 February); N days are N days."""
    v = rules.validity
    if v.years is not None:
        return now - timedelta(days=365 * v.years - 1)
    return now - timedelta(days=v.days or 0)
