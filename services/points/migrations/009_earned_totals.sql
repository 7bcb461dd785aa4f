-- 好人榜 read from totals kept as awards are earned, not summed from the period's earnings on
-- every request. Each earning moves four totals: its month's and its year's, in the district
-- (scope '') and in the community that paid it (when it has one). ``earned_ranked`` keeps how
-- many accounts of a period and scope have earned more than nothing: a ranking's total.
--
-- Both are functions of ``earnings`` alone, however the earnings were written (one batch or
-- many, live or rebuilt): a total at 0 and a count at 0 have no row. Statement triggers move
-- them (transition tables), touching the rows in key order, totals before counts, so that two
-- transactions never wait on each other in a cycle. The count moves by what each total's upsert
-- returned (the total before it is that minus the move), never by a read before the upsert,
-- which a concurrent transaction could have made stale.
CREATE TABLE earned_totals (
    period     text   NOT NULL,   -- 2026-11 or 2026 (Shanghai calendar)
    scope      text   NOT NULL,   -- '' for the district, else the community id
    account_id text   NOT NULL,
    points     bigint NOT NULL,
    PRIMARY KEY (period, scope, account_id)
);
-- a ranking's page in rank order (most points first, ties by account), the accounts above a
-- page's first row, and the ranking's size: one index range each
CREATE INDEX earned_totals_ranked ON earned_totals (period, scope, (-points), account_id) WHERE points > 0;

CREATE TABLE earned_ranked (
    period   text   NOT NULL,
    scope    text   NOT NULL,
    accounts bigint NOT NULL,
    PRIMARY KEY (period, scope)
);

CREATE FUNCTION earned_totals_apply(earners text[], amounts bigint[], months text[], years text[],
                                    communities text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    emptied_period text[];
    emptied_scope text[];
    emptied_account text[];
    periods text[];
BEGIN
    WITH moved AS (
        SELECT k.period, k.scope, m.account_id, sum(m.amount)::bigint AS amount
          FROM unnest(earners, amounts, months, years, communities) AS m(account_id, amount, month, year, community_id)
         CROSS JOIN LATERAL (VALUES (m.month, ''), (m.month, m.community_id), (m.year, ''), (m.year, m.community_id))
               AS k(period, scope)
         WHERE k.scope IS NOT NULL
         GROUP BY k.period, k.scope, m.account_id HAVING sum(m.amount) <> 0),
    upserted AS (
        INSERT INTO earned_totals AS t (period, scope, account_id, points)
        SELECT period, scope, account_id, amount FROM moved ORDER BY period, scope, account_id
        ON CONFLICT (period, scope, account_id) DO UPDATE SET points = t.points + EXCLUDED.points
        RETURNING t.period, t.scope, t.account_id, t.points),
    changed AS (
        SELECT u.period, u.scope, u.account_id, u.points, u.points - m.amount AS was
          FROM upserted u JOIN moved m USING (period, scope, account_id)),
    counted AS (
        INSERT INTO earned_ranked AS r (period, scope, accounts)
        SELECT period, scope, sum((points > 0)::int - (was > 0)::int) FROM changed
         GROUP BY period, scope HAVING sum((points > 0)::int - (was > 0)::int) <> 0 ORDER BY period, scope
        ON CONFLICT (period, scope) DO UPDATE SET accounts = r.accounts + EXCLUDED.accounts
        RETURNING r.period)
    SELECT array_agg(c.period) FILTER (WHERE c.points = 0), array_agg(c.scope) FILTER (WHERE c.points = 0),
           array_agg(c.account_id) FILTER (WHERE c.points = 0), (SELECT array_agg(DISTINCT period) FROM counted)
      INTO emptied_period, emptied_scope, emptied_account, periods
      FROM changed c;
    IF emptied_period IS NOT NULL THEN
        DELETE FROM earned_totals t
         USING unnest(emptied_period, emptied_scope, emptied_account) AS e(period, scope, account_id)
         WHERE (t.period, t.scope, t.account_id) = (e.period, e.scope, e.account_id) AND t.points = 0;
    END IF;
    IF periods IS NOT NULL THEN
        DELETE FROM earned_ranked WHERE period = ANY(periods) AND accounts = 0;
    END IF;
END $$;

CREATE FUNCTION earned_totals_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM earned_totals_apply(array_agg(account_id), array_agg(amount), array_agg(month), array_agg(year),
                                    array_agg(community_id))
           FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM earned_totals_apply(array_agg(account_id), array_agg(amount), array_agg(month), array_agg(year),
                                    array_agg(community_id))
           FROM (SELECT account_id, amount, month, year, community_id FROM new_rows
                 UNION ALL
                 SELECT account_id, -amount, month, year, community_id FROM old_rows) AS m;
    ELSE
        PERFORM earned_totals_apply(array_agg(account_id), array_agg(-amount), array_agg(month), array_agg(year),
                                    array_agg(community_id))
           FROM old_rows;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER earned_totals_insert AFTER INSERT ON earnings REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION earned_totals_move();
CREATE TRIGGER earned_totals_update AFTER UPDATE ON earnings REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION earned_totals_move();
CREATE TRIGGER earned_totals_delete AFTER DELETE ON earnings REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION earned_totals_move();

-- the earnings kept so far, summed once (set-based: a district's years of earnings in one pass)
INSERT INTO earned_totals (period, scope, account_id, points)
SELECT k.period, k.scope, e.account_id, sum(e.amount)
  FROM earnings e
 CROSS JOIN LATERAL (VALUES (e.month, ''), (e.month, e.community_id), (e.year, ''), (e.year, e.community_id))
       AS k(period, scope)
 WHERE k.scope IS NOT NULL
 GROUP BY k.period, k.scope, e.account_id HAVING sum(e.amount) <> 0;
INSERT INTO earned_ranked (period, scope, accounts)
SELECT period, scope, count(*) FROM earned_totals WHERE points > 0 GROUP BY period, scope;
