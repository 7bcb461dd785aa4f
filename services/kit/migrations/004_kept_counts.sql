-- Counts kept beside a table, by some of its columns, so that a list's total reads a few rows
-- however much history the table holds (counting the matching rows took longer with every row,
-- up to the count's cap on every request).
--
-- kit_keep_counts() is a statement trigger: AFTER INSERT, UPDATE and DELETE (each with its
-- transition tables, new_rows and old_rows) it moves the counts by what the statement inserted,
-- changed or deleted. Its arguments: the counts table, then the key columns. The counts table
-- has those columns (NOT NULL, its primary key, in that order) and n bigint NOT NULL; the
-- counted table has the same key columns, never null. Each statement writes its counts in key
-- order, so two transactions never deadlock on them, and touches only the keys it moved. A key
-- no row has has no count row, so the counts are the same however the rows came to be.
CREATE FUNCTION kit_keep_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    counts text := quote_ident(TG_ARGV[0]);
    keys   text;
    pairs  text;
    moved  text;
BEGIN
    SELECT string_agg(quote_ident(k), ', ' ORDER BY i),
           string_agg(format('c.%1$I = t.%1$I', k), ' AND ' ORDER BY i)
      INTO keys, pairs
      FROM unnest(TG_ARGV[1:TG_NARGS - 1]) WITH ORDINALITY AS a(k, i);
    IF TG_OP = 'INSERT' THEN
        moved := format('SELECT %1$s, count(*) AS d FROM new_rows GROUP BY %1$s', keys);
    ELSIF TG_OP = 'UPDATE' THEN
        moved := format('SELECT %1$s, sum(d) AS d FROM (SELECT %1$s, -1 AS d FROM old_rows '
                        'UNION ALL SELECT %1$s, 1 FROM new_rows) AS m GROUP BY %1$s HAVING sum(d) <> 0', keys);
    ELSE
        moved := format('SELECT %1$s, -count(*) AS d FROM old_rows GROUP BY %1$s', keys);
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

-- kit_statement_triggers(table, name, call): the three statement triggers AFTER INSERT, UPDATE
-- and DELETE on ``table`` (``<name>_insert``, ``_update``, ``_delete``), each with the transition
-- tables its event has (new_rows, old_rows), running ``call`` (a trigger function and its
-- arguments, e.g. ``kit_keep_counts('order_counts', 'status')``).
CREATE FUNCTION kit_statement_triggers(tbl text, name text, call text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    spec text;  -- the event, a colon, the transition tables it names
BEGIN
    FOREACH spec IN ARRAY ARRAY['INSERT:REFERENCING NEW TABLE AS new_rows',
                                'UPDATE:REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows',
                                'DELETE:REFERENCING OLD TABLE AS old_rows'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I %s FOR EACH STATEMENT EXECUTE FUNCTION %s',
                       name || '_' || lower(split_part(spec, ':', 1)), split_part(spec, ':', 1), tbl,
                       split_part(spec, ':', 2), call);
    END LOOP;
END
$$;

-- kit_keep_counts_on(table, counts, keys...): fill ``counts`` from the rows ``table`` holds now
-- and create the three triggers that keep it (named after ``counts``), so that a service's
-- migration is its counts table and this one call.
CREATE FUNCTION kit_keep_counts_on(tbl text, counts text, VARIADIC keys text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cols text := (SELECT string_agg(quote_ident(k), ', ' ORDER BY i) FROM unnest(keys) WITH ORDINALITY AS a(k, i));
    args text := (SELECT string_agg(quote_literal(k), ', ' ORDER BY i)
                  FROM unnest(counts || keys) WITH ORDINALITY AS a(k, i));
BEGIN
    EXECUTE format('INSERT INTO %I (%s, n) SELECT %s, count(*) FROM %I GROUP BY %s', counts, cols, cols, tbl, cols);
    PERFORM kit_statement_triggers(tbl, counts, format('kit_keep_counts(%s)', args));
END
$$;
