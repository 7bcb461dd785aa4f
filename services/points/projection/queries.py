"""Read side of the points service: balances, statements, deeds, 好人榜, redemptions, the check."""
from __future__ import annotations

from typing import Any

import asyncpg

from services.kit.identity import Principal
from services.kit.policy import sees_district
from services.kit.sql import Keyset, Paged, Where
from services.points.domain.ledgersums import P, Sums

OFFICERS = frozenset({"community_officer", "street_officer"})


def may_read(principal: Principal | None, *, account_id: str, community_id: str | None) -> bool:
    """Whether ``principal`` reads the account ``account_id`` (of ``community_id``) and what is
    about it (its statement, deeds, redemptions): the district roles everything; a resident only
    ``resident:<sub>``, a merchant only ``merchant:<sub>``; a community or street officer the
    accounts of the communities of their scope."""
    if principal is None:
        return False
    if sees_district(principal):
        return True
    if principal.has("resident") and account_id == f"resident:{principal.sub}":
        return True
    if principal.has("merchant") and account_id == f"merchant:{principal.sub}":
        return True
    return bool(principal.roles & OFFICERS) and community_id is not None and principal.scope.covers(community_id)


_POSTING_FIELDS = ("transfer_id", "kind", "debit_account", "credit_account", "amount", "rule", "category",
                   "community_id", "source_event_id", "operator_id", "reason", "lot_id", "posted_at", "recorded_at")
"""What a statement or a list of redemptions shows of a posting, those that are set."""


def _posting(row, account_id: str | None = None) -> dict[str, Any]:
    """A posting as answered: its fields that are set (the times as they are: the answer's JSON
    writes them in ISO 8601), and with ``account_id`` the change it made to that account."""
    out = {k: v for k in _POSTING_FIELDS if (v := row[k]) is not None}
    if account_id is not None:
        out["change"] = row["amount"] if row["credit_account"] == account_id else -row["amount"]
    return out


async def account(conn: asyncpg.Connection, account_id: str, principal: Principal | None = None, *,
                  everyone: bool = False) -> dict[str, Any] | None:
    """An account as ``principal`` may read it (None: absent, or not theirs to read);
    ``everyone``: unchecked (the service's own use)."""
    row = await conn.fetchrow(
        """SELECT account_id, kind, holder_id, community_id, balance, opened_at, state FROM accounts
           WHERE account_id = $1""", account_id)
    if row is None:
        return None
    if not everyone and not may_read(principal, account_id=row["account_id"], community_id=row["community_id"]):
        return None
    state = row["state"]
    return {
        "account_id": row["account_id"], "kind": row["kind"], "holder_id": row["holder_id"],
        "community_id": row["community_id"], "balance": row["balance"],
        "opened_at": row["opened_at"].isoformat() if row["opened_at"] else None,
        "postings": state.get("postings", 0),
        "lots": [{"lot_id": lot["lot_id"], "earned_at": lot["earned_at"], "remaining": lot["remaining"]}
                 for lot in state.get("lots", [])],
    }


_POSTING_COLUMNS = ("seq, transfer_id, kind, debit_account, credit_account, amount, rule, category, community_id, "
                    "source_event_id, operator_id, reason, lot_id, posted_at, recorded_at")
"""What a list shows of a posting: all but the published event (a JSON document per row,
decoded for nothing)."""

POSTING_ORDER = Keyset(("seq",), (int,), descending=True)
"""Postings newest first (``seq``: the indexes ``postings_debit``, ``postings_credit``, ``postings_redemptions``)."""


