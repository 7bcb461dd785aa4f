"""Accounts (账户) and how postings change them.

An :class:`Account` is the state the ledger keeps per account: its balance, and for a
resident the earning lots (积分批次) that make the balance up — each award or credit
adds a lot dated when it was earned; spending takes from the oldest lots first (FIFO),
and expiry retires what is left of a lot once it is older than the validity. For a
resident ``balance == sum(lot.remaining)`` always holds.

Only issuer accounts may go below zero (:func:`floor_of`). The account also counts what
it earned per rule in the current Shanghai days and months, for the caps.
"""
from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import Iterable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.codes import is_community_id
from schemas.points import AccountKind, AccountOpened, OpenAccount, TransferKind, TransferPosted

from services.kit.errors import IllegalTransition, Rejected
from .clock import date_of, day_of, month_of

# cap counters older than this (before the newest award) are dropped from the state
CAP_WINDOW_DAYS = 62


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Lot(_State):
    """积分批次 Points credited to a resident by one transfer (``lot_id`` = its transfer id):
    when they were earned, how many, and how many are left. ``origin_account`` is the
    account they came from; expired points go back there (for an award: its issuer)."""

    lot_id: str
    earned_at: AwareDatetime
    amount: int
    remaining: int
    origin_account: str


class Account(_State):
    """账户 One account of the ledger. ``usage`` counts points earned per cap period:
    ``{"<rule>|day|2026-11-22": 15, "<rule>|month|2026-11": 40}``."""

    account_id: str
    holder_id: str
    kind: AccountKind
    community_id: str | None = None
    opened_at: AwareDatetime | None = None
    balance: int = 0
    lots: tuple[Lot, ...] = ()
    usage: dict[str, int] = Field(default_factory=dict)
    postings: int = 0

    def available(self) -> int:
        """Points this account may still send without going below its floor."""
        floor = floor_of(self.kind)
        return self.balance - floor if floor is not None else 2**62

    def earned_in(self, rule_id: str, at: datetime) -> tuple[int, int]:
        """Points earned under ``rule_id`` on the Shanghai day and in the month of ``at``."""
        return (
            self.usage.get(usage_key(rule_id, "day", day_of(at)), 0),
            self.usage.get(usage_key(rule_id, "month", month_of(at)), 0),
        )


def floor_of(kind: AccountKind) -> int | None:
    """The lowest balance an account may reach: 0 for residents and merchants, none for
    issuers (an issuer's negative balance is the points its community has issued)."""
    return None if kind is AccountKind.issuer else 0


def usage_key(rule_id: str, period: str, value: str) -> str:
    return f"{rule_id}|{period}|{value}"


def account_id_for(kind: AccountKind | str, holder_id: str) -> str:
    """The account id the ledger gives a holder's account when it opens it itself (on a first
    award): ``resident:<person id>``, ``issuer:<community id>``, ``merchant:<merchant id>``."""
    return f"{AccountKind(kind).value}:{holder_id}"


def issuer_account_id(community_id: str) -> str:
    """Which issuer pays: the issuer account of the community the earning happened in."""
    return account_id_for(AccountKind.issuer, community_id)


# ---------------------------------------------------------------------------------------
# decide
# ---------------------------------------------------------------------------------------


def decide_open_account(
    existing: Account | None,
    command: OpenAccount,
    *,
    at: datetime,
    holder_account: Account | None = None,
) -> list[AccountOpened]:
    """开户. ``existing`` is the account with ``command.account_id``; ``holder_account`` the
    account the holder already has of that kind (one per holder and kind).

    Opening the same account again with the same holder and kind is a no-op; anything
    else that clashes is refused (``account_exists``, ``holder_has_account``). An issuer's
    holder is its 12-digit community id."""
    if existing is not None:
        if existing.holder_id == command.holder_id and existing.kind is command.kind:
            return []
        raise Rejected("account_exists", f"account {command.account_id!r} belongs to another holder", "account_id")
    if holder_account is not None and holder_account.account_id != command.account_id:
        raise Rejected(
            "holder_has_account",
            f"{command.holder_id!r} already has {command.kind.value} account {holder_account.account_id!r}",
            "holder_id",
        )
    community = command.community_id
    if command.kind is AccountKind.issuer:
        if not is_community_id(command.holder_id):
            raise Rejected("invalid_issuer", "an issuer's holder_id is its 12-digit community id", "holder_id")
        if community is not None and community != command.holder_id:
            raise Rejected("invalid_issuer", "an issuer's community_id is its holder_id", "community_id")
        community = command.holder_id
    return [
        AccountOpened(
            account_id=command.account_id, holder_id=command.holder_id, kind=command.kind,
            community_id=community, opened_at=at,
        )
    ]


def opened_event(kind: AccountKind, holder_id: str, *, at: datetime, community_id: str | None = None) -> AccountOpened:
    """The event of an account the ledger opens itself (first award of a holder, a
    community's issuer), with the id of :func:`account_id_for`."""
    if kind is AccountKind.issuer:
        community_id = holder_id
    return AccountOpened(
        account_id=account_id_for(kind, holder_id), holder_id=holder_id, kind=kind,
        community_id=community_id, opened_at=at,
    )


# ---------------------------------------------------------------------------------------
# evolve
# ---------------------------------------------------------------------------------------


