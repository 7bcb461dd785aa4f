"""Domain metrics of the points service (prometheus_client). Points are counted in points;
no ids as labels — category and reason are bounded sets."""
from __future__ import annotations

from typing import Iterable

from prometheus_client import Counter, Gauge

from schemas.points import TransferKind, TransferPosted, TransferRefused

AWARDED = Counter("points_awarded_points", "Points awarded to residents, by category of what earned them", ["category"])
REDEEMED = Counter("points_redeemed_points", "Points residents redeemed at merchants")
EXPIRED = Counter("points_expired_points", "Points that expired (older than the validity)")
ADJUSTED = Counter("points_adjusted_points", "Points moved by operators' corrections")
REFUSED = Counter("points_transfers_refused", "Transfers refused, by reason", ["reason"])
ACCOUNTS = Gauge("points_accounts", "Accounts of the ledger, by kind", ["kind"])

_KINDS = ("resident", "merchant", "issuer")


def count(events: Iterable[object]) -> None:
    """Count the postings and refusals among ``events`` (call once per decision)."""
    for e in events:
        if isinstance(e, TransferPosted):
            if e.reason is TransferKind.award:
                AWARDED.labels(e.category or "other").inc(e.amount)
            elif e.reason is TransferKind.redemption:
                REDEEMED.inc(e.amount)
            elif e.reason is TransferKind.expiry:
                EXPIRED.inc(e.amount)
            elif e.reason is TransferKind.adjustment:
                ADJUSTED.inc(e.amount)
        elif isinstance(e, TransferRefused):
            REFUSED.labels(e.reason).inc()


def set_accounts(by_kind: dict[str, int]) -> None:
    for kind in _KINDS:
        ACCOUNTS.labels(kind).set(by_kind.get(kind, 0))
