"""The ledger in PostgreSQL: accounts, append-only postings, earnings (for 好人榜).

Accounts stay relational: a posting moves the balances of its two accounts in the same
transaction (a trigger), so an account's row is its balance's one truth. Write path for one
decision, inside the caller's transaction:

1. :func:`lock_accounts` — the account rows the decision reads, row-locked ``FOR UPDATE`` in
   one query in id order; for an account the decision may create (a holder without one, an
   account id to open), the kit's advisory locks on its keys (:func:`opening_keys`) first;
2. the pure domain decides;
3. :func:`apply` — inserts opened accounts, inserts postings (a trigger moves the balances,
   the floor CHECK guards them), records earnings, and stores the evolved account states;
   it verifies that each stored balance equals the state's balance.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

import asyncpg

from schemas.points import AccountKind, AccountOpened, TransferPosted
from services.kit.locks import advisory_locks
from services.points.domain import Account, account_id_for, earned_from, evolve_accounts
from services.points.domain.clock import month_of, year_of


class LedgerMismatch(RuntimeError):
    """A stored balance disagrees with the domain state: a fault, never a refusal."""


def account_key(account_id: str) -> str:
    return f"points:acct:{account_id}"


def holder_key(kind: AccountKind | str, holder_id: str) -> str:
    return f"points:holder:{AccountKind(kind).value}:{holder_id}"


def opening_keys(kind: AccountKind, holder_id: str, account_id: str | None = None) -> tuple[str, str]:
    """The advisory-lock keys that serialise opening an account of ``kind`` for ``holder_id``
    (one per holder and kind) under ``account_id`` (default: the ledger's own id for it)."""
    return holder_key(kind, holder_id), account_key(account_id or account_id_for(kind, holder_id))


Holder = tuple[AccountKind, str]


@dataclass(frozen=True)
class LockedAccounts:
    """Accounts row-locked by a unit of work: their states by id, and which of them the
    holders asked for hold (absent: the holder has no account of that kind)."""

    by_id: dict[str, Account]
    by_holder: dict[Holder, str]

    def get(self, account_id: str) -> Account | None:
        return self.by_id.get(account_id)

    def held(self, kind: AccountKind, holder_id: str) -> Account | None:
        account_id = self.by_holder.get((kind, holder_id))
        return None if account_id is None else self.by_id.get(account_id)


async def lock_accounts(conn: asyncpg.Connection, *, ids: Iterable[str] = (), holders: Iterable[Holder] = (),
                        keys: Iterable[str] = ()) -> LockedAccounts:
    """Row-lock and read the accounts ``ids`` and those the ``holders`` hold, in one query in
    id order. The advisory locks of ``keys`` and of the opening keys of each holder that has
    no account yet are taken first (one statement, the kit's order), and those holders are
    looked up again: two transactions never open the same account, and advisory locks are
    only taken where an account may be created."""
    wanted = sorted({(AccountKind(kind), holder) for kind, holder in holders})
    found = await holder_account_ids(conn, wanted)
    missing = [h for h in wanted if h not in found]
    keys = [*keys, *(k for kind, holder in missing for k in opening_keys(kind, holder))]
    if keys:
        await advisory_locks(conn, keys)
    if missing:
        found.update(await holder_account_ids(conn, missing))
    return LockedAccounts(await load_accounts(conn, [*ids, *found.values()]), found)


def _account(row) -> Account:
    return Account.model_validate(row["state"])


async def load_accounts(conn: asyncpg.Connection, ids: Iterable[str], *, for_update: bool = True) -> dict[str, Account]:
    """Accounts by id (missing ids are absent), row-locked in id order."""
    ids = sorted({i for i in ids if i})
    if not ids:
        return {}
    rows = await conn.fetch(
        "SELECT account_id, state FROM accounts WHERE account_id = ANY($1::text[]) ORDER BY account_id"
        + (" FOR UPDATE" if for_update else ""), ids)
    return {r["account_id"]: _account(r) for r in rows}


async def holder_account_ids(conn: asyncpg.Connection, holders: Sequence[Holder]) -> dict[Holder, str]:
    """The ids of the accounts that holders hold, by (kind, holder id) — one query, no lock
    (an account's kind and holder never change)."""
    if not holders:
        return {}
    rows = await conn.fetch(
        """SELECT a.kind, a.holder_id, a.account_id FROM accounts a
           JOIN unnest($1::text[], $2::text[]) AS h(kind, holder_id) USING (kind, holder_id)""",
        [AccountKind(k).value for k, _ in holders], [h for _, h in holders])
    return {(AccountKind(r["kind"]), r["holder_id"]): r["account_id"] for r in rows}


async def posting(conn: asyncpg.Connection, transfer_id: str) -> TransferPosted | None:
    """The posting stored under ``transfer_id`` (as published), if any."""
    row = await conn.fetchrow("SELECT event FROM postings WHERE transfer_id = $1", transfer_id)
    return TransferPosted.model_validate(row["event"]) if row else None


def _oldest_lot(account: Account) -> datetime | None:
    lots = [lot.earned_at for lot in account.lots if lot.remaining > 0]
    return min(lots) if lots else None


async def apply(conn: asyncpg.Connection, accounts: dict[str, Account], events: Sequence[object]) -> dict[str, Account]:
    """Store what ``events`` (openings and postings) do to ``accounts`` (the locked states the
    decision saw); returns the evolved states. Other events in the list are ignored."""
    opened = [e for e in events if isinstance(e, AccountOpened) and e.account_id not in accounts]
    postings = [e for e in events if isinstance(e, TransferPosted)]
    if not opened and not postings:
        return accounts
    after = evolve_accounts(accounts, [e for e in events if isinstance(e, (AccountOpened, TransferPosted))])
    for e in opened:
        await conn.execute(
            """INSERT INTO accounts (account_id, kind, holder_id, community_id, balance, state, opened_at)
               VALUES ($1, $2, $3, $4, 0, $5::jsonb, $6)""",
            e.account_id, e.kind.value, e.holder_id, e.community_id,
            Account(account_id=e.account_id, holder_id=e.holder_id, kind=e.kind, community_id=e.community_id,
                    opened_at=e.opened_at).model_dump(mode="json"), e.opened_at)
    for p in postings:
        await conn.execute(
            """INSERT INTO postings (transfer_id, debit_account, credit_account, amount, kind, rule, category,
                                     community_id, source, source_event_id, operator_id, reason, lot_id,
                                     account_id, posted_at, event)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb)""",
            p.transfer_id, p.debit_account, p.credit_account, p.amount, p.reason.value, p.rule, p.category,
            p.community_id, p.source, p.source_event_id, p.operator_id, p.detail, p.lot_id, p.account_id,
            p.posted_at, p.model_dump(mode="json", exclude_none=True))
        earned = earned_from(p)
        if earned is not None:
            await conn.execute(
                """INSERT INTO earnings (transfer_id, account_id, amount, community_id, earned_at, month, year)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                p.transfer_id, earned.account_id, earned.amount, earned.community_id, earned.earned_at,
                month_of(earned.earned_at), year_of(earned.earned_at))
    changed = {e.account_id for e in opened} | {a for p in postings for a in (p.debit_account, p.credit_account)}
    ids = sorted(changed)
    rows = await conn.fetch(
        """UPDATE accounts AS a SET state = t.state::jsonb, oldest_lot_at = t.oldest, updated_at = now()
           FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS t(id, state, oldest)
           WHERE a.account_id = t.id RETURNING a.account_id, a.balance""",
        ids, [after[i].model_dump_json() for i in ids], [_oldest_lot(after[i]) for i in ids])
    stored = {r["account_id"]: r["balance"] for r in rows}
    for i in ids:
        if stored.get(i) != after[i].balance:
            raise LedgerMismatch(f"account {i}: stored balance {stored.get(i)} but the ledger state says {after[i].balance}")
    return after


# ---------------------------------------------------------------------------------------
# expiry scan
# ---------------------------------------------------------------------------------------


async def expiry_candidates(conn: asyncpg.Connection, cutoff: datetime, limit: int) -> list[str]:
    """Resident accounts holding a lot earned at or before ``cutoff`` (may be due), oldest first."""
    rows = await conn.fetch(
        """SELECT account_id FROM accounts
           WHERE kind = 'resident' AND oldest_lot_at IS NOT NULL AND oldest_lot_at <= $1
           ORDER BY oldest_lot_at, account_id LIMIT $2""", cutoff, limit)
    return [r["account_id"] for r in rows]


async def origin_accounts(conn: asyncpg.Connection, ids: Sequence[str]) -> set[str]:
    """Accounts the lots of ``ids`` came from (where expired points go back)."""
    rows = await conn.fetch(
        """SELECT DISTINCT lot->>'origin_account' AS origin
           FROM accounts, jsonb_array_elements(state->'lots') AS lot WHERE account_id = ANY($1::text[])""", list(ids))
    return {r["origin"] for r in rows if r["origin"]}
