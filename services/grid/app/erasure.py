"""What the grid service removes when a person is erased (:mod:`services.kit.erasure` does the rest).

The cases the person reported (the first reporter; a co-reporter's own words are in the dismissed
duplicate they reported) lose their description, address, coordinates (set to 0, 0: the case keeps
its grid, community and street) and media, in the projection, the case state and the case history
(with the comments given on them, and the department's words on them: the reasons of returns,
extensions and exclusions, the note of a contact, the measures of a control). The patrols the person logged lose their notes and route. Every
id of the person becomes the pseudonym, in every table.
"""
from __future__ import annotations

import asyncpg

FREE_TEXT_KEYS = ["description", "location", "address", "media", "comment", "notes", "route", "reason", "note",
                  "measures"]
"""Keys taken out of the stored events (case_history.data) of the person's cases."""


async def scrub(conn: asyncpg.Connection, person_id: str, pseudonym: str) -> None:
    cases = [r["case_id"] for r in await conn.fetch(
        "SELECT case_id FROM case_state WHERE state->'reporter'->>'id' = $1", person_id)]
    if cases:
        await conn.execute(
            "UPDATE cases SET description = '', address = '', lat = 0, lon = 0, media = '[]' WHERE case_id = ANY($1)",
            cases)
        await conn.execute(
            """UPDATE case_state SET state = state || jsonb_build_object('description', '', 'media', '[]'::jsonb,
                                                 'location', '{"lat": 0, "lon": 0, "address": ""}'::jsonb)
               WHERE case_id = ANY($1)""", cases)
        await conn.execute("UPDATE case_history SET data = data - $2::text[] WHERE case_id = ANY($1)",
                           cases, FREE_TEXT_KEYS)
    await conn.execute("UPDATE patrols SET notes = '', route = '[]' WHERE grid_worker_id = $1", person_id)
    # the feedback the person gave on other cases (a co-reporter's)
    await conn.execute(
        "UPDATE case_history SET data = data - $2::text[] WHERE type = 'grid.case.feedback.v1' "
        "AND data->>'reporter_id' = $1", person_id, FREE_TEXT_KEYS)
