"""The arithmetic of the incremental ledger check, as the database keeps it (migration 007).

Two sides of the ledger are summed apart, modulo the prime :data:`P` (2^61 - 1):

- the postings: their count and amount, Σ :func:`digest` of each posting, and the moves
  Σ (w(credit) - w(debit))·amount, w being :func:`weight` of the account id;
- the accounts: their count, Σ balance, Σ w·balance and Σ w·(the balance the aggregate state holds).

When each stored balance is the sum of its account's postings, Σ w·balance equals the moves (the
moves sum, account by account, to w·balance), and so does the state's; and Σ balance is 0. A
balance changed without its posting, a posting written without moving balances, or a state
that disagrees leaves them apart (but for a chance of about 2^-61). The digest side is what the
full check recomputes from every posting: a posting altered in place changes it.

Every statement that writes postings or accounts appends its :class:`Sums` to ``ledger_deltas``;
a timer folds them into ``ledger_totals``. The check reads the totals plus the deltas not yet
folded (:meth:`Sums.plus`), so it costs the same whatever the history.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone

P = 2**61 - 1
"""The modulus of the weighted sums (a Mersenne prime)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def weight(key: str) -> int:
    """A 60-bit weight of ``key``: the first 15 hex digits of its MD5 (``ledger_weight`` in SQL)."""
    return int(hashlib.md5(key.encode()).hexdigest(), 16) >> (128 - 60)


def digest(transfer_id: str, debit: str, credit: str, amount: int, kind: str, posted_at: datetime) -> int:
    """The weight of a posting's content (``ledger_digest`` in SQL): its id, accounts, amount,
    kind and time (microseconds since 1970)."""
    micros = (posted_at - _EPOCH) // timedelta(microseconds=1)
    return weight(f"{transfer_id}|{debit}|{credit}|{amount}|{kind}|{micros}")


@dataclass(frozen=True)
class Sums:
    """Totals of the two sides (or a delta of them); the weighted ones modulo :data:`P`."""

    postings: int = 0
    amount: int = 0
    digests: int = 0
    moves: int = 0
    accounts: int = 0
    balance_total: int = 0
    balances: int = 0
    states: int = 0

    @classmethod
    def of_postings(cls, postings) -> "Sums":
        """The postings side of ``(transfer_id, debit, credit, amount, kind, posted_at)`` rows."""
        rows = list(postings)
        return cls(postings=len(rows), amount=sum(r[3] for r in rows),
                   digests=sum(digest(*r) for r in rows) % P,
                   moves=sum((weight(r[2]) - weight(r[1])) * r[3] for r in rows) % P)

    @classmethod
    def of_accounts(cls, accounts) -> "Sums":
        """The accounts side of ``(account_id, balance, state_balance)`` rows."""
        rows = list(accounts)
        return cls(accounts=len(rows), balance_total=sum(r[1] for r in rows),
                   balances=sum(weight(r[0]) * r[1] for r in rows) % P,
                   states=sum(weight(r[0]) * r[2] for r in rows) % P)

    def plus(self, other: "Sums") -> "Sums":
        """These totals with ``other`` (deltas, or the other side) added."""
        modular = {"digests", "moves", "balances", "states"}
        return Sums(**{f.name: (getattr(self, f.name) + getattr(other, f.name)) % P if f.name in modular
                       else getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def problems(self) -> list[str]:
        """What disagrees: empty for a sound ledger."""
        out = []
        if self.balance_total != 0:
            out.append(f"the balances sum to {self.balance_total}, not 0")
        if self.balances != self.moves:
            out.append("the stored balances are not the sums of the postings")
        if self.states != self.moves:
            out.append("the balances of the account states are not the sums of the postings")
        return out