async def statement(conn: asyncpg.Connection, account_id: str, principal: Principal | None, limit: int,
                    offset: int = 0, cursor: str | None = None) -> dict[str, Any] | None:
    """Postings of an account, newest first, after ``cursor``, with the signed change for the
    account; None when there is no such account or it is not ``principal``'s to read.

    One statement reads the account (to check the reader), its count of postings (kept in its
    state with its balance, so exact whatever the history) and the page: the debit side and the
    credit side are each read down their own index and merged, so a page costs the same for an
    account with millions of postings (the issuer's)."""
    args: list[Any] = [account_id, limit + offset + 1]
    # the condition is left out rather than made optional: a generic plan keeps it an index bound
    after = f"AND {POSTING_ORDER.after(POSTING_ORDER.decode_or_422(cursor), args)}" if cursor is not None else ""
    rows = await conn.fetch(
        f"""SELECT a.community_id AS kit_community, coalesce((a.state->>'postings')::bigint, 0) AS kit_total, p.*
            FROM accounts a LEFT JOIN LATERAL (SELECT * FROM (
              (SELECT {_POSTING_COLUMNS} FROM postings WHERE debit_account = $1 {after} ORDER BY seq DESC LIMIT $2)
              UNION ALL
              (SELECT {_POSTING_COLUMNS} FROM postings WHERE credit_account = $1 {after} ORDER BY seq DESC LIMIT $2)) u
              ORDER BY seq DESC LIMIT $2) p ON true
            WHERE a.account_id = $1
            ORDER BY p.seq DESC""", *args)
    if not rows or not may_read(principal, account_id=account_id, community_id=rows[0]["kit_community"]):
        return None
    total = rows[0]["kit_total"]
    rows = rows[offset:] if rows[0]["seq"] is not None else []
    paged = Paged([_posting(r, account_id) for r in rows[:limit]], total, True,
                  POSTING_ORDER.encode(rows[limit - 1]) if len(rows) > limit else None)
    return paged.answer(limit, offset, account_id=account_id)


async def deed(conn: asyncpg.Connection, deed_id: str, principal: Principal | None = None, *,
               everyone: bool = False) -> dict[str, Any] | None:
    """A deed as ``principal`` may read it: its resident, the officers of its community, the district roles."""
    row = await conn.fetchrow("SELECT account_id, community_id, state FROM deeds WHERE deed_id = $1", deed_id)
    if row is None:
        return None
    if not everyone and not may_read(principal, account_id=row["account_id"], community_id=row["community_id"]):
        return None
    return {k: v for k, v in row["state"].items() if v is not None}


RANKING_ORDER = Keyset(("less", "account_id"), (int, str), exprs=("-points", "account_id"))
"""好人榜: most points first (``less`` = -points, one direction for the keyset), ties by account id
(the index ``earned_totals_ranked``)."""


async def rankings(conn: asyncpg.Connection, *, period: str, community_id: str | None, candidates: int,
                   limit: int, offset: int = 0, cursor: str | None = None) -> dict[str, Any]:
    """好人榜: earned points per resident in ``period`` (YYYY-MM or YYYY), of one community or the
    district, one page after ``cursor``; ties share a rank; in a yearly ranking ranks ≤
    ``candidates`` are 道德模范 candidates.

    The totals are kept as awards are earned (``earned_totals``, with the size of each ranking
    in ``earned_ranked``): a page is one index range of the period's totals in rank order, and
    its first rank counts the totals above it, so the first pages cost the same however many
    accounts earned in the period and however long the history."""
    args: list[Any] = [period, community_id or ""]
    after = f"AND {RANKING_ORDER.after(RANKING_ORDER.decode_or_422(cursor), args)}" if cursor is not None else ""
    size = "SELECT accounts FROM earned_ranked WHERE period = $1 AND scope = $2"
    rows = await conn.fetch(
        f"""SELECT t.account_id, t.points, -t.points AS less, a.holder_id, ({size}) AS total
            FROM (SELECT account_id, points FROM earned_totals
                  WHERE period = $1 AND scope = $2 AND points > 0 {after}
                  ORDER BY {RANKING_ORDER.order} LIMIT {int(limit) + 1} OFFSET {int(offset)}) t
            JOIN accounts a USING (account_id)
            ORDER BY {RANKING_ORDER.order}""", *args)
    total = rows[0]["total"] if rows else await conn.fetchval(size, args[0], args[1]) or 0
    before = more = 0  # the totals before the page's first row, and those of them with more points
    if rows and (cursor is not None or offset):
        first = rows[0]
        before, more = await conn.fetchrow(
            """SELECT count(*), count(*) FILTER (WHERE -points < $3) FROM earned_totals
               WHERE period = $1 AND scope = $2 AND points > 0 AND (-points, account_id) < ($3, $4)""",
            args[0], args[1], first["less"], first["account_id"])
    yearly = len(period) == 4
    items, rank, previous = [], more + 1, None
    for position, r in enumerate(rows[:limit], start=before + 1):
        if previous is not None and r["points"] != previous:
            rank = position
        previous = r["points"]
        items.append({"rank": rank, "account_id": r["account_id"], "holder_id": r["holder_id"], "points": r["points"],
                      "candidate": yearly and rank <= candidates})
    return {
        "period": period, "scope": "community" if community_id else "district", "community_id": community_id,
        "total": total, "total_exact": True, "limit": limit, "offset": offset,
        "next_cursor": RANKING_ORDER.encode(rows[limit - 1]) if len(rows) > limit else None,
        "items": items,
    }


