"""Transfers (转账): the double-entry postings of the ledger, and the decisions that make them.

Every posting moves ``amount`` (a positive integer) from a debit account to a credit
account, so the sum over all accounts stays zero. Postings are never edited; a correction
is an ``adjustment``. Resident and merchant balances may not go below zero.

Idempotence. An award's ``transfer_id`` is derived from its source event —
``uuid5(source | source_event_id | earning kind)`` (:func:`award_transfer_id`) — so it
is the same however often the event is delivered. Every ``decide_*`` takes ``existing``,
the posting already stored under that transfer id (the application looks it up by
primary key): when it has the same terms the decision is a **no-op** (``[]``: a
redelivery is not news); when its terms differ (e.g. the rules changed between two
deliveries) the transfer is **refused** with ``duplicate_source``. The rule is not part
of the id on purpose: a rules change between deliveries must not award a source twice.

Which issuer pays an award: the issuer account of the community the earning happened in
(:func:`issuer_account_id` of ``Earning.community_id``: an order's community, the
community prefix of a case's grid id, the community that reviewed a deed). The ledger
opens an issuer or a holder's resident account itself on its first award.

Refusals. An award that cannot be posted is a fact of its own: ``points.transfer.refused.v1``
(``cap_reached``, ``duplicate_source``, ``wrong_account_kind``), returned as the decision.
A command that cannot be posted (``insufficient_balance``, ``unknown_account``...) raises
:class:`TransferRefusal` — a :class:`Rejected` that carries the refusal event too, so the
application answers 409 / ``points.command.rejected.v1`` and may also publish the event.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Collection

from pydantic import AwareDatetime, BaseModel, ConfigDict, NonNegativeInt

from schemas.common import CommunityId
from schemas.points import (
    SINGLE_APPROVAL_MAX, AccountKind, AccountOpened, Adjust, AdjustmentRequested, ApproveAdjustment, RefusalReason,
    Redeem, TransferKind, TransferPosted, TransferRefused,
)
from services.kit.errors import IllegalTransition, NotFound, Rejected

from .accounts import Account, Lot, evolve_account, opened_event
from .rules import EarningRules, Rule, SourceKind

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:grassroots:points:transfer")


class TransferRefusal(Rejected):
    """A command's transfer was refused; ``event`` is the matching ``points.transfer.refused.v1``."""

    def __init__(self, event: TransferRefused, field: str | None = None):
        super().__init__(event.reason, event.detail, field)
        self.event = event


