-- Kept counts of a table whose key column may be null: a row with a null key is counted under
-- no key (a Party member attached to no grid is in no grid's count). Before, the counted table's
-- key columns had to be never null (the counts table's primary key refused a null), and a count
-- over a nullable column wrote a trigger of its own, a copy of kit_keep_counts with that filter.
-- The tables counted so far have key columns that are never null: nothing changes for them.
CREATE OR REPLACE FUNCTION kit_keep_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    counts text := quote_ident(TG_ARGV[0]);
    keys   text;
    pairs  text;
    keyed  text;  -- the rows whose key has no null
    moved  text;
BEGIN
    SELECT string_agg(quote_ident(k), ', ' ORDER BY i),
           string_agg(format('c.%1$I = t.%1$I', k), ' AND ' ORDER BY i),
           string_agg(format('%I IS NOT NULL', k), ' AND ' ORDER BY i)
      INTO keys, pairs, keyed
      FROM unnest(TG_ARGV[1:TG_NARGS - 1]) WITH ORDINALITY AS a(k, i);
    IF TG_OP = 'INSERT' THEN
        moved := format('SELECT %1$s, count(*) AS d FROM new_rows WHERE %2$s GROUP BY %1$s', keys, keyed);
    ELSIF TG_OP = 'UPDATE' THEN
        moved := format('SELECT %1$s, sum(d) AS d FROM (SELECT %1$s, -1 AS d FROM old_rows WHERE %2$s '
                        'UNION ALL SELECT %1$s, 1 FROM new_rows WHERE %2$s) AS m GROUP BY %1$s HAVING sum(d) <> 0',
                        keys, keyed);
    ELSE
        moved := format('SELECT %1$s, -count(*) AS d FROM old_rows WHERE %2$s GROUP BY %1$s', keys, keyed);
    END IF;
    EXECUTE format('INSERT INTO %1$s AS c (%2$s, n) SELECT %2$s, d FROM (%3$s) AS m ORDER BY %2$s '
                   'ON CONFLICT (%2$s) DO UPDATE SET n = c.n + EXCLUDED.n', counts, keys, moved);
    IF TG_OP <> 'INSERT' THEN  -- a key no row has any more has no count
        EXECUTE format('DELETE FROM %1$s c USING (SELECT DISTINCT %2$s FROM old_rows) AS t WHERE c.n = 0 AND %3$s',
                       counts, keys, pairs);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION kit_keep_counts_on(tbl text, counts text, VARIADIC keys text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cols  text := (SELECT string_agg(quote_ident(k), ', ' ORDER BY i) FROM unnest(keys) WITH ORDINALITY AS a(k, i));
    keyed text := (SELECT string_agg(format('%I IS NOT NULL', k), ' AND ' ORDER BY i)
                   FROM unnest(keys) WITH ORDINALITY AS a(k, i));
    args  text := (SELECT string_agg(quote_literal(k), ', ' ORDER BY i)
                   FROM unnest(counts || keys) WITH ORDINALITY AS a(k, i));
BEGIN
    EXECUTE format('INSERT INTO %I (%s, n) SELECT %s, count(*) FROM %I WHERE %s GROUP BY %s',
                   counts, cols, cols, tbl, keyed, cols);
    PERFORM kit_statement_triggers(tbl, counts, format('kit_keep_counts(%s)', args));
END
$$;
