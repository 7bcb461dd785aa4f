"""The points handler: commands from ``points.intake.v1`` (and ``POST /v1/commands``) and
reactions to the orders and grid services' events.

Each message: take the advisory locks of the accounts/deed it may read or create (hash
order), load the row-locked state, call the pure domain, store the result (postings move the
balances in the same transaction), emit the events. A refused transfer of a command publishes
``points.transfer.refused.v1`` and then raises, so the kit adds ``points.command.rejected.v1``
(HTTP 409). Refusals are decided before the first write of the message.
"""
from __future__ import annotations

import logging
from functools import partial
from datetime import datetime, timedelta
from typing import Any

from schemas.envelope import Message
from schemas.grid import CaseDismissed, CaseRegistered, CaseReported
from schemas.orders import OrderCompleted, OrderEvaluated, OrderPlaced
from schemas.points import AccountKind, Adjust, OpenAccount, Redeem, ReviewDeed, SubmitDeed
from services.kit.uow import Handler, UnitOfWork, on
from services.points.domain import (
    Account, Earning, EarningRules, TransferRefusal, account_id_for, award_plan, decide_adjust, decide_award, decide_credit_deed,
    decide_expire, decide_open_account, decide_redeem, decide_review_deed, decide_submit_deed, deed_transfer_id,
    earning_from_order, earning_from_report, evolve_deed,
)
from services.points.domain.clock import day_of
from services.points.domain.deeds import Deed, DeedStatus
from services.points.projection import deeds as deed_store
from services.points.projection import ledger, sources

from . import metrics
from .rules import RulesFile

log = logging.getLogger("points.handler")


def deed_key(deed_id: str) -> str:
    return f"deed:{deed_id}"


def _when(msg: Message, uow: UnitOfWork) -> datetime:
    return msg.envelope.time or uow.now