class Earning(BaseModel):
    """来源事件 A fact from another service that may earn points, as the application read
    it: who (``holder_id``, a person id), what (``kind`` and ``category``), where
    (``community_id``: whose issuer pays), when (``occurred_at``: dates the lot and the
    cap period), and which event (``source``, ``source_event_id``: the CloudEvents
    ``source`` and ``id``, which make the transfer id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    source_event_id: str
    kind: SourceKind
    holder_id: str
    category: str
    community_id: CommunityId
    occurred_at: AwareDatetime
    service_minutes: NonNegativeInt = 0


_NAMESPACE_BYTES = NAMESPACE.bytes
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}  # a hex digit with the RFC 4122 variant bits


def _transfer_uuid(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))``, written from the SHA-1 digest without a
    :class:`uuid.UUID` in between (every award the ledger looks up makes one)."""
    h = hashlib.sha1(_NAMESPACE_BYTES + name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def award_transfer_id(source: str, source_event_id: str, kind: SourceKind | str) -> str:
    """The deterministic id of the award earned by one source event."""
    return _transfer_uuid(f"award|{source}|{source_event_id}|{SourceKind(kind).value}")


def expiry_transfer_id(account_id: str, lot_id: str) -> str:
    """The deterministic id of the expiry of one lot: a lot expires once."""
    return _transfer_uuid(f"expiry|{account_id}|{lot_id}")


def same_terms(a: TransferPosted, b: TransferPosted) -> bool:
    return (a.debit_account, a.credit_account, a.amount, a.reason) == (b.debit_account, b.credit_account, b.amount, b.reason)


def _holder_side(debit: Account, credit: Account) -> str:
    """The record key of a transfer: the resident or merchant side (the debit one if both)."""
    if debit.kind is not AccountKind.issuer:
        return debit.account_id
    return credit.account_id


# ---------------------------------------------------------------------------------------
# awards
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AwardPlan:
    """What one award would post: the ``earning`` it is for, the ``rule`` it falls under (its
    caps apply), the ``amount`` and the ``transfer_id`` (which the application looks up first,
    to pass the posting already stored under it to :func:`decide_award`)."""

    earning: Earning
    rule: Rule
    amount: int
    transfer_id: str


def award_plan(rules: EarningRules, earning: Earning) -> AwardPlan | None:
    """The plan of an order or report earning, or None when no rule gives it points. (Deeds
    get the reviewer's points: see :func:`.deeds.decide_credit_deed`.)"""
    if earning.kind is SourceKind.deed:
        raise ValueError("deeds are credited by review (decide_review_deed), not by award_plan")
    rule = rules.rule_for(earning.kind, earning.category)
    if rule is None:
        return None
    amount = rule.amount_for(earning.service_minutes)
    if amount <= 0:
        return None
    return AwardPlan(earning, rule, amount, award_transfer_id(earning.source, earning.source_event_id, earning.kind))


def decide_award(
    plan: AwardPlan,
    *,
    resident: Account | None,
    issuer: Account | None,
    existing: TransferPosted | None = None,
    at: datetime | None = None,
    taken: Collection[str] = (),
) -> list[AccountOpened | TransferPosted | TransferRefused]:
    """奖励 Award a resident by ``plan`` (an order or report earning under the rules, or a
    deed's credit).

    ``resident`` is the holder's resident account (None: the ledger opens it), ``issuer``
    the issuer account of ``earning.community_id`` (None: opened too), ``existing`` the
    posting already stored under ``plan.transfer_id``. Returns ``[]`` on a redelivery;
    ``[TransferRefused]`` over a cap; else the openings and the posting. ``at`` (default:
    ``occurred_at``) stamps openings and refusals. ``taken``: account ids that exist but are
    held by someone else; an account to open under one of them is refused
    (``account_conflict``), never a unique violation. A resident account the ledger opens
    belongs to the earning's community (whose officers read it)."""
    earning, rule, amount, transfer_id = plan.earning, plan.rule, plan.amount, plan.transfer_id
    at = at or earning.occurred_at
    events: list[AccountOpened | TransferPosted | TransferRefused] = []
    if resident is None:
        resident_open = opened_event(AccountKind.resident, earning.holder_id, at=at, community_id=earning.community_id)
        events.append(resident_open)
        resident = Account(account_id=resident_open.account_id, holder_id=earning.holder_id, kind=AccountKind.resident,
                           community_id=earning.community_id)
    if issuer is None:
        issuer_open = opened_event(AccountKind.issuer, earning.community_id, at=at)
        events.append(issuer_open)
        issuer = Account(account_id=issuer_open.account_id, holder_id=earning.community_id, kind=AccountKind.issuer,
                         community_id=earning.community_id)
    posting = TransferPosted(
        transfer_id=transfer_id, debit_account=issuer.account_id, credit_account=resident.account_id,
        amount=amount, reason=TransferKind.award, source=earning.source, source_event_id=earning.source_event_id,
        rule=rule.id, category=earning.category, community_id=earning.community_id, posted_at=earning.occurred_at,
        account_id=resident.account_id,
    )

    def refused(reason: RefusalReason, detail: str) -> list[AccountOpened | TransferPosted | TransferRefused]:
        return [TransferRefused(
            transfer_id=transfer_id, reason=reason.value, detail=detail, kind=TransferKind.award,
            account_id=resident.account_id, debit_account=issuer.account_id, credit_account=resident.account_id,
            amount=amount, source=earning.source, source_event_id=earning.source_event_id, rule=rule.id,
            category=earning.category, community_id=earning.community_id, refused_at=at,
        )]

    clash = [e.account_id for e in events if isinstance(e, AccountOpened) and e.account_id in taken]
    if clash:
        return refused(RefusalReason.account_conflict, f"{clash[0]} is held by another holder")
    if existing is not None:
        if same_terms(existing, posting):
            return []
        return refused(RefusalReason.duplicate_source,
                       f"transfer {transfer_id} was already posted as {existing.amount} from {existing.debit_account}")
    if resident.kind is not AccountKind.resident:
        return refused(RefusalReason.wrong_account_kind, f"{resident.account_id} is a {resident.kind.value} account")
    if issuer.kind is not AccountKind.issuer:
        return refused(RefusalReason.wrong_account_kind, f"{issuer.account_id} is not an issuer account")
    day_used, month_used = resident.earned_in(rule.id, earning.occurred_at)
    if rule.caps.day is not None and day_used + amount > rule.caps.day:
        return refused(RefusalReason.cap_reached,
                       f"daily cap {rule.caps.day} of {rule.id}: {day_used} earned today, {amount} more asked")
    if rule.caps.month is not None and month_used + amount > rule.caps.month:
        return refused(RefusalReason.cap_reached,
                       f"monthly cap {rule.caps.month} of {rule.id}: {month_used} earned this month, {amount} more asked")
    return [*events, posting]


# ---------------------------------------------------------------------------------------
# expiry
# ---------------------------------------------------------------------------------------


def due_lots(account: Account, rules: EarningRules, now: datetime) -> list[Lot]:
    """Lots of a resident whose points are older than the validity at ``now``, oldest first."""
    if account.kind is not AccountKind.resident:
        return []
    return [
        lot for lot in sorted(account.lots, key=lambda x: (x.earned_at, x.lot_id))
        if lot.remaining > 0 and rules.expires_at(lot.earned_at) <= now
    ]


def decide_expire(account: Account, *, rules: EarningRules, now: datetime) -> list[TransferPosted]:
    """过期 Retire what is left of every lot older than the validity, oldest first (FIFO by
    earning date): one ``expiry`` transfer per lot, back to the account the lot came from,
    dated when the lot expired. Exactly once: the posting empties the lot, so the next run
    finds nothing, and its id (:func:`expiry_transfer_id`) is fixed per lot."""
    return [
        TransferPosted(
            transfer_id=expiry_transfer_id(account.account_id, lot.lot_id), debit_account=account.account_id,
            credit_account=lot.origin_account, amount=lot.remaining, reason=TransferKind.expiry,
            lot_id=lot.lot_id, posted_at=rules.expires_at(lot.earned_at), account_id=account.account_id,
        )
        for lot in due_lots(account, rules, now)
    ]


def _after_expiry(account: Account, rules: EarningRules | None, at: datetime) -> tuple[list[TransferPosted], Account]:
    """Expire what is due before spending, so expired points are never spent."""
    if rules is None:
        return [], account
    expired = decide_expire(account, rules=rules, now=at)
    for posting in expired:
        account = evolve_account(account, posting)
    return expired, account


# ---------------------------------------------------------------------------------------
# commands: redeem, adjust
# ---------------------------------------------------------------------------------------


def _refuse(reason: RefusalReason, detail: str, kind: TransferKind, cmd: Redeem | Adjust, at: datetime,
            field: str | None = None) -> TransferRefusal:
    return TransferRefusal(
        TransferRefused(
            transfer_id=cmd.transfer_id, reason=reason.value, detail=detail, kind=kind, account_id=cmd.debit_account,
            debit_account=cmd.debit_account, credit_account=cmd.credit_account, amount=cmd.amount, refused_at=at,
        ),
        field,
    )


def _check_pair(cmd: Redeem | Adjust, kind: TransferKind, debit: Account | None, credit: Account | None,
                existing: TransferPosted | None, at: datetime) -> tuple[Account, Account] | None:
    if cmd.debit_account == cmd.credit_account:
        raise _refuse(RefusalReason.same_account, "debit and credit are the same account", kind, cmd, at, "credit_account")
    if existing is not None:
        if (existing.debit_account, existing.credit_account, existing.amount, existing.reason) == (
            cmd.debit_account, cmd.credit_account, cmd.amount, kind,
        ):
            return None
        raise _refuse(RefusalReason.duplicate_source, f"transfer {cmd.transfer_id} was already posted with other terms",
                      kind, cmd, at, "transfer_id")
    if debit is None:
        raise _refuse(RefusalReason.unknown_account, f"no account {cmd.debit_account!r}", kind, cmd, at, "debit_account")
    if credit is None:
        raise _refuse(RefusalReason.unknown_account, f"no account {cmd.credit_account!r}", kind, cmd, at, "credit_account")
    return debit, credit


def _check_floor(cmd: Redeem | Adjust, kind: TransferKind, debit: Account, at: datetime) -> None:
    if debit.available() < cmd.amount:
        raise _refuse(RefusalReason.insufficient_balance,
                      f"{debit.account_id} holds {debit.balance}, {cmd.amount} asked", kind, cmd, at, "amount")


def _redemption_terms(cmd: Redeem, debit: Account, credit: Account) -> dict[str, Any]:
    return {"account_id": debit.account_id, "community_id": credit.community_id}


def _adjustment_terms(cmd: Adjust, debit: Account, credit: Account) -> dict[str, Any]:
    issuer = next((a for a in (debit, credit) if a.kind is AccountKind.issuer), None)
    return {"operator_id": cmd.operator_id, "detail": cmd.reason, "account_id": _holder_side(debit, credit),
            "community_id": issuer.community_id if issuer is not None else None}


# per command: the kind of transfer, the account kinds of its (debit, credit) sides (None: any), its terms
_COMMAND_TRANSFERS: dict[type, tuple[TransferKind, tuple[AccountKind | None, AccountKind | None], Callable]] = {
    Redeem: (TransferKind.redemption, (AccountKind.resident, AccountKind.merchant), _redemption_terms),
    Adjust: (TransferKind.adjustment, (None, None), _adjustment_terms),
}


def decide_transfer(
    cmd: Redeem | Adjust,
    *,
    debit: Account | None,
    credit: Account | None,
    existing: TransferPosted | None = None,
    at: datetime,
    rules: EarningRules | None = None,
) -> list[TransferPosted]:
    """The postings of a transfer a command asks for.

    - 兑换 :class:`Redeem`: a resident (``debit``) spends points at a merchant (``credit``).
    - 调整 :class:`Adjust`: an operator's correction between any two accounts, with reason and
      operator; the debit account's floor holds (only issuers may go below zero). A credit to a
      resident is a new lot earned ``at``; a debit takes the oldest points first.

    With ``rules``, the debit side's lots that are due are expired first (their ``expiry``
    postings come before the transfer in the result), so expired points are never spent.
    Raises :class:`TransferRefusal`: ``unknown_account``, ``wrong_account_kind``,
    ``same_account``, ``insufficient_balance``, ``duplicate_source``. A repeated command
    (same transfer id, same terms) returns ``[]``."""
    kind, sides, terms = _COMMAND_TRANSFERS[type(cmd)]
    if isinstance(cmd, Adjust):
        check_not_own(cmd.operator_id, cmd.credit_account, credit)
    pair = _check_pair(cmd, kind, debit, credit, existing, at)
    if pair is None:
        return []
    debit, credit = pair
    for account, wanted, field in ((debit, sides[0], "debit_account"), (credit, sides[1], "credit_account")):
        if wanted is not None and account.kind is not wanted:
            raise _refuse(RefusalReason.wrong_account_kind, f"{account.account_id} is not a {wanted.value} account",
                          kind, cmd, at, field)
    expired, debit = _after_expiry(debit, rules, at)
    _check_floor(cmd, kind, debit, at)
    return [
        *expired,
        TransferPosted(transfer_id=cmd.transfer_id, debit_account=debit.account_id, credit_account=credit.account_id,
                       amount=cmd.amount, reason=kind, posted_at=at, **terms(cmd, debit, credit)),
    ]


# ---------------------------------------------------------------------------------------
# adjustments: separation of duties
# ---------------------------------------------------------------------------------------


class SelfCredit(Rejected):
    """``self_credit``: an operator's adjustment (or approval) would credit an account they hold."""

    def __init__(self, operator_id: str, account_id: str, field: str = "credit_account"):
        super().__init__("self_credit", f"{operator_id!r} holds {account_id!r} and cannot credit it", field)


class SelfApproval(Rejected):
    """``self_approval``: the second approval of an adjustment comes from the operator who asked."""

    def __init__(self, approver_id: str):
        super().__init__("self_approval", f"{approver_id!r} requested this adjustment; another operator approves it",
                         "approver_id")


def check_not_own(operator_id: str | None, credit_account: str, credit: Account | None) -> None:
    """Refuse an adjustment that credits an account ``operator_id`` holds: one the ledger holds
    for them, or one whose id names them (``resident:<operator>``, ``merchant:<operator>``...)."""
    if operator_id is None:
        return
    _, sep, holder = credit_account.partition(":")
    if (sep and holder == operator_id) or (credit is not None and credit.holder_id == operator_id):
        raise SelfCredit(operator_id, credit_account)


def needs_approval(cmd: Adjust) -> bool:
    """Whether an adjustment waits for a second operator (more than ``SINGLE_APPROVAL_MAX`` points)."""
    return cmd.amount > SINGLE_APPROVAL_MAX


def _same_request(a: AdjustmentRequested, cmd: Adjust) -> bool:
    return (a.debit_account, a.credit_account, a.amount, a.operator_id) == (
        cmd.debit_account, cmd.credit_account, cmd.amount, cmd.operator_id)


def decide_request_adjustment(
    cmd: Adjust,
    *,
    debit: Account | None,
    credit: Account | None,
    requested: AdjustmentRequested | None,
    existing: TransferPosted | None = None,
    at: datetime,
) -> list[AdjustmentRequested]:
    """调整申请 An adjustment over ``SINGLE_APPROVAL_MAX`` points: checked as the transfer would be
    now (accounts, kinds, the debit's floor, the operator's own accounts) and recorded as
    requested; nothing moves until another operator approves it. ``requested``: the request
    already stored under the transfer id. A repeated request is a no-op."""
    if requested is not None:
        if _same_request(requested, cmd):
            return []
        raise _refuse(RefusalReason.duplicate_source, f"adjustment {cmd.transfer_id} was requested with other terms",
                      TransferKind.adjustment, cmd, at, "transfer_id")
    postings = decide_transfer(cmd, debit=debit, credit=credit, existing=existing, at=at)
    if not postings:
        return []  # posted already, with these terms
    assert debit is not None and credit is not None
    return [AdjustmentRequested(
        transfer_id=cmd.transfer_id, debit_account=cmd.debit_account, credit_account=cmd.credit_account,
        amount=cmd.amount, operator_id=cmd.operator_id or "", detail=cmd.reason,
        account_id=_holder_side(debit, credit), occurred_at=at,
    )]


def decide_approve_adjustment(
    requested: AdjustmentRequested | None,
    cmd: ApproveAdjustment,
    *,
    debit: Account | None,
    credit: Account | None,
    existing: TransferPosted | None = None,
    at: datetime,
    rules: EarningRules | None = None,
) -> list[TransferPosted]:
    """批准调整 A second operator approves a requested adjustment: it is posted now (the floor is
    checked again). Refused: ``unknown_adjustment``, ``self_approval`` (the requesting
    operator), ``self_credit`` (the approver holds the credited account), ``illegal_transition``
    (approved already by someone else), and the transfer's own refusals. Approving it again is
    a no-op."""
    if requested is None:
        raise NotFound("adjustment", cmd.transfer_id, "transfer_id")
    if cmd.approver_id == requested.operator_id:
        raise SelfApproval(cmd.approver_id or "")
    check_not_own(cmd.approver_id, requested.credit_account, credit)
    if existing is not None:
        if existing.approver_id == cmd.approver_id:
            return []
        raise IllegalTransition("approve", "approved", f"adjustment {cmd.transfer_id} was approved already")
    adjust = Adjust(transfer_id=requested.transfer_id, debit_account=requested.debit_account,
                    credit_account=requested.credit_account, amount=requested.amount,
                    operator_id=requested.operator_id, reason=requested.detail or "adjustment")
    postings = decide_transfer(adjust, debit=debit, credit=credit, existing=None, at=at, rules=rules)
    return [p.model_copy(update={"approver_id": cmd.approver_id}) if p.transfer_id == cmd.transfer_id else p
            for p in postings]
