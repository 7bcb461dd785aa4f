"""The ledger in PostgreSQL: accounts, append-only postings, earnings (for 好人榜).

Accounts stay relational: the postings move the balances of their accounts in the same
transaction (a statement trigger), so an account's row is its balance's one truth. A handler
works through the unit of work's :class:`Ledger` (``Ledger.of(uow)``):

1. :meth:`Ledger.lock` — the account rows the decision reads, row-locked ``FOR UPDATE`` in one
   query in id order, once per transaction; for an account the decision may create (a holder
   without one, an account id to open), the kit's advisory locks on its keys
   (:func:`opening_keys`) first. Once locked, an account's state is kept in memory: the row
   cannot change under the transaction, and every change to it goes through the ledger;
2. the pure domain decides;
3. :meth:`Ledger.apply` — the evolved states, and the openings, postings and earnings to write,
   kept in memory until the unit of work flushes. Then each table is written in one statement
   (the postings' trigger moves each balance once), and each stored balance is checked against
   the state's. A message undone by its savepoint takes its changes with it.

A batch of a thousand awards paid by one community's issuer so writes the issuer's row twice,
not two thousand times: within one transaction every update of a row leaves a version that
each later one walks past. :func:`apply` writes at once (the expiry timer, tools and tests).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

import asyncpg
import orjson

from schemas.points import AccountKind, AccountOpened, TransferPosted
from services.kit.locks import advisory_locks
from services.kit.sql import bulk
from services.kit.uow import UnitOfWork
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
    """Accounts by id (missing ids are absent), row-locked in id order.

    The ids go as an array (``= ANY``), whose length the planner sees: taken from a JSON list
    they counted as a hundred, and a handler's lock of one account read every account (a hash
    join over the table, 1 to 2 ms in a district of a thousand accounts)."""
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
           JOIN jsonb_array_elements($1::text::jsonb) AS t(h) ON (a.kind, a.holder_id) = (h->>0, h->>1)""",
        bulk([(AccountKind(k).value, h) for k, h in holders]))
    return {(AccountKind(r["kind"]), r["holder_id"]): r["account_id"] for r in rows}


async def postings(conn: asyncpg.Connection, transfer_ids: Sequence[str]) -> dict[str, TransferPosted]:
    """The postings stored under ``transfer_ids`` (as published), by transfer id."""
    rows = await conn.fetch("SELECT transfer_id, event FROM postings "
                            "WHERE transfer_id IN (SELECT jsonb_array_elements_text($1::text::jsonb))",
                            bulk(list(transfer_ids)))
    return {r["transfer_id"]: TransferPosted.model_validate(r["event"]) for r in rows}


async def posting(conn: asyncpg.Connection, transfer_id: str) -> TransferPosted | None:
    """The posting stored under ``transfer_id`` (as published), if any."""
    row = await conn.fetchrow("SELECT event FROM postings WHERE transfer_id = $1", transfer_id)
    return TransferPosted.model_validate(row["event"]) if row else None


def _oldest_lot(account: Account) -> datetime | None:
    lots = [lot.earned_at for lot in account.lots if lot.remaining > 0]
    return min(lots) if lots else None


async def apply(conn: asyncpg.Connection, accounts: dict[str, Account], events: Sequence[object]) -> dict[str, Account]:
    """Store at once what ``events`` (openings and postings) do to ``accounts`` (the locked
    states the decision saw); returns the evolved states. Other events in the list are ignored."""
    opened = [e for e in events if isinstance(e, AccountOpened) and e.account_id not in accounts]
    postings = [e for e in events if isinstance(e, TransferPosted)]
    if not opened and not postings:
        return accounts
    after = evolve_accounts(accounts, [e for e in events if isinstance(e, (AccountOpened, TransferPosted))])
    changed = {e.account_id for e in opened} | {a for p in postings for a in (p.debit_account, p.credit_account)}
    await write(conn, opened, postings, {i: after[i] for i in changed})
    return after


