"""What the points service changes when a person is erased (:mod:`services.kit.erasure` does the rest).

The person's accounts (resident or merchant: ``<kind>:<id>``) become ``<kind>:<pseudonym>``
through the database function ``erase_account`` (migration 005): a new account row with the same
balance and lots, the postings, earnings and deeds moved to it, the old row deleted. The postings
are append-only; the function alone may rewrite their ids and free text, and never an amount,
so the balances and the ledger's sum (zero) are unchanged. The deeds the person submitted lose
their description; the postings and adjustment requests naming their account lose the operator's detail.
"""
from __future__ import annotations

import asyncpg

HOLDER_KINDS = ("resident", "merchant")
SKIP = ("postings",)
"""Rewritten by ``erase_account`` only (the runtime role may not UPDATE it)."""


async def scrub(conn: asyncpg.Connection, person_id: str, pseudonym: str) -> None:
    accounts = await conn.fetch(
        "SELECT account_id, kind FROM accounts WHERE holder_id = $1 AND kind = ANY($2::text[]) ORDER BY account_id",
        person_id, list(HOLDER_KINDS))
    for r in accounts:
        new = f"{r['kind']}:{pseudonym}"
        await conn.fetchval("SELECT erase_account($1, $2, $3, $4)", r["account_id"], new, person_id, pseudonym)
        await conn.execute(
            "UPDATE deeds SET state = state || jsonb_build_object('description', '') WHERE account_id = $1", new)
        await conn.execute(
            "UPDATE adjustment_requests SET request = request - 'detail' - 'reason' "
            "WHERE request->>'debit_account' = $1 OR request->>'credit_account' = $1 OR request->>'account_id' = $2",
            r["account_id"], r["account_id"])
