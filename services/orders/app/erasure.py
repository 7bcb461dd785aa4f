"""What the orders service removes when a person is erased (:mod:`services.kit.erasure` does the rest).

The orders a resident placed lose their description, the resident's comment and the cancel
reason (in the row, the state and the order history); a member loses their name. Categories,
minutes, ratings and times stay (statistics); every id of the person becomes the pseudonym.
"""
from __future__ import annotations

import asyncpg

FREE_TEXT_KEYS = ["description", "comment", "resident_comment", "note", "reason", "cancel_reason", "name"]


async def scrub(conn: asyncpg.Connection, person_id: str, pseudonym: str) -> None:
    orders = [r["order_id"] for r in await conn.fetch("SELECT order_id FROM orders WHERE resident_id = $1", person_id)]
    if orders:
        await conn.execute(
            """UPDATE orders SET description = '', resident_comment = NULL,
                      state = state || jsonb_build_object('description', '', 'resident_comment', NULL,
                                                          'cancel_reason', NULL)
                WHERE order_id = ANY($1)""", orders)
        await conn.execute("UPDATE order_history SET data = data - $2::text[] WHERE order_id = ANY($1)",
                           orders, FREE_TEXT_KEYS)
    await conn.execute(
        "UPDATE members SET name = NULL, state = state || jsonb_build_object('name', NULL) WHERE member_id = $1",
        person_id)