_POSTING_COLUMNS = (
    ("transfer_id", "text"), ("debit_account", "text"), ("credit_account", "text"), ("amount", "bigint"),
    ("kind", "text"), ("rule", "text"), ("category", "text"), ("community_id", "text"), ("source", "text"),
    ("source_event_id", "text"), ("operator_id", "text"), ("reason", "text"), ("lot_id", "text"),
    ("account_id", "text"), ("posted_at", "timestamptz"), ("event", "jsonb"))


def _insert(table: str, columns: Sequence[tuple[str, str]]) -> str:
    """``INSERT INTO table (...) SELECT ... FROM jsonb_array_elements($1::text::jsonb)``: many
    rows, one statement, one parameter (each row a JSON array of its columns' values:
    :func:`~services.kit.sql.bulk`); a JSON null is an SQL NULL, a jsonb column takes its value
    as it is."""
    values = ", ".join(f"nullif(r->{i}, 'null')" if t == "jsonb" else f"(r->>{i})::{t}"
                       for i, (_, t) in enumerate(columns))
    return (f"INSERT INTO {table} ({', '.join(c for c, _ in columns)}) "
            f"SELECT {values} FROM jsonb_array_elements($1::text::jsonb) AS t(r)")


_INSERT_ACCOUNTS = _insert("accounts", (("account_id", "text"), ("kind", "text"), ("holder_id", "text"),
                                        ("community_id", "text"), ("balance", "bigint"), ("state", "jsonb"),
                                        ("opened_at", "timestamptz")))
_INSERT_POSTINGS = _insert("postings", _POSTING_COLUMNS)
_INSERT_EARNINGS = _insert("earnings", (("transfer_id", "text"), ("account_id", "text"), ("amount", "bigint"),
                                        ("community_id", "text"), ("earned_at", "timestamptz"), ("month", "text"),
                                        ("year", "text")))


async def write(conn: asyncpg.Connection, opened: Sequence[AccountOpened], postings: Sequence[TransferPosted],
                states: dict[str, Account]) -> None:
    """Write openings, postings (their earnings beside) and the accounts' states, one statement
    a table, in that order; then check that every stored balance is its state's."""
    if opened:
        rows = [(e.account_id, e.kind.value, e.holder_id, e.community_id, 0,
                 Account(account_id=e.account_id, holder_id=e.holder_id, kind=e.kind, community_id=e.community_id,
                         opened_at=e.opened_at).model_dump(mode="json"), e.opened_at) for e in opened]
        await conn.execute(_INSERT_ACCOUNTS, bulk(rows))
    if postings:
        rows = [(p.transfer_id, p.debit_account, p.credit_account, p.amount, p.reason.value, p.rule, p.category,
                 p.community_id, p.source, p.source_event_id, p.operator_id, p.detail, p.lot_id, p.account_id,
                 p.posted_at, p.model_dump(mode="json", exclude_none=True)) for p in postings]
        await conn.execute(_INSERT_POSTINGS, bulk(rows))
        earned = [(p.transfer_id, e.account_id, e.amount, e.community_id, e.earned_at, month_of(e.earned_at),
                   year_of(e.earned_at)) for p in postings if (e := earned_from(p)) is not None]
        if earned:
            await conn.execute(_INSERT_EARNINGS, bulk(earned))
    if not states:
        return
    ids = sorted(states)
    rows = await conn.fetch(
        """UPDATE accounts AS a SET state = t.r->1, oldest_lot_at = (t.r->>2)::timestamptz, updated_at = now()
           FROM jsonb_array_elements($1::text::jsonb) AS t(r)
           WHERE a.account_id = t.r->>0 RETURNING a.account_id, a.balance""",
        bulk([(i, orjson.Fragment(states[i].model_dump_json()), _oldest_lot(states[i])) for i in ids]))
    stored = {r["account_id"]: r["balance"] for r in rows}
    for i in ids:
        if stored.get(i) != states[i].balance:
            raise LedgerMismatch(f"account {i}: stored balance {stored.get(i)} but the ledger state says {states[i].balance}")


