-- What the grid's gauges show (cases by status and category, open and overdue, reworks,
-- dismissals by reason, the report-to-close histogram, cards and listings), kept as the cases are
-- written, so that a worker's refresh reads a few rows per grid however much history there is:
-- read from the cases, it scanned every case of the district four times every few seconds.
--
-- A tally is the cases of one grid sharing every key below, with the sums the gauges need. The
-- grid is part of the key, so two transactions move the same tally row only when they write
-- cases of the same grid (as for grid_status_counts). A statement trigger moves the tallies by
-- what each statement inserted, changed or deleted (its transition tables), in key order; a
-- tally no case has any more has no row.
CREATE FUNCTION grid_handled_within(status text, seconds integer) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    -- the histogram bucket of a closed case's report-to-close time: the smallest bound at or
    -- above it (the bounds of services/grid/app/metrics.py HANDLING_BUCKETS, which a test
    -- checks), Infinity above them all; -1 for a case not closed or without the time
    SELECT CASE WHEN status <> 'closed' OR seconds IS NULL THEN -1
                ELSE coalesce((SELECT min(b) FROM unnest(ARRAY[60, 300, 900, 1800, 3600, 14400, 28800, 86400,
                                                               172800, 259200, 432000, 604800, 1209600,
                                                               2592000]::double precision[]) AS b
                               WHERE b >= seconds), 'Infinity') END
$$;

CREATE TABLE case_tallies (
    grid_id        text             NOT NULL,
    status         text             NOT NULL,
    category       text             NOT NULL,
    overdue_open   boolean          NOT NULL,  -- open and a deadline missed
    duplicate      boolean          NOT NULL,  -- dismissed as a duplicate (duplicate_of set)
    supervised     boolean          NOT NULL,  -- a card was issued (supervision_count > 0)
    listed         boolean          NOT NULL,  -- listed (挂牌督办), now or before its 销号
    handled_within double precision NOT NULL,  -- grid_handled_within(status, handling_seconds)
    n              bigint           NOT NULL,  -- cases
    reworks        bigint           NOT NULL,  -- sum of rework_count
    red_cards      bigint           NOT NULL,  -- sum of the cards after the first (red ones)
    handling_sum   bigint           NOT NULL,  -- sum of handling_seconds of the closed cases
    PRIMARY KEY (grid_id, status, category, overdue_open, duplicate, supervised, listed, handled_within)
);

CREATE FUNCTION case_tallies_move() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT 1 AS s, r FROM new_rows r'
        WHEN 'UPDATE' THEN 'SELECT 1 AS s, r FROM new_rows r UNION ALL SELECT -1, r FROM old_rows r'
        ELSE 'SELECT -1 AS s, r FROM old_rows r' END;
BEGIN
    EXECUTE format($q$
        INSERT INTO case_tallies AS t (grid_id, status, category, overdue_open, duplicate, supervised, listed,
                                       handled_within, n, reworks, red_cards, handling_sum)
        SELECT (r).grid_id, (r).status, (r).category, (r).is_open AND (r).overdue, (r).duplicate_of IS NOT NULL,
               (r).supervision_count > 0, (r).listed OR (r).delisted_at IS NOT NULL,
               grid_handled_within((r).status, (r).handling_seconds),
               sum(s), sum(s * (r).rework_count), sum(s * greatest((r).supervision_count - 1, 0)),
               sum(s * CASE WHEN (r).status = 'closed' THEN coalesce((r).handling_seconds, 0) ELSE 0 END)
        FROM (%s) AS m
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
        HAVING sum(s) <> 0 OR sum(s * (r).rework_count) <> 0 OR sum(s * greatest((r).supervision_count - 1, 0)) <> 0
            OR sum(s * CASE WHEN (r).status = 'closed' THEN coalesce((r).handling_seconds, 0) ELSE 0 END) <> 0
        ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
        ON CONFLICT (grid_id, status, category, overdue_open, duplicate, supervised, listed, handled_within)
        DO UPDATE SET n = t.n + EXCLUDED.n, reworks = t.reworks + EXCLUDED.reworks,
                      red_cards = t.red_cards + EXCLUDED.red_cards, handling_sum = t.handling_sum + EXCLUDED.handling_sum
        $q$, moved);
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM case_tallies WHERE n = 0 AND grid_id IN (SELECT DISTINCT grid_id FROM old_rows);
    END IF;
    RETURN NULL;
END
$$;

INSERT INTO case_tallies (grid_id, status, category, overdue_open, duplicate, supervised, listed, handled_within,
                          n, reworks, red_cards, handling_sum)
SELECT grid_id, status, category, is_open AND overdue, duplicate_of IS NOT NULL, supervision_count > 0,
       listed OR delisted_at IS NOT NULL, grid_handled_within(status, handling_seconds),
       count(*), sum(rework_count), sum(greatest(supervision_count - 1, 0)),
       sum(CASE WHEN status = 'closed' THEN coalesce(handling_seconds, 0) ELSE 0 END)
FROM cases GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

CREATE TRIGGER case_tallies_insert AFTER INSERT ON cases REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION case_tallies_move();
CREATE TRIGGER case_tallies_update AFTER UPDATE ON cases REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION case_tallies_move();
CREATE TRIGGER case_tallies_delete AFTER DELETE ON cases REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION case_tallies_move();

-- The patrols of each grid, counted the same way (the kit's kit_keep_counts).
CREATE TABLE patrol_counts (
    grid_id text   NOT NULL PRIMARY KEY,
    n       bigint NOT NULL
);
SELECT kit_keep_counts_on('patrols', 'patrol_counts', 'grid_id');
