"""What the party service removes when a person is erased (:mod:`services.kit.erasure` does the rest).

A member's id is a key of their organisation's state (its members and the grids they live in):
it becomes the pseudonym there; the reason given for their attachment or transfer goes (in the
organisation's history). Organisations, kinds, areas, grids and times stay (statistics); every
other id of the person becomes the pseudonym.
"""
from __future__ import annotations

import asyncpg

FREE_TEXT_KEYS = ["reason", "note", "comment", "result", "text", "topic", "need"]


async def scrub(conn: asyncpg.Connection, person_id: str, pseudonym: str) -> None:
    await conn.execute(
        """UPDATE orgs SET state = jsonb_set(state, '{members}',
                  ((state->'members') - $1::text) || jsonb_build_object($2::text, state->'members'->$1::text))
            WHERE state->'members' ? $1::text""", person_id, pseudonym)
    await conn.execute("UPDATE org_history SET data = data - $2::text[] WHERE data->>'member_id' = $1",
                       person_id, FREE_TEXT_KEYS)