_MISSING: Any = object()


class Ledger:
    """The ledger as one unit of work sees it: the accounts it has locked (their states, kept
    in memory from then on), the holders whose accounts it knows, the advisory keys it holds,
    and what it has yet to write. See the module docstring."""

    def __init__(self, uow: UnitOfWork):
        self._uow = uow
        self._accounts: dict[str, Account] = {}
        self._holders: dict[Holder, str] = {}
        self._keys: set[str] = set()
        self._absent: set[str] = set()  # ids read and not found, whose account key this transaction holds
        self._opened: list[AccountOpened] = []
        self._posted: dict[str, TransferPosted] = {}  # by transfer id, in the order they were applied
        self._stored: dict[str, TransferPosted | None] = {}  # postings looked up ahead, as stored (None: none)
        self._dirty: set[str] = set()
        self._written = (0, 0)  # how many of _opened and _posted are written
        # what to undo, newest last: (a list, None, None) for an append; (a dict or set, key, the
        # value before or _MISSING); or ("flush", written before, dirty before)
        self._journal: list[tuple] = []

    @classmethod
    def of(cls, uow: UnitOfWork) -> "Ledger":
        return uow.attach(cls, lambda: cls(uow))

    # -- reads ----------------------------------------------------------------------------
    async def lock(self, *, ids: Iterable[str] = (), holders: Iterable[Holder] = (),
                   keys: Iterable[str] = ()) -> LockedAccounts:
        """:func:`lock_accounts`, for what this unit of work has not locked yet (a handler
        asking for what its batch step locked costs no query)."""
        conn = self._uow.conn
        keys = tuple(keys)
        wanted = sorted({(kind if type(kind) is AccountKind else AccountKind(kind), holder)
                         for kind, holder in holders})
        # a holder whose opening keys this transaction holds has no account but one it opens
        unknown = [h for h in wanted if h not in self._holders
                   and not all(k in self._keys for k in opening_keys(*h))]
        if unknown or not self._keys.issuperset(keys):
            found = await holder_account_ids(conn, unknown)
            missing = [h for h in unknown if h not in found]
            keys = [k for k in dict.fromkeys([*keys, *(k for kind, holder in missing
                                                        for k in opening_keys(kind, holder))]) if k not in self._keys]
            if keys:
                await advisory_locks(conn, keys)
                for k in keys:
                    self._remember(self._keys, k, True)
            if missing:
                found.update(await holder_account_ids(conn, missing))
            for h, account_id in found.items():
                self._remember(self._holders, h, account_id)
        ids = {i for i in ids if i}
        by_holder = {h: self._holders[h] for h in wanted if h in self._holders}
        ids.update(by_holder.values())
        unread = [i for i in ids if i not in self._accounts and i not in self._absent]
        if unread:
            loaded = await load_accounts(conn, unread)
            for i in unread:
                if i in loaded:
                    self._remember(self._accounts, i, loaded[i])
                elif account_key(i) in self._keys:  # nobody else can open it now: absent until opened here
                    self._remember(self._absent, i, True)
        accounts = self._accounts
        return LockedAccounts({i: accounts[i] for i in sorted(ids) if i in accounts}, by_holder)

    async def peek(self, account_id: str) -> Account | None:
        """An account as this unit of work sees it, without locking it."""
        if account_id in self._accounts:
            return self._accounts[account_id]
        return (await load_accounts(self._uow.conn, [account_id], for_update=False)).get(account_id)

    async def know_postings(self, transfer_ids: Iterable[str]) -> None:
        """Look up at once the stored postings of ``transfer_ids`` that :meth:`posting` will be
        asked for (a batch step: one query instead of one per message)."""
        wanted = sorted({t for t in transfer_ids if t not in self._stored})
        if not wanted:
            return
        found = await postings(self._uow.conn, wanted)
        for t in wanted:
            self._stored[t] = found.get(t)

    async def posting(self, transfer_id: str) -> TransferPosted | None:
        """:func:`posting`, this unit of work's own postings (written or not) looked up first,
        then those looked up ahead."""
        mine = self._posted.get(transfer_id)
        if mine is not None:
            return mine
        if transfer_id in self._stored:
            return self._stored[transfer_id]
        return await posting(self._uow.conn, transfer_id)

    # -- writes ---------------------------------------------------------------------------
    def apply(self, accounts: dict[str, Account], events: Sequence[object]) -> None:
        """Take what ``events`` (openings and postings) do to ``accounts`` (states this unit of
        work locked, or none for an account it opens), to write when it flushes."""
        opened = [e for e in events if isinstance(e, AccountOpened) and e.account_id not in accounts]
        postings = [e for e in events if isinstance(e, TransferPosted)]
        if not opened and not postings:
            return
        for i in accounts:
            if self._accounts.get(i) is not accounts[i]:
                raise LedgerMismatch(f"account {i}: a decision saw a state that is not the ledger's latest")
        after = evolve_accounts(accounts, [e for e in events if isinstance(e, (AccountOpened, TransferPosted))])
        for e in opened:
            self._journal.append((self._opened, None, None))
            self._opened.append(e)
            self._remember(self._absent, e.account_id, _MISSING)
            self._remember(self._holders, (e.kind, e.holder_id), e.account_id)
        for p in postings:
            self._remember(self._posted, p.transfer_id, p)
        for i in {e.account_id for e in opened} | {a for p in postings for a in (p.debit_account, p.credit_account)}:
            self._remember(self._accounts, i, after[i])
            self._remember(self._dirty, i, True)

    def forget(self) -> None:
        """Forget every account, holder and posting known (after an erasure has renamed accounts
        under the ledger): the next :meth:`lock` and :meth:`posting` read them again. Call it
        after a flush (nothing unwritten)."""
        assert not self._dirty and self._written == (len(self._opened), len(self._posted)), "flush first"
        for where in (self._accounts, self._holders, self._absent, self._posted):
            for key in list(where):
                self._remember(where, key, _MISSING)
        self._stored.clear()  # as stored before the erasure
        self._journal.append(("flush", self._written, set()))  # undone: what was written is again
        self._written = (len(self._opened), 0)

    def _remember(self, where: dict | set, key: Any, value: Any) -> None:
        """Set ``where[key]`` (for a set: add, or with _MISSING remove), journalled."""
        if isinstance(where, set):
            self._journal.append((where, key, True if key in where else _MISSING))
            if value is _MISSING:
                where.discard(key)
            else:
                where.add(key)
            return
        self._journal.append((where, key, where.get(key, _MISSING)))
        if value is _MISSING:
            where.pop(key, None)
        else:
            where[key] = value

    # -- participant ----------------------------------------------------------------------
    def mark(self) -> int:
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        while len(self._journal) > mark:
            where, key, before = self._journal.pop()
            if where == "flush":  # a flush undone: its rows are unwritten again
                self._written = key
                self._dirty |= before
            elif isinstance(where, list):
                where.pop()
            elif isinstance(where, set):
                if before is _MISSING:
                    where.discard(key)
                else:
                    where.add(key)
            elif before is _MISSING:
                where.pop(key, None)
            else:
                where[key] = before

    async def flush(self, uow: UnitOfWork) -> None:
        opened, postings = self._opened[self._written[0]:], list(self._posted.values())[self._written[1]:]
        if not (opened or postings or self._dirty):
            return
        await write(uow.conn, opened, postings, {i: self._accounts[i] for i in self._dirty})
        self._journal.append(("flush", self._written, set(self._dirty)))
        self._written = (len(self._opened), len(self._posted))
        self._dirty.clear()




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
