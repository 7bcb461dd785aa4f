-- What the whistle gauges show (whistles blown; summoned departments that answered on time, late,
-- or were recorded missing), kept as the whistles are written. The whistle_metrics timer, every
-- few seconds on every worker, counted them from the whistles: a sequential scan of every whistle
-- of the district's years, each one's summons unpacked from its state. It now reads a row per
-- street, however many whistles there are.
--
-- A tally is the whistles of one street, with the summons counted as the metrics count them. The
-- street is the key, so two transactions move the same row only when they write whistles of the
-- same street. A statement trigger moves the tallies by what each statement inserted, changed or
-- deleted (its transition tables), in street order; a street no whistle has any more has no row.
CREATE TABLE whistle_tallies (
    street_id text   NOT NULL PRIMARY KEY,
    blown     bigint NOT NULL,  -- whistles
    on_time   bigint NOT NULL,  -- summoned departments that answered by report_by
    late      bigint NOT NULL,  -- summoned departments that answered after it
    missed    bigint NOT NULL   -- summoned departments recorded missing (未报到)
);

-- One whistle's summons by outcome (its state's, as the gauges count them).
CREATE FUNCTION grid_whistle_outcomes(state jsonb, OUT on_time bigint, OUT late bigint, OUT missed bigint)
LANGUAGE sql IMMUTABLE AS $$
    SELECT count(*) FILTER (WHERE s->>'answered_at' IS NOT NULL AND (s->>'on_time')::boolean),
           count(*) FILTER (WHERE s->>'answered_at' IS NOT NULL AND NOT (s->>'on_time')::boolean),
           count(*) FILTER (WHERE (s->>'missed')::boolean)
    FROM jsonb_array_elements(state->'summons') AS s
$$;

CREATE FUNCTION whistle_tallies_move() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT 1 AS s, street_id, state FROM new_rows'
        WHEN 'UPDATE' THEN 'SELECT 1 AS s, street_id, state FROM new_rows UNION ALL '
                           'SELECT -1, street_id, state FROM old_rows'
        ELSE 'SELECT -1 AS s, street_id, state FROM old_rows' END;
BEGIN
    EXECUTE format($q$
        INSERT INTO whistle_tallies AS t (street_id, blown, on_time, late, missed)
        SELECT street_id, sum(s), sum(s * o.on_time), sum(s * o.late), sum(s * o.missed)
        FROM (%s) AS r, grid_whistle_outcomes(r.state) AS o
        GROUP BY street_id
        HAVING sum(s) <> 0 OR sum(s * o.on_time) <> 0 OR sum(s * o.late) <> 0 OR sum(s * o.missed) <> 0
        ORDER BY street_id
        ON CONFLICT (street_id) DO UPDATE SET blown = t.blown + EXCLUDED.blown, on_time = t.on_time + EXCLUDED.on_time,
                                              late = t.late + EXCLUDED.late, missed = t.missed + EXCLUDED.missed
        $q$, moved);
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM whistle_tallies WHERE blown = 0 AND street_id IN (SELECT DISTINCT street_id FROM old_rows);
    END IF;
    RETURN NULL;
END
$$;

-- The tallies as counted from the whistles: what fills them here, and what the tests and the
-- fault campaign compare the kept ones with.
CREATE VIEW whistle_tallies_counted AS
SELECT street_id, count(*) AS blown, sum(o.on_time) AS on_time, sum(o.late) AS late, sum(o.missed) AS missed
FROM whistles, grid_whistle_outcomes(state) AS o GROUP BY street_id;

INSERT INTO whistle_tallies SELECT * FROM whistle_tallies_counted;
SELECT kit_statement_triggers('whistles', 'whistle_tallies', 'whistle_tallies_move()');
