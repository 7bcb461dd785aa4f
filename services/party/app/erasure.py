"""What the party service removes when a person is erased (:mod:`services.kit.erasure` does the rest).

A member's id is a key of their organisation's state (its members and the grids they live in),
of their commitments, of their follow-up and of the orders they served, and is in the attendance
of meetings: it becomes the pseudonym there; the reason given for their attachment or transfer
goes (in the organisation's history), and so do the words of their commitments. The name on the
person's seats of a regional council (its compositions and a proposal in its 公示) goes.
Organisations, kinds, areas, grids and times stay (statistics); every other id of the person
becomes the pseudonym.
"""
from __future__ import annotations

import asyncpg

from services.party.domain.council import CouncilState

FREE_TEXT_KEYS = ["reason", "note", "comment", "result", "text", "topic", "need"]


async def scrub(conn: asyncpg.Connection, person_id: str, pseudonym: str) -> None:
    await conn.execute(
        """UPDATE orgs SET state = jsonb_set(state, '{members}',
                  ((state->'members') - $1::text) || jsonb_build_object($2::text, state->'members'->$1::text))
            WHERE state->'members' ? $1::text""", person_id, pseudonym)
    await conn.execute("UPDATE org_history SET data = data - $2::text[] WHERE data->>'member_id' = $1",
                       person_id, FREE_TEXT_KEYS)
    # commitments, follow-up and the orders a member served: keyed by the member, who becomes the
    # pseudonym; the words of their commitments go
    await conn.execute(
        """UPDATE commitments SET member_id = $2,
                  state = jsonb_set(state, '{member_id}', to_jsonb($2::text)) || jsonb_build_object('commitments',
                      coalesce((SELECT jsonb_agg(c || '{"text": "", "note": ""}'::jsonb)
                                  FROM jsonb_array_elements(state->'commitments') c), '[]'::jsonb))
            WHERE member_id = $1""", person_id, pseudonym)
    await conn.execute("""UPDATE member_follow_ups SET member_id = $2,
                                 state = jsonb_set(state, '{member_id}', to_jsonb($2::text)) WHERE member_id = $1""",
                       person_id, pseudonym)
    await conn.execute("UPDATE member_orders SET member_id = $2 WHERE member_id = $1", person_id, pseudonym)
    # a meeting's attendance names them: the pseudonym instead
    await conn.execute(
        """UPDATE org_life SET state = jsonb_set(state, '{meetings}', (
                  SELECT jsonb_agg(m || jsonb_build_object(
                      'attendees', (SELECT coalesce(jsonb_agg(CASE WHEN a = to_jsonb($1::text) THEN to_jsonb($2::text)
                                                                  ELSE a END), '[]'::jsonb)
                                      FROM jsonb_array_elements(m->'attendees') a),
                      'absentees', (SELECT coalesce(jsonb_agg(CASE WHEN a = to_jsonb($1::text) THEN to_jsonb($2::text)
                                                                  ELSE a END), '[]'::jsonb)
                                      FROM jsonb_array_elements(m->'absentees') a)))
                    FROM jsonb_array_elements(state->'meetings') m))
            WHERE state::text LIKE '%' || to_json($1::text)::text || '%'
              AND jsonb_array_length(state->'meetings') > 0""", person_id, pseudonym)
    await _unname_seats(conn, person_id)


async def _unname_seats(conn: asyncpg.Connection, person_id: str) -> None:
    """The person's seats of every council keep their role and unit, not their name."""
    rows = await conn.fetch("SELECT council_id, state FROM councils WHERE strpos(state::text, $1) > 0 FOR UPDATE",
                            f'"{person_id}"')
    for r in rows:
        state = CouncilState.model_validate(r["state"])
        if not any(s.person_id == person_id for c in (*state.compositions, state.pending) if c for s in c.seats):
            continue

        def unnamed(c):
            if c is None:
                return None
            return c.model_copy(update={"seats": tuple(s.model_copy(update={"name": None}) if s.person_id == person_id
                                                       else s for s in c.seats)})

        state = state.model_copy(update={"compositions": tuple(unnamed(c) for c in state.compositions),
                                         "pending": unnamed(state.pending)})
        await conn.execute("UPDATE councils SET state = $2 WHERE council_id = $1", r["council_id"],
                           state.model_dump(mode="json"))
