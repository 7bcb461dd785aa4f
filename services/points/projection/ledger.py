"""The ledger in PostgreSQL: accounts, append-only postings, earnings (for 好人榜).

Write path for one decision, inside the caller's transaction:

1. :func:`lock` — advisory transaction locks on the keys of everything the decision may read
   or create (``acct:<id>``, ``holder:<kind>:<holder>``), taken in the order of their 64-bit
   hash, so two transactions never wait on each other in a cycle; then the account rows
   themselves ``FOR UPDATE`` in id order (:func:`load_accounts`).
2. the pure domain decides;
3. :func:`apply` — inserts opened accounts, inserts postings (a trigger moves the balances,
   the floor CHECK guards them), records earnings, and stores the evolved account states;
   it verifies that each stored balance equals the state's balance.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

import asyncpg

from schemas.points import AccountKind, AccountOpened, TransferPosted
from services.points.domain import Account, earned_from, evolve_accounts
from services.points.domain.clock import month_of, year_of


class LedgerMismatch(RuntimeError):
    """A stored balance disagrees with the domain state: a fault, never a refusal."""


def account_key(account_id: str) -> str:
    return f"acct:{account_id}"


def holder_key(kind: AccountKind | str, holder_id: str) -> str:
    return f"holder:{AccountKind(kind).value}:{holder_id}"


async def lock(conn: asyncpg.Connection, keys: Iterable[str]) -> None:
    """Advisory transaction locks on ``keys``, in hash order (no deadlock between lockers)."""
    keys = sorted(set(keys))
    if not keys:
        return
    await conn.execute(
        """SELECT pg_advisory_xact_lock(h) FROM (
             SELECT DISTINCT hashtextextended('points:' || k, 0) AS h FROM unnest($1::text[]) AS k
           ) t ORDER BY h""",
        keys)


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


async def holder_account(conn: asyncpg.Connection, kind: AccountKind, holder_id: str, *,
                         for_update: bool = True) -> Account | None:
    """The account of ``kind`` that ``holder_id`` holds (one per holder and kind)."""
    row = await conn.fetchrow(
        "SELECT account_id, state FROM accounts WHERE kind = $1 AND holder_id = $2"
        + (" FOR UPDATE" if for_update else ""), AccountKind(kind).value, holder_id)
    return _account(row) if row else None


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
