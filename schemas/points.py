"""Points service contract — 道德银行 moral bank: a district-wide double-entry points ledger.

Commands arrive on ``points.intake.v1``; facts leave on ``points.events.v1``. Every record
is keyed by an account id (docs/contract.md): a command by the account it acts on (for a
transfer: the debit account, whose floor is at stake), an event by the account whose
holder the fact is about (``account_id``; for a transfer the resident or merchant side).

Amounts of points are positive integers. A transfer always moves ``amount`` from
``debit_account`` to ``credit_account`` (two movements that sum to zero); postings are
never edited — a correction is a new ``adjustment`` transfer with a reason and an operator.
"""
from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Annotated, Any, ClassVar

from pydantic import Field, PositiveInt, ValidationInfo, field_validator, model_validator

from .common import Command, CommunityId, Event, NonEmptyStr, Text, Timestamp, pii, ErasePersonCommand, PersonErasedEvent


class AccountKind(str, Enum):
    """Kinds of account (账户类型).

    - ``resident`` 居民账户: one per resident, valid in every community of the district (互联互通).
    - ``merchant`` 商户账户: a shop of the 道德联盟 moral alliance (爱心超市 and partner shops)
      where residents redeem points.
    - ``issuer`` 发行账户: one per community; awards are paid from it, so its balance is the
      negative of the points the community has issued. Only issuer accounts may go below zero.
    """

    resident = "resident"
    merchant = "merchant"
    issuer = "issuer"


class TransferKind(str, Enum):
    """Why points moved (转账类别).

    - ``award`` 奖励: an earning rule credited a resident from a community issuer.
    - ``redemption`` 兑换: a resident spent points at a merchant.
    - ``expiry`` 过期: points older than the validity went back to where they came from.
    - ``adjustment`` 调整: an operator's correction, with a reason.
    """

    award = "award"
    redemption = "redemption"
    expiry = "expiry"
    adjustment = "adjustment"


class RefusalReason(str, Enum):
    """Stable codes of ``points.transfer.refused.v1`` ``reason`` (and of rejected commands).

    The event field is a plain string so that readers stay tolerant of codes added later.
    """

    insufficient_balance = "insufficient_balance"  # 余额不足: a resident/merchant would go below zero
    cap_reached = "cap_reached"  # 超过上限: the daily or monthly cap of the rule for this account
    duplicate_source = "duplicate_source"  # the transfer id was already posted with other terms
    unknown_account = "unknown_account"  # an account of the transfer does not exist
    wrong_account_kind = "wrong_account_kind"  # e.g. redeeming from a merchant account
    same_account = "same_account"  # debit and credit are the same account
    account_conflict = "account_conflict"  # the ledger's id for the holder's account is held by another holder


# ---------------------------------------------------------------------------------------
# Commands (points.intake.v1)
# ---------------------------------------------------------------------------------------


def derived_account_id(kind: "AccountKind | str", holder_id: str) -> str:
    """The one id an account of ``kind`` held by ``holder_id`` has: ``resident:<holder id>``,
    ``merchant:<holder id>``, ``issuer:<community id>``. The caller never chooses it."""
    return f"{AccountKind(kind).value}:{holder_id}"