async def redemptions(conn: asyncpg.Connection, account_id: str, principal: Principal | None, limit: int,
                      offset: int = 0, cursor: str | None = None) -> dict[str, Any] | None:
    """The redemptions at a merchant, newest first, after ``cursor``, with how many there are
    and the points redeemed there in all (one row of ``redemption_totals``, whatever the
    merchant's history); None when ``account_id`` is no merchant's account ``principal`` may
    read. The account, its totals and the page are one statement."""
    where = Where()
    where.add("kind = 'redemption'")
    where.equal(credit_account=account_id)
    head = f"""SELECT a.kind, a.community_id, coalesce(t.redemptions, 0) AS redemptions, coalesce(t.points, 0) AS points
               FROM accounts a LEFT JOIN redemption_totals t USING (account_id)
               WHERE a.account_id = {where.param(account_id)}"""
    merchant, items, next_cursor = await where.headed_page(conn, head, f"SELECT {_POSTING_COLUMNS} FROM postings",
                                                           POSTING_ORDER, limit, offset, cursor)
    if (merchant is None or merchant["kind"] != "merchant"
            or not may_read(principal, account_id=account_id, community_id=merchant["community_id"])):
        return None
    paged = Paged([_posting(r) for r in items], merchant["redemptions"], True, next_cursor)
    return paged.answer(limit, offset, account_id=account_id, points=merchant["points"])


_SUMS = ("postings", "amount", "digests", "moves", "accounts", "balance_total", "balances", "states")


async def stored_sums(conn: asyncpg.Connection) -> tuple[Sums, int]:
    """(the running totals: ``ledger_totals`` plus the deltas not folded yet; how many deltas
    that is), in one statement: both read one snapshot, inside a transaction or not."""
    row = await conn.fetchrow(_STORED_SUMS)
    return Sums(*(int(row[f"t_{c}"]) for c in _SUMS)).plus(Sums(*(int(row[f"d_{c}"]) for c in _SUMS))), row["n"]


_STORED_SUMS = f"""SELECT d.n, {', '.join(f't.{c} AS t_{c}, d.{c} AS d_{c}' for c in _SUMS)}
    FROM ledger_totals t,
         (SELECT count(*) AS n, {', '.join(f'coalesce(sum({c}), 0) AS {c}' for c in _SUMS)} FROM ledger_deltas) d"""


async def fold_deltas(conn: asyncpg.Connection) -> int:
    """Fold the deltas into ``ledger_totals`` (the timer); returns how many were folded."""
    sums = ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in _SUMS)
    sets = ", ".join(f"{c} = ((t.{c} + d.{c}) % {P} + {P}) % {P}" if c in ("digests", "moves", "balances", "states")
                     else f"{c} = t.{c} + d.{c}" for c in _SUMS)
    return await conn.fetchval(
        f"""WITH gone AS (DELETE FROM ledger_deltas RETURNING *),
                 d AS (SELECT count(*) AS n, {sums} FROM gone),
                 done AS (UPDATE ledger_totals t SET {sets}, folded_at = now() FROM d WHERE d.n > 0)
            SELECT n FROM d""")


def _answer(mode: str, sums: Sums, problems: list[str], mismatched: list[dict], pending: int) -> dict[str, Any]:
    return {"mode": mode, "sum": sums.balance_total, "postings": sums.postings, "accounts": sums.accounts,
            "consistent": not problems and not mismatched, "problems": problems, "mismatched": mismatched,
            "pending": pending}


