"""What the points service's HTTP routes take and answer (path, query and response models)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from schemas.common import CommunityId
from services.kit.routes import Page, PageOut, ref

RankingPeriod = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}(-(0[1-9]|1[0-2]))?$")]
"""A month ``2026-11`` or a year ``2026`` (ASCII digits)."""

# -- path and query ----------------------------------------------------------------------------


AccountRef = ref("AccountRef", "account_id", description="`<kind>:<holder id>`, e.g. `resident:r-42`")


DeedRef = ref("DeedRef", "deed_id")


class RankingQuery(Page.sized(20, 500)):
    scope: Literal["community", "district"] = Field("district", description="one community's ranking or the district's")
    community_id: CommunityId | None = Field(None, description="the community, with scope=community only (12 digits)")
    period: RankingPeriod | None = Field(None, description="a month (YYYY-MM) or a year (YYYY); default: this month")


class RedemptionCodeIn(BaseModel):
    """A resident's consent to one redemption from their own account."""

    amount: int = Field(gt=0, le=100_000, description="the most points the merchant may take with the code")


# -- answers -----------------------------------------------------------------------------------


class Lot(BaseModel):
    """积分批次: points earned together, spent oldest first and expiring together."""

    lot_id: str
    earned_at: datetime
    remaining: int


class AccountOut(BaseModel):
    account_id: str
    kind: str = Field(description="resident, merchant, issuer...")
    holder_id: str | None
    community_id: str | None
    balance: int
    opened_at: datetime | None
    postings: int
    lots: list[Lot]


class Posting(BaseModel):
    """One double-entry posting (a transfer between two accounts)."""

    transfer_id: str
    kind: str = Field(description="award, redemption, expiry, adjustment...")
    debit_account: str
    credit_account: str
    amount: int
    rule: str | None = None
    category: str | None = None
    community_id: str | None = None
    source_event_id: str | None = None
    operator_id: str | None = None
    reason: str | None = None
    lot_id: str | None = None
    posted_at: datetime
    recorded_at: datetime


class StatementLine(Posting):
    change: int = Field(description="the posting's effect on the account: + credited, - debited")


class Statement(PageOut[StatementLine]):
    """An account's postings, newest first."""

    account_id: str


class Redemptions(PageOut[Posting]):
    """The redemptions at a merchant, newest first."""

    account_id: str
    points: int = Field(description="points redeemed there in all")


class DeedOut(BaseModel):
    """道德日记: a submitted deed and how far it got (submitted → approved/rejected → credited)."""

    deed_id: str
    account_id: str
    category: str
    community_id: str
    status: Literal["submitted", "approved", "rejected", "credited"]
    description: str | None = None
    occurred_on: date | None = None
    submitted_at: datetime | None = None
    points: int | None = None
    reviewer_id: str | None = None
    reviewed_at: datetime | None = None
    reason: str | None = None
    transfer_id: str | None = None
    refused_reason: str | None = None


class RankingEntry(BaseModel):
    rank: int = Field(description="ties share a rank")
    account_id: str
    holder_id: str | None
    points: int
    candidate: bool = Field(description="a 道德模范 candidate (yearly rankings only)")


class Rankings(PageOut[RankingEntry]):
    """好人榜: points earned in a period, most first."""

    period: str
    scope: Literal["community", "district"]
    community_id: str | None


class Mismatch(BaseModel):
    account_id: str
    balance: int
    derived: int


class LedgerCheck(BaseModel):
    """The ledger check: the balances sum to 0 and each equals its postings."""

    mode: Literal["incremental", "full"] = Field(
        description="incremental: from the running totals kept with each write (O(1)); full: every posting and "
                    "account read again")
    sum: int = Field(description="the sum of all balances (0)")
    postings: int
    accounts: int
    consistent: bool
    problems: list[str] = Field(description="what disagrees, in words (empty when consistent)")
    mismatched: list[Mismatch] = Field(description="full check: accounts whose balance is not their postings' sum "
                                                   "(up to 100); always empty in the incremental check")
    pending: int = Field(description="write deltas not yet folded into the running totals (the check adds them)")


class RedemptionCode(BaseModel):
    """A single-use redemption code: show it at the till before ``expires_at``. Only its hash is kept."""

    code: str
    account_id: str = Field(description="the resident's own account, `resident:<sub>`")
    amount: int
    expires_at: datetime