def evolve_account(account: Account | None, event: AccountOpened | TransferPosted) -> Account:
    """Apply one event to one account. A transfer applies to whichever side the account is
    on; the domain has already checked the floor (this only asserts it)."""
    if isinstance(event, AccountOpened):
        if account is not None:
            return account
        return Account(
            account_id=event.account_id, holder_id=event.holder_id, kind=event.kind,
            community_id=event.community_id, opened_at=event.opened_at,
        )
    if account is None:
        raise IllegalTransition(type(event).__name__, "absent", f"no account for {event.transfer_id!r}")
    if isinstance(event, TransferPosted):
        if event.debit_account == account.account_id:
            return _debit(account, event)
        if event.credit_account == account.account_id:
            return _credit(account, event)
        return account
    raise TypeError(f"not an account event: {type(event).__name__}")


def evolve_accounts(accounts: dict[str, Account], events: Iterable[object]) -> dict[str, Account]:
    """Apply events to a map of accounts (those of the transfer); returns a new map."""
    out = dict(accounts)
    for event in events:
        if isinstance(event, AccountOpened):
            out[event.account_id] = evolve_account(out.get(event.account_id), event)
        elif isinstance(event, TransferPosted):
            for side in (event.debit_account, event.credit_account):
                out[side] = evolve_account(out.get(side), event)
    return out


def _debit(account: Account, event: TransferPosted) -> Account:
    balance = account.balance - event.amount
    floor = floor_of(account.kind)
    if floor is not None and balance < floor:
        raise IllegalTransition("debit", str(account.balance), f"{account.account_id} would go below {floor}")
    lots = account.lots
    if account.kind is AccountKind.resident:
        if event.kind is TransferKind.expiry and event.lot_id is not None:
            lots = _take_from_lot(lots, event.lot_id, event.amount)
        else:
            lots = take_fifo(lots, event.amount)
    return account.model_copy(update={"balance": balance, "lots": lots, "postings": account.postings + 1})


def _credit(account: Account, event: TransferPosted) -> Account:
    update: dict[str, object] = {"balance": account.balance + event.amount, "postings": account.postings + 1}
    if account.kind is AccountKind.resident:
        earned_at = event.posted_at
        if earned_at is None:
            raise IllegalTransition("credit", "resident", f"transfer {event.transfer_id!r} has no posted_at")
        lot = Lot(lot_id=event.transfer_id, earned_at=earned_at, amount=event.amount, remaining=event.amount,
                  origin_account=event.debit_account)
        update["lots"] = _with_lot(account.lots, lot)
    if event.kind is TransferKind.award and event.rule and event.posted_at is not None:
        update["usage"] = _count(account.usage, event.rule, event.posted_at, event.amount)
    return account.model_copy(update=update)


def _lot_order(lot: Lot) -> tuple[datetime, str]:
    return lot.earned_at, lot.lot_id


def _with_lot(lots: tuple[Lot, ...], lot: Lot) -> tuple[Lot, ...]:
    """``lots`` with ``lot`` in its place. An account's lots are kept oldest first (by earning
    time, then id: every change below keeps that order), and lots are credited in time order, so
    the new one is nearly always the newest: it is appended, where sorting a member's thousands
    of lots again at every credit took 8 % of a rebuild's CPU. The order is the one a sort gives."""
    key = _lot_order(lot)
    if not lots or _lot_order(lots[-1]) <= key:
        return (*lots, lot)
    i = bisect.bisect_right(lots, key, key=_lot_order)
    return (*lots[:i], lot, *lots[i:])


def take_fifo(lots: tuple[Lot, ...], amount: int) -> tuple[Lot, ...]:
    """Take ``amount`` from the oldest lots first; emptied lots are dropped."""
    out: list[Lot] = []
    for lot in sorted(lots, key=lambda x: (x.earned_at, x.lot_id)):
        take = min(amount, lot.remaining)
        amount -= take
        if lot.remaining - take > 0:
            out.append(lot.model_copy(update={"remaining": lot.remaining - take}))
    if amount > 0:
        raise IllegalTransition("debit", "lots", f"{amount} more points than the lots hold")
    return tuple(out)


def _take_from_lot(lots: tuple[Lot, ...], lot_id: str, amount: int) -> tuple[Lot, ...]:
    out: list[Lot] = []
    for lot in lots:
        if lot.lot_id == lot_id:
            if lot.remaining < amount:
                raise IllegalTransition("expire", str(lot.remaining), f"lot {lot_id!r} holds less than {amount}")
            if lot.remaining > amount:
                out.append(lot.model_copy(update={"remaining": lot.remaining - amount}))
        else:
            out.append(lot)
    return tuple(out)


def _count(usage: dict[str, int], rule_id: str, at: datetime, amount: int) -> dict[str, int]:
    out = dict(usage)
    for key in (usage_key(rule_id, "day", day_of(at)), usage_key(rule_id, "month", month_of(at))):
        out[key] = out.get(key, 0) + amount
    # forget counters far older than this award, so the state stays small
    horizon = date_of(day_of(at)) - timedelta(days=CAP_WINDOW_DAYS)
    keep: dict[str, int] = {}
    for key, value in out.items():
        _, period, stamp = key.rsplit("|", 2)
        when = date_of(stamp) if period == "day" else date_of(stamp + "-01")
        if period == "month" and when.replace(day=28) + timedelta(days=4) > horizon or period == "day" and when >= horizon:
            keep[key] = value
    return keep
