-- A grid's cases by status, kept as the cases are written, so that the counts of a grid read a
-- few rows however much history it has (counting its cases took longer with every case). Three
-- statement triggers move the counts by what each statement inserted, changed or deleted
-- (transition tables); each writes its rows in key order, so two transactions never deadlock,
-- and touches only the rows of the grids and statuses it moved. A status no case of a grid has
-- has no row, so the counts are the same whichever way the cases came to be.
CREATE TABLE grid_status_counts (
    grid_id text   NOT NULL,
    status  text   NOT NULL,
    n       bigint NOT NULL,
    PRIMARY KEY (grid_id, status)
);
INSERT INTO grid_status_counts (grid_id, status, n)
SELECT grid_id, status, count(*) FROM cases GROUP BY grid_id, status;

CREATE FUNCTION grid_status_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO grid_status_counts AS c (grid_id, status, n)
        SELECT grid_id, status, count(*) FROM new_rows GROUP BY grid_id, status ORDER BY grid_id, status
        ON CONFLICT (grid_id, status) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO grid_status_counts AS c (grid_id, status, n)
        SELECT grid_id, status, sum(d) FROM (
            SELECT grid_id, status, -1 AS d FROM old_rows
            UNION ALL
            SELECT grid_id, status, 1 FROM new_rows) AS moved
        GROUP BY grid_id, status HAVING sum(d) <> 0 ORDER BY grid_id, status
        ON CONFLICT (grid_id, status) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO grid_status_counts AS c (grid_id, status, n)
        SELECT grid_id, status, -count(*) FROM old_rows GROUP BY grid_id, status ORDER BY grid_id, status
        ON CONFLICT (grid_id, status) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    IF TG_OP <> 'INSERT' THEN  -- a status no case of the grid has any more has no row
        DELETE FROM grid_status_counts c USING (SELECT DISTINCT grid_id, status FROM old_rows) AS t
        WHERE c.n = 0 AND (c.grid_id, c.status) = (t.grid_id, t.status);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER grid_status_counts_insert AFTER INSERT ON cases REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION grid_status_counts_move();
CREATE TRIGGER grid_status_counts_update AFTER UPDATE ON cases REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION grid_status_counts_move();
CREATE TRIGGER grid_status_counts_delete AFTER DELETE ON cases REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION grid_status_counts_move();

-- A grid's cases of one status (its open, dispatched... cases), page and count, as one index
-- range: behind the grid's keyset index alone they were found by reading every case of the grid.
CREATE INDEX cases_grid_status_keyset ON cases (grid_id, status, reported_at, case_id);
