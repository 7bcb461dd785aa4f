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
    -- checks), Infinity above them all; -1 for a case not closed or without the time. One
    -- expression, so that the planner inlines it into the trigger's statement.
    SELECT CASE WHEN status <> 'closed' OR seconds IS NULL THEN -1::double precision
                WHEN seconds <= 60 THEN 60
                WHEN seconds <= 300 THEN 300
                WHEN seconds <= 900 THEN 900
                WHEN seconds <= 1800 THEN 1800
                WHEN seconds <= 3600 THEN 3600
                WHEN seconds <= 14400 THEN 14400
                WHEN seconds <= 28800 THEN 28800
                WHEN seconds <= 86400 THEN 86400
                WHEN seconds <= 172800 THEN 172800
                WHEN seconds <= 259200 THEN 259200
                WHEN seconds <= 432000 THEN 432000
                WHEN seconds <= 604800 THEN 604800
                WHEN seconds <= 1209600 THEN 1209600
                WHEN seconds <= 2592000 THEN 2592000
                ELSE 'Infinity' END
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
    -- only the columns a tally reads (a whole row of cases, its state among them, costs more)
    cols text := 'grid_id, status, category, is_open, overdue, duplicate_of, supervision_count, listed, delisted_at, '
                 'handling_seconds, rework_count';
    moved text := CASE TG_OP
        WHEN 'INSERT' THEN format('SELECT 1 AS s, %s FROM new_rows', cols)
        WHEN 'UPDATE' THEN format('SELECT 1 AS s, %1$s FROM new_rows UNION ALL SELECT -1, %1$s FROM old_rows', cols)
        ELSE format('SELECT -1 AS s, %s FROM old_rows', cols) END;
BEGIN
    EXECUTE format($q$
        INSERT INTO case_tallies AS t (grid_id, status, category, overdue_open, duplicate, supervised, listed,
                                       handled_within, n, reworks, red_cards, handling_sum)
        SELECT grid_id, status, category, overdue_open, duplicate, supervised, listed, handled_within,
               sum(s), sum(s * rework_count), sum(s * red), sum(s * handled)
        FROM (SELECT s, grid_id, status, category, is_open AND overdue AS overdue_open,
                     duplicate_of IS NOT NULL AS duplicate, supervision_count > 0 AS supervised,
                     listed OR delisted_at IS NOT NULL AS listed,
                     grid_handled_within(status, handling_seconds) AS handled_within, rework_count,
                     greatest(supervision_count - 1, 0) AS red,
                     CASE WHEN status = 'closed' THEN coalesce(handling_seconds, 0) ELSE 0 END AS handled
              FROM (%s) AS r) AS m
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
        HAVING sum(s) <> 0 OR sum(s * rework_count) <> 0 OR sum(s * red) <> 0 OR sum(s * handled) <> 0
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

-- The tallies as counted from the cases: what fills them here, and what the tests and the fault
-- campaign compare the kept ones with.
CREATE VIEW case_tallies_counted AS
SELECT grid_id, status, category, is_open AND overdue AS overdue_open, duplicate_of IS NOT NULL AS duplicate,
       supervision_count > 0 AS supervised, listed OR delisted_at IS NOT NULL AS listed,
       grid_handled_within(status, handling_seconds) AS handled_within, count(*) AS n,
       sum(rework_count) AS reworks, sum(greatest(supervision_count - 1, 0)) AS red_cards,
       sum(CASE WHEN status = 'closed' THEN coalesce(handling_seconds, 0) ELSE 0 END) AS handling_sum
FROM cases GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

INSERT INTO case_tallies SELECT * FROM case_tallies_counted;
SELECT kit_statement_triggers('cases', 'case_tallies', 'case_tallies_move()');

-- The patrols of each grid, counted the same way (the kit's kit_keep_counts).
CREATE TABLE patrol_counts (
    grid_id text   NOT NULL PRIMARY KEY,
    n       bigint NOT NULL
);
SELECT kit_keep_counts_on('patrols', 'patrol_counts', 'grid_id');