async def ledger_check(conn: asyncpg.Connection) -> dict[str, Any]:
    """The incremental check, from the running totals alone (O(1) in the history): the balances
    sum to 0, and the stored balances and the account states both weigh what the postings
    moved. It names no account: the full check does. One statement."""
    sums, pending = await stored_sums(conn)
    return _answer("incremental", sums, sums.problems(), [], pending)


async def ledger_check_full(conn: asyncpg.Connection) -> dict[str, Any]:
    """The full check: every posting and every account read again, in one snapshot. The sums
    computed from them must equal the running totals (a posting altered in place changes its
    digest), the balances sum to 0, and each stored balance equal its postings (the accounts
    that do not are listed, up to 100)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        stored, pending = await stored_sums(conn)
        p = await conn.fetchrow(
            f"""SELECT count(*) AS postings, coalesce(sum(amount), 0) AS amount,
                       coalesce(sum(ledger_digest(transfer_id, debit_account, credit_account, amount, kind, posted_at)),
                                0) % {P} AS digests,
                       (coalesce(sum((ledger_weight(credit_account) - ledger_weight(debit_account))::numeric * amount),
                                 0) % {P} + {P}) % {P} AS moves
                FROM postings""")
        a = await conn.fetchrow(
            f"""SELECT count(*) AS accounts, coalesce(sum(balance), 0) AS balance_total,
                       (coalesce(sum(ledger_weight(account_id)::numeric * balance), 0) % {P} + {P}) % {P} AS balances,
                       (coalesce(sum(ledger_weight(account_id)::numeric * coalesce((state->>'balance')::bigint, 0)), 0)
                           % {P} + {P}) % {P} AS states
                FROM accounts""")
        mismatched = await conn.fetch(
            """WITH moves AS (
                 SELECT debit_account AS account_id, -amount AS amount FROM postings
                 UNION ALL SELECT credit_account, amount FROM postings),
               derived AS (SELECT account_id, sum(amount) AS balance FROM moves GROUP BY account_id)
               SELECT a.account_id, a.balance, COALESCE(d.balance, 0) AS derived
               FROM accounts a LEFT JOIN derived d USING (account_id)
               WHERE a.balance <> COALESCE(d.balance, 0) OR a.balance <> (a.state->>'balance')::bigint
               ORDER BY a.account_id LIMIT 100""")
        below = await conn.fetchval("SELECT count(*) FROM accounts WHERE kind <> 'issuer' AND balance < 0")
    computed = Sums(**{k: int(v) for k, v in {**dict(p), **dict(a)}.items()})
    problems = computed.problems()
    if (computed.postings, computed.amount, computed.digests) != (stored.postings, stored.amount, stored.digests):
        problems.append("the postings are not those the running totals recorded (a posting was changed, added "
                        "or removed behind the ledger's back)")
    if (computed.moves, computed.balances, computed.states, computed.balance_total, computed.accounts) != (
            stored.moves, stored.balances, stored.states, stored.balance_total, stored.accounts):
        problems.append("the running totals differ from the postings and accounts read again")
    if below:
        problems.append(f"{below} accounts below zero")
    return _answer("full", computed, problems,
                   [{"account_id": r["account_id"], "balance": r["balance"], "derived": int(r["derived"])}
                    for r in mismatched], pending)


async def claim_full_check(conn: asyncpg.Connection, every_seconds: float) -> float | None:
    """Claim the next full check: None when it may run now (and is marked as started), else the
    seconds until it may."""
    if await conn.fetchval(
            """UPDATE ledger_totals SET full_check_at = now()
               WHERE full_check_at IS NULL OR full_check_at <= now() - make_interval(secs => $1) RETURNING true""",
            float(every_seconds)):
        return None
    return float(await conn.fetchval(
        "SELECT extract(epoch FROM full_check_at + make_interval(secs => $1) - now()) FROM ledger_totals",
        float(every_seconds)))


async def accounts_by_kind(conn: asyncpg.Connection) -> dict[str, int]:
    """The accounts of each kind there is, from the counts kept beside the accounts
    (``account_counts``, a row per kind and community: migration 011), however many there are."""
    rows = await conn.fetch("SELECT kind, sum(n)::bigint AS n FROM account_counts GROUP BY kind")
    return {r["kind"]: r["n"] for r in rows}
