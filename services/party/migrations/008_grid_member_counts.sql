-- The members of each grid, kept as the members are attached, moved and removed. The coverage timer
-- (every minute) counted them for the gaps it reports and for the open gaps gauge, twice a round:
-- a sequential scan of org_members, every member of the district, grouped by grid. It now reads a
-- row per grid with members, however many members there are.
--
-- A member without a grid is not counted (as the coverage never counted one). The grid is the key,
-- so two transactions move the same row only when they attach members of the same grid. A statement
-- trigger moves the counts by what each statement inserted, changed or deleted (its transition
-- tables), in grid order; a grid no member lives in any more has no row.
CREATE TABLE grid_member_counts (
    grid_id text   NOT NULL PRIMARY KEY,
    n       bigint NOT NULL
);

CREATE FUNCTION grid_member_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO grid_member_counts AS c (grid_id, n)
        SELECT grid_id, count(*) FROM new_rows WHERE grid_id IS NOT NULL GROUP BY grid_id ORDER BY grid_id
        ON CONFLICT (grid_id) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO grid_member_counts AS c (grid_id, n)
        SELECT grid_id, sum(d) FROM (SELECT grid_id, 1 AS d FROM new_rows UNION ALL SELECT grid_id, -1 FROM old_rows) m
         WHERE grid_id IS NOT NULL GROUP BY grid_id HAVING sum(d) <> 0 ORDER BY grid_id
        ON CONFLICT (grid_id) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO grid_member_counts AS c (grid_id, n)
        SELECT grid_id, -count(*) FROM old_rows WHERE grid_id IS NOT NULL GROUP BY grid_id ORDER BY grid_id
        ON CONFLICT (grid_id) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM grid_member_counts c USING (SELECT DISTINCT grid_id FROM old_rows) AS o
         WHERE c.n = 0 AND c.grid_id = o.grid_id;
    END IF;
    RETURN NULL;
END
$$;

INSERT INTO grid_member_counts (grid_id, n)
SELECT grid_id, count(*) FROM org_members WHERE grid_id IS NOT NULL GROUP BY grid_id;
SELECT kit_statement_triggers('org_members', 'grid_member_counts', 'grid_member_counts_move()');