class PointsHandler(Handler):
    service = "points"

    def __init__(self, rules: RulesFile):
        self.rules = rules

    # -- accounts ------------------------------------------------------------------------
    @on(OpenAccount.TYPE)
    async def open_account(self, uow: UnitOfWork, msg: Message) -> None:
        cmd: OpenAccount = msg.payload  # type: ignore[assignment]
        conn = uow.conn
        await ledger.lock(conn, [ledger.account_key(cmd.account_id), ledger.holder_key(cmd.kind, cmd.holder_id)])
        existing = (await ledger.load_accounts(conn, [cmd.account_id])).get(cmd.account_id)
        holder = await ledger.holder_account(conn, cmd.kind, cmd.holder_id, for_update=False)
        events = decide_open_account(existing, cmd, at=uow.now, holder_account=holder)
        await ledger.apply(conn, {}, events)
        uow.emit_all(events, cause=msg)

    # -- transfers -----------------------------------------------------------------------
    async def _transfer(self, uow: UnitOfWork, msg: Message, cmd: Redeem | Adjust, decide) -> None:
        conn = uow.conn
        accounts = await ledger.load_accounts(conn, [cmd.debit_account, cmd.credit_account])
        existing = await ledger.posting(conn, cmd.transfer_id)
        try:
            events = decide(cmd, debit=accounts.get(cmd.debit_account), credit=accounts.get(cmd.credit_account),
                            existing=existing, at=uow.now, rules=self.rules.current())
        except TransferRefusal as refusal:
            uow.emit(refusal.event, cause=msg)
            uow.after_commit(partial(metrics.count, [refusal.event]))
            raise
        await ledger.apply(conn, accounts, events)
        uow.emit_all(events, cause=msg)
        uow.after_commit(partial(metrics.count, events))

    @on(Redeem.TYPE)
    async def redeem(self, uow: UnitOfWork, msg: Message) -> None:
        await self._transfer(uow, msg, msg.payload, decide_redeem)  # type: ignore[arg-type]

    @on(Adjust.TYPE)
    async def adjust(self, uow: UnitOfWork, msg: Message) -> None:
        await self._transfer(uow, msg, msg.payload, decide_adjust)  # type: ignore[arg-type]

    # -- awards --------------------------------------------------------------------------
    async def _holder_accounts(self, uow: UnitOfWork, wanted: list[tuple[AccountKind, str]],
                               also: list[str] = ()) -> tuple[list[Account | None], dict[str, Account]]:
        """The accounts of ``(kind, holder)`` pairs (None: missing, the decision may open it) and
        the row-locked map of those that exist plus ``also`` (account ids).

        Existing accounts are only row-locked (in id order). For a missing one the advisory locks
        of its holder and default id are taken first and the lookup repeated, so two transactions
        never open the same account. Advisory locks are thus taken only when an account may be
        created, which keeps a batch's share of PostgreSQL's lock table small."""
        conn = uow.conn
        found = [await ledger.holder_account(conn, kind, holder, for_update=False) for kind, holder in wanted]
        missing = [w for w, a in zip(wanted, found) if a is None]
        if missing:
            await ledger.lock(conn, [k for kind, holder in missing
                                     for k in (ledger.holder_key(kind, holder), ledger.account_key(account_id_for(kind, holder)))])
            found = [a or await ledger.holder_account(conn, kind, holder, for_update=False)
                     for (kind, holder), a in zip(wanted, found)]
        accounts = await ledger.load_accounts(conn, [*also, *(a.account_id for a in found if a is not None)])
        return [accounts.get(a.account_id) if a is not None else None for a in found], accounts

    async def _award(self, uow: UnitOfWork, msg: Message | None, earning: Earning) -> list:
        rules = self.rules.current()
        plan = award_plan(rules, earning)
        if plan is None:
            return []
        (resident, issuer), accounts = await self._holder_accounts(
            uow, [(AccountKind.resident, earning.holder_id), (AccountKind.issuer, earning.community_id)])
        existing = await ledger.posting(uow.conn, plan[2])
        events = decide_award(rules, earning, resident=resident, issuer=issuer, existing=existing, at=uow.now)
        await ledger.apply(uow.conn, accounts, events)
        uow.emit_all(events, cause=msg)
        uow.after_commit(partial(metrics.count, events))
        return events

    # -- orders --------------------------------------------------------------------------
    @on(OrderPlaced.TYPE)
    async def order_placed(self, uow: UnitOfWork, msg: Message) -> None:
        e: OrderPlaced = msg.payload  # type: ignore[assignment]
        await sources.remember_order(uow.conn, e.order_id, category=e.category.value if hasattr(e.category, "value")
                                     else str(e.category), community_id=e.community_id)

    @on(OrderCompleted.TYPE)
    async def order_completed(self, uow: UnitOfWork, msg: Message) -> None:
        e: OrderCompleted = msg.payload  # type: ignore[assignment]
        await sources.remember_order(uow.conn, e.order_id, service_minutes=e.service_minutes)

    @on(OrderEvaluated.TYPE)
    async def order_evaluated(self, uow: UnitOfWork, msg: Message) -> None:
        e: OrderEvaluated = msg.payload  # type: ignore[assignment]
        if not e.passed:
            return
        facts = await sources.order_facts(uow.conn, e.order_id)
        earning = earning_from_order(e, placed=facts, completed=facts, source=msg.source, event_id=msg.id,
                                     occurred_at=_when(msg, uow))
        if earning is None:
            log.warning("passed order %s earns nothing: its category or community is unknown", e.order_id)
            return
        await self._award(uow, msg, earning)

    # -- grid ----------------------------------------------------------------------------
    @on(CaseReported.TYPE)
    async def case_reported(self, uow: UnitOfWork, msg: Message) -> None:
        e: CaseReported = msg.payload  # type: ignore[assignment]
        row = await sources.report(uow.conn, e.case_id)
        reported = e.model_dump(mode="json")
        await sources.save_report(uow.conn, e.case_id, reported=reported)
        if row["outcome"] == "registered" and not row["awarded"] and row["registered"]:
            await self._award_report(uow, msg, e.case_id, reported, row["registered"])

    @on(CaseRegistered.TYPE)
    async def case_registered(self, uow: UnitOfWork, msg: Message) -> None:
        e: CaseRegistered = msg.payload  # type: ignore[assignment]
        row = await sources.report(uow.conn, e.case_id)
        if row["outcome"] is not None:
            return  # a case is registered or dismissed once
        registered = {"source": msg.source, "id": msg.id, "time": _when(msg, uow).isoformat(),
                      "data": e.model_dump(mode="json", exclude_none=True)}
        await sources.save_report(uow.conn, e.case_id, outcome="registered", registered=registered)
        if row["reported"] is not None or e.reporter is not None:
            await self._award_report(uow, msg, e.case_id, row["reported"] or {}, registered)

    @on(CaseDismissed.TYPE)
    async def case_dismissed(self, uow: UnitOfWork, msg: Message) -> None:
        e: CaseDismissed = msg.payload  # type: ignore[assignment]
        row = await sources.report(uow.conn, e.case_id)
        if row["outcome"] is None:
            await sources.save_report(uow.conn, e.case_id, outcome="dismissed")

    async def _award_report(self, uow: UnitOfWork, msg: Message, case_id: str, reported: dict[str, Any],
                            registered: dict[str, Any]) -> None:
        """Award the reporter of a registered case: the report's facts, overridden by what the
        registration carries; the award is the registration's (its source and id)."""
        facts = {**reported, **{k: v for k, v in registered["data"].items() if v is not None}}
        earning = earning_from_report(facts, source=registered["source"], event_id=registered["id"],
                                      occurred_at=datetime.fromisoformat(registered["time"]))
        await sources.save_report(uow.conn, case_id, awarded=True)
        if earning is not None:
            await self._award(uow, msg, earning)

    # -- deeds ---------------------------------------------------------------------------
    @on(SubmitDeed.TYPE)
    async def submit_deed(self, uow: UnitOfWork, msg: Message) -> None:
        cmd: SubmitDeed = msg.payload  # type: ignore[assignment]
        conn = uow.conn
        await ledger.lock(conn, [deed_key(cmd.deed_id)])
        deed = await deed_store.load(conn, cmd.deed_id)
        account = (await ledger.load_accounts(conn, [cmd.account_id], for_update=False)).get(cmd.account_id)
        events = decide_submit_deed(deed, cmd, account=account, rules=self.rules.current(), at=uow.now)
        for event in events:
            deed = evolve_deed(deed, event)
        if events and deed is not None:
            await deed_store.save(conn, deed)
        uow.emit_all(events, cause=msg)

    @on(ReviewDeed.TYPE)
    async def review_deed(self, uow: UnitOfWork, msg: Message) -> None:
        cmd: ReviewDeed = msg.payload  # type: ignore[assignment]
        conn = uow.conn
        peek = await deed_store.load(conn, cmd.deed_id, for_update=False)  # its account and community never change
        if peek is None:
            await ledger.lock(conn, [deed_key(cmd.deed_id)])
            deed, resident, issuer, accounts = None, None, None, {}
        else:
            deed, resident, issuer, accounts = await self._deed_accounts(uow, peek)
        rules = self.rules.current()
        events = decide_review_deed(
            deed, cmd, rules=rules, resident=resident, issuer=issuer,
            existing=await ledger.posting(conn, deed_transfer_id(cmd.deed_id)), at=uow.now)
        await self._store_deed_events(uow, msg, deed, accounts, events)

    async def _deed_accounts(self, uow: UnitOfWork, peek: Deed):
        """Lock the deed, then its resident account and its community's issuer (which the credit
        may open): (deed, resident, issuer, accounts)."""
        conn = uow.conn
        await ledger.lock(conn, [deed_key(peek.deed_id)])
        deed = await deed_store.load(conn, peek.deed_id)
        [issuer], accounts = await self._holder_accounts(uow, [(AccountKind.issuer, peek.community_id)],
                                                         also=[peek.account_id])
        return deed, accounts.get(peek.account_id), issuer, accounts

    async def _store_deed_events(self, uow: UnitOfWork, msg: Message | None, deed: Deed | None,
                                 accounts: dict[str, Account], events: list) -> None:
        await ledger.apply(uow.conn, accounts, events)
        for event in events:
            deed = evolve_deed(deed, event)
        if events and deed is not None:
            await deed_store.save(uow.conn, deed)
        uow.emit_all(events, cause=msg)
        uow.after_commit(partial(metrics.count, events))

    # -- timers --------------------------------------------------------------------------
    async def credit_refused_deeds(self, uow: UnitOfWork, limit: int = 200) -> int:
        """Credit again approved deeds whose credit was refused over a cap, once per Shanghai day
        (the deed remembers the refusal; a later day has room under the daily cap)."""
        conn = uow.conn
        done = 0
        for deed_id in await deed_store.approved_uncredited(conn, limit):
            peek = await deed_store.load(conn, deed_id, for_update=False)
            if peek is None or peek.refused_reason is None or (peek.reviewed_at and day_of(peek.reviewed_at) == day_of(uow.now)):
                continue
            deed, resident, issuer, accounts = await self._deed_accounts(uow, peek)
            if deed is None or deed.status is not DeedStatus.approved:
                continue
            events = decide_credit_deed(deed, rules=self.rules.current(), resident=resident, issuer=issuer,
                                        existing=await ledger.posting(conn, deed_transfer_id(deed_id)), at=uow.now)
            if any(getattr(e, "reason", None) == "cap_reached" for e in events):
                continue  # still over the cap: nothing new to say
            await self._store_deed_events(uow, None, deed, accounts, events)
            done += 1
        return done

    async def expire(self, uow: UnitOfWork, *, limit: int) -> int:
        """过期 Expire lots older than the validity, FIFO by earning date, once per lot."""
        conn = uow.conn
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended('points:expiry-timer', 0))"):
            return 0  # another worker is on it
        rules = self.rules.current()
        ids = await ledger.expiry_candidates(conn, expiry_cutoff(rules, uow.now), limit)
        if not ids:
            return 0
        origins = await ledger.origin_accounts(conn, ids)
        accounts = await ledger.load_accounts(conn, [*ids, *origins])
        posted = 0
        for account_id in ids:
            account = accounts.get(account_id)
            if account is None:
                continue
            events = decide_expire(account, rules=rules, now=uow.now)
            if not events:
                continue
            accounts = await ledger.apply(conn, accounts, events)
            uow.emit_all(events)
            uow.after_commit(partial(metrics.count, events))
            posted += len(events)
        return posted


def expiry_cutoff(rules: EarningRules, now: datetime) -> datetime:
    """A time every due lot was earned at or before (the timer then asks the domain exactly):
    N years are at least 365·N days (less one for 29 February); N days are N days."""
    v = rules.validity
    if v.years is not None:
        return now - timedelta(days=365 * v.years - 1)
    return now - timedelta(days=v.days or 0)