class OpenAccount(Command):
    """开户 Open an account for a resident, a merchant or a community issuer.

    For an issuer, ``holder_id`` is the 12-digit community id. ``community_id`` is the
    home community of a resident or merchant (optional for a points operator; a community or
    street officer names a community of their scope; a resident's account is valid in every
    community), and is the holder itself for an issuer.

    ``account_id`` is derived from ``kind`` and ``holder_id`` (``<kind>:<holder id>``): it may be
    omitted, and a body naming another id is refused (field ``account_id``).
    """

    TYPE: ClassVar[str] = "points.account.open.v1"
    SUBJECT: ClassVar[str] = "account_id"

    holder_id: Annotated[NonEmptyStr, pii("identifier")]
    kind: AccountKind
    community_id: CommunityId | None = None
    account_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        default=None, validate_default=True,
        description="`<kind>:<holder_id>`; derived when omitted, refused when it differs")

    @field_validator("account_id")
    @classmethod
    def _derived_id(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind, holder = info.data.get("kind"), info.data.get("holder_id")
        if kind is None or holder is None:
            return v  # kind or holder_id is invalid itself
        want = derived_account_id(kind, holder)
        if v is not None and v != want:
            raise ValueError(f"must be {want!r} (<kind>:<holder_id>), not {v!r}")
        return want


class SubmitDeed(Command):
    """申报 A resident submits a good deed (道德日记) for review by the community.

    ``community_id`` is the community that reviews it and whose issuer pays; when absent
    the resident account's home community is used.
    """

    TYPE: ClassVar[str] = "points.deed.submit.v1"
    SUBJECT: ClassVar[str] = "account_id"

    deed_id: NonEmptyStr
    account_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(default=None, description="the sender's own `resident:<sub>` (filled from the token)")
    category: NonEmptyStr
    description: Annotated[Text, pii("free_text")] = ""
    community_id: CommunityId | None = None
    occurred_on: date | None = Field(default=None, description="the day the deed was done")


class ReviewDeed(Command):
    """评审 The community reviews a submitted deed: approves it with the points the reviewer
    sets (within the bounds of the deed category's rule) or rejects it with a reason."""

    TYPE: ClassVar[str] = "points.deed.review.v1"
    SUBJECT: ClassVar[str] = "account_id"

    deed_id: NonEmptyStr
    account_id: Annotated[NonEmptyStr, pii("identifier")]
    approved: bool
    points: PositiveInt | None = None
    reviewer_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(default=None, description="the sender (filled from the token)")
    reason: Annotated[NonEmptyStr | None, pii("free_text")] = None

    @model_validator(mode="after")
    def _points_or_reason(self) -> "ReviewDeed":
        if self.approved and self.points is None:
            raise ValueError("points is required when the deed is approved")
        if not self.approved and not self.reason:
            raise ValueError("reason is required when the deed is rejected")
        return self


class Redeem(Command):
    """兑换 A resident redeems points at a merchant: ``amount`` moves from the resident
    (``debit_account``) to the merchant (``credit_account``, the sending merchant's own
    ``merchant:<sub>``). ``transfer_id`` is chosen by the sender (the till), so a repeated
    command is the same transfer.

    ``consent_code`` is the resident's consent: a short-lived, single-use code the resident
    created for their account (``POST /v1/redemption-codes``) for at most some amount. Without
    one nothing moves (``consent_required``); an unknown, expired, used code, one of another
    account or for less than ``amount`` is ``invalid_consent``. The code is never published."""

    TYPE: ClassVar[str] = "points.redeem.v1"
    SUBJECT: ClassVar[str] = "debit_account"

    transfer_id: NonEmptyStr
    debit_account: Annotated[NonEmptyStr, pii("identifier")]
    credit_account: Annotated[NonEmptyStr | None, pii("identifier")] = Field(default=None, description="the sender's own `merchant:<sub>` (filled from the token)")
    amount: PositiveInt
    consent_code: Annotated[NonEmptyStr | None, pii("credential")] = Field(default=None, description="the resident's redemption code (never published)")


MAX_ADJUSTMENT = 100_000
"""The most one adjustment may move (a larger amount is invalid)."""

SINGLE_APPROVAL_MAX = 100
"""An adjustment of at most this many points takes effect at once; a larger one waits for a
second, different operator's approval (:class:`ApproveAdjustment`)."""


class Adjust(Command):
    """调整 An operator's correction: a new transfer between any two accounts, with the
    operator and the reason. Postings are never edited; this is how mistakes are undone.

    At most 100,000 points (``MAX_ADJUSTMENT``; a larger amount is invalid). Up to 100 points
    it is posted at once; above, it is only requested (``points.adjustment.requested.v1``) and
    is posted when another points operator approves it (``points.adjust.approve.v1``). An
    operator never credits an account they hold. Adjustments never count as earned points."""

    TYPE: ClassVar[str] = "points.adjust.v1"
    SUBJECT: ClassVar[str] = "debit_account"

    transfer_id: NonEmptyStr
    debit_account: Annotated[NonEmptyStr, pii("identifier")]
    credit_account: Annotated[NonEmptyStr, pii("identifier")]
    amount: PositiveInt = Field(description=f"at most {MAX_ADJUSTMENT} points")
    operator_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(default=None, description="the sender (filled from the token)")
    reason: Annotated[NonEmptyStr, pii("free_text")]

    @field_validator("amount")
    @classmethod
    def _bounded(cls, v: int) -> int:
        if v > MAX_ADJUSTMENT:
            raise ValueError(f"one adjustment moves at most {MAX_ADJUSTMENT} points, not {v}")
        return v


class ApproveAdjustment(Command):
    """批准调整 A second points operator approves a requested adjustment of more than 100 points
    (``transfer_id``); it is then posted. The operator who requested it cannot approve it
    (``self_approval``)."""

    TYPE: ClassVar[str] = "points.adjust.approve.v1"
    SUBJECT: ClassVar[str] = "transfer_id"

    transfer_id: NonEmptyStr
    approver_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(default=None, description="the sender (filled from the token)")


# ---------------------------------------------------------------------------------------
# Events (points.events.v1)
# ---------------------------------------------------------------------------------------


class AccountOpened(Event):
    """开户 An account was opened (by command, or automatically on a holder's first award)."""

    TYPE: ClassVar[str] = "points.account.opened.v1"
    SUBJECT: ClassVar[str] = "account_id"

    account_id: Annotated[NonEmptyStr, pii("identifier")]
    holder_id: Annotated[NonEmptyStr, pii("identifier")]
    kind: AccountKind
    community_id: CommunityId | None = None
    opened_at: Timestamp | None = None


class DeedSubmitted(Event):
    """申报 A deed was submitted and waits for review (待评审)."""

    TYPE: ClassVar[str] = "points.deed.submitted.v1"
    SUBJECT: ClassVar[str] = "account_id"

    deed_id: NonEmptyStr
    account_id: Annotated[NonEmptyStr, pii("identifier")]
    category: NonEmptyStr
    description: Annotated[Text, pii("free_text")] = ""
    community_id: CommunityId | None = None
    occurred_on: date | None = None
    submitted_at: Timestamp | None = None


class DeedApproved(Event):
    """评审通过 The community approved a deed with ``points``; the credit (兑现) is the award
    transfer ``transfer_id`` (posted, or refused when a cap is reached)."""

    TYPE: ClassVar[str] = "points.deed.approved.v1"
    SUBJECT: ClassVar[str] = "account_id"

    deed_id: NonEmptyStr
    account_id: Annotated[NonEmptyStr, pii("identifier")]
    category: NonEmptyStr
    points: PositiveInt
    reviewer_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    community_id: CommunityId | None = None
    transfer_id: NonEmptyStr | None = None
    reviewed_at: Timestamp | None = None


class DeedRejected(Event):
    """评审不通过 The community rejected a deed, with the reason."""

    TYPE: ClassVar[str] = "points.deed.rejected.v1"
    SUBJECT: ClassVar[str] = "account_id"

    deed_id: NonEmptyStr
    account_id: Annotated[NonEmptyStr, pii("identifier")]
    category: NonEmptyStr
    reason: Annotated[NonEmptyStr, pii("free_text")]
    reviewer_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    reviewed_at: Timestamp | None = None


def _same_kind_fields(data: Any, contract_field: str | None) -> Any:
    """Fill ``kind`` from the contract field (or back) so both always agree."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    if contract_field is not None:
        kind, reason = data.get("kind"), data.get(contract_field)
        if kind is None and reason is not None:
            data["kind"] = reason
        elif reason is None and kind is not None:
            data[contract_field] = kind
        elif kind is not None and reason is not None and _value(kind) != _value(reason):
            raise ValueError(f"kind {kind!r} and {contract_field} {reason!r} disagree")
    if data.get("account_id") is None:
        data["account_id"] = data.get("debit_account") or data.get("credit_account")
    return data


def _value(x: Any) -> Any:
    return x.value if isinstance(x, Enum) else x


class TransferPosted(Event):
    """记账 A transfer was posted: ``amount`` left ``debit_account`` and entered
    ``credit_account``. Never edited or deleted.

    ``reason`` is the kind of transfer (award | redemption | expiry | adjustment), as
    docs/contract.md names it; ``kind`` repeats it under a clearer name. ``source_event_id`` is
    the event that earned an award (an order evaluation, a case registration, a deed id).
    ``posted_at`` is when the points count as moved: for an award the time of the earning
    event (it dates the earning lot and the cap period), otherwise the decision time.
    ``detail`` is the operator's reason of an adjustment. ``lot_id`` names the earning lot
    that an expiry transfer retires. ``account_id`` is the record key: the resident or
    merchant side of the transfer.
    """

    TYPE: ClassVar[str] = "points.transfer.posted.v1"
    SUBJECT: ClassVar[str] = "account_id"

    transfer_id: NonEmptyStr
    debit_account: Annotated[NonEmptyStr, pii("identifier")]
    credit_account: Annotated[NonEmptyStr, pii("identifier")]
    amount: PositiveInt
    reason: TransferKind
    source_event_id: NonEmptyStr | None = None
    kind: TransferKind | None = None
    account_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    source: NonEmptyStr | None = Field(default=None, description="CloudEvents source of the source event")
    rule: NonEmptyStr | None = Field(default=None, description="id of the earning rule of an award")
    category: NonEmptyStr | None = None
    community_id: CommunityId | None = Field(default=None, description="community of the issuer side")
    operator_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    approver_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(default=None, description="the second operator of a large adjustment")
    detail: Annotated[Text | None, pii("free_text")] = None
    lot_id: NonEmptyStr | None = None
    posted_at: Timestamp | None = None

    @model_validator(mode="before")
    @classmethod
    def _kind_is_reason(cls, data: Any) -> Any:
        return _same_kind_fields(data, "reason")

    @model_validator(mode="after")
    def _two_accounts(self) -> "TransferPosted":
        if self.debit_account == self.credit_account:
            raise ValueError("debit_account and credit_account must differ")
        return self


class AdjustmentRequested(Event):
    """调整待批准 An adjustment of more than 100 points was requested by ``operator_id`` and waits
    for a second, different operator's approval; nothing moved yet. ``account_id`` is the
    record key: the resident or merchant side (the debit side if both)."""

    TYPE: ClassVar[str] = "points.adjustment.requested.v1"
    SUBJECT: ClassVar[str] = "account_id"

    transfer_id: NonEmptyStr
    debit_account: Annotated[NonEmptyStr, pii("identifier")]
    credit_account: Annotated[NonEmptyStr, pii("identifier")]
    amount: PositiveInt
    operator_id: Annotated[NonEmptyStr, pii("identifier")]
    detail: Annotated[Text, pii("free_text")] = Field(default="", description="the operator's reason")
    account_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    occurred_at: Timestamp | None = None

    @model_validator(mode="before")
    @classmethod
    def _key(cls, data: Any) -> Any:
        return _same_kind_fields(data, None)


class TransferRefused(Event):
    """拒绝记账 A transfer was refused and nothing moved. ``reason`` is a stable code of
    :class:`RefusalReason` (``insufficient_balance``, ``cap_reached``, ``duplicate_source``,
    ``unknown_account``...); ``detail`` explains it to people. The other fields describe
    the transfer that was asked for, when known."""

    TYPE: ClassVar[str] = "points.transfer.refused.v1"
    SUBJECT: ClassVar[str] = "account_id"

    transfer_id: NonEmptyStr
    reason: NonEmptyStr
    detail: Annotated[Text, pii("free_text")] = ""
    kind: TransferKind | None = None
    account_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    debit_account: Annotated[NonEmptyStr | None, pii("identifier")] = None
    credit_account: Annotated[NonEmptyStr | None, pii("identifier")] = None
    amount: PositiveInt | None = None
    source: NonEmptyStr | None = None
    source_event_id: NonEmptyStr | None = None
    rule: NonEmptyStr | None = None
    category: NonEmptyStr | None = None
    community_id: CommunityId | None = None
    refused_at: Timestamp | None = None

    @model_validator(mode="before")
    @classmethod
    def _key(cls, data: Any) -> Any:
        return _same_kind_fields(data, None)

    @property
    def aggregate_id(self) -> str:
        return self.account_id or self.transfer_id


COMMANDS: tuple[type[Command], ...] = (OpenAccount, SubmitDeed, ReviewDeed, Redeem, Adjust, ApproveAdjustment)
EVENTS: tuple[type[Event], ...] = (
    AccountOpened, DeedSubmitted, DeedApproved, DeedRejected, TransferPosted, TransferRefused, AdjustmentRequested,
)


# ---------------------------------------------------------------------------------------
# Erasure (shapes in schemas.common)
# ---------------------------------------------------------------------------------------


class ErasePerson(ErasePersonCommand):
    """擦除 Erase a person's personal data in the points service (see :class:`~schemas.common.ErasePersonCommand`)."""

    TYPE: ClassVar[str] = "points.person.erase.v1"


class PersonErased(PersonErasedEvent):
    """A person's data was erased in the points service (see :class:`~schemas.common.PersonErasedEvent`)."""

    TYPE: ClassVar[str] = "points.person.erased.v1"
