"""好人榜 Rankings of earned points, per community or the whole district, per month or year;
the yearly top earners are 道德模范 (moral model) candidates.

Pure functions over :class:`EarnedPoints` rows (the projection keeps them). Points earned
are awards only: an operator's adjustment never counts (so that an operator cannot put
anyone on the list), and redemptions and expiry do not lower what someone earned. A resident's account
is valid across the district; for a community ranking an award counts in the community
whose issuer paid it. Periods are Shanghai calendar months (``2026-11``) or years (``2026``).
Ties share a rank (1, 2, 2, 4) and are listed by account id.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterable

from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.points import TransferKind, TransferPosted

from .clock import month_of, year_of

_MONTH = re.compile(r"^[0-9]{4}-[0-9]{2}$")
_YEAR = re.compile(r"^[0-9]{4}$")


class EarnedPoints(BaseModel):
    """Points one account earned (or lost by correction, when negative) at one time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str
    amount: int
    earned_at: AwareDatetime
    community_id: str | None = None


class RankingEntry(BaseModel):
    """One line of 好人榜. ``candidate``: a 道德模范 candidate (yearly ranking, rank ≤ N)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rank: int
    account_id: str
    points: int
    candidate: bool = False


def earned_from(posting: TransferPosted) -> EarnedPoints | None:
    """What a posting adds to (or takes from) an account's earned total, if anything."""
    at = posting.posted_at
    if at is None:
        return None
    if posting.reason is TransferKind.award:
        return EarnedPoints(account_id=posting.credit_account, amount=posting.amount, earned_at=at,
                            community_id=posting.community_id)
    return None


def _in_period(at, period: str) -> bool:
    if _MONTH.match(period):
        return month_of(at) == period
    if _YEAR.match(period):
        return year_of(at) == period
    raise ValueError(f"period must be YYYY-MM or YYYY, not {period!r}")


def rankings(
    earned: Iterable[EarnedPoints],
    *,
    period: str,
    community_id: str | None = None,
    top: int | None = None,
    candidates: int = 0,
) -> list[RankingEntry]:
    """好人榜 for ``period`` (``YYYY-MM`` or ``YYYY``), of one community or (None) the district.
    Only positive totals are listed; ``top`` keeps ranks ≤ top (ties at the edge stay in);
    for a year, ranks ≤ ``candidates`` are flagged as 道德模范 candidates."""
    totals: dict[str, int] = defaultdict(int)
    for row in earned:
        if community_id is not None and row.community_id != community_id:
            continue
        if _in_period(row.earned_at, period):
            totals[row.account_id] += row.amount
    ordered = sorted(((p, a) for a, p in totals.items() if p > 0), key=lambda x: (-x[0], x[1]))
    is_year = bool(_YEAR.match(period))
    out: list[RankingEntry] = []
    rank, previous = 0, None
    for position, (points, account) in enumerate(ordered, start=1):
        if points != previous:
            rank, previous = position, points
        if top is not None and rank > top:
            break
        out.append(RankingEntry(rank=rank, account_id=account, points=points,
                                candidate=is_year and rank <= candidates))
    return out


def moral_model_candidates(
    earned: Iterable[EarnedPoints], *, year: str, top: int, community_id: str | None = None,
) -> list[RankingEntry]:
    """道德模范 candidates: the yearly top ``top`` earners (ties at the edge included)."""
    if not _YEAR.match(year):
        raise ValueError(f"year must be YYYY, not {year!r}")
    return rankings(earned, period=year, community_id=community_id, top=top, candidates=top)
