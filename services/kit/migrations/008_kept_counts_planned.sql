-- Kept counts whose statements are planned once a session. The one trigger function the counts
-- shared (kit_keep_counts) built its statements from its arguments on every call and ran them with
-- EXECUTE, so each statement that wrote a counted table parsed and planned two or three
-- statements afresh: an order's upsert, which fires the INSERT and the UPDATE triggers, spent
-- 0.75 ms of its 1.2 ms in them; a rebuild of the orders ran it thousands of times. Now each
-- counts table gets a trigger function of its own, ``<counts>_move()``, whose statements are
-- written out when it is created: PL/pgSQL plans them once a session and keeps the plans. What
-- it writes is what kit_keep_counts wrote (migration 005): the same counts, keys in order, no
-- zero left, a row with a null key counted under none.

-- kit_counts_function(counts, keys): create ``<counts>_move()`` for a counts table keyed by
-- ``keys``, and return its call for kit_statement_triggers.
CREATE FUNCTION kit_counts_function(counts text, keys text[]) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    fn    text := counts || '_move';
    cols  text := (SELECT string_agg(quote_ident(k), ', ' ORDER BY i) FROM unnest(keys) WITH ORDINALITY AS a(k, i));
    pairs text := (SELECT string_agg(format('c.%1$I = t.%1$I', k), ' AND ' ORDER BY i)
                     FROM unnest(keys) WITH ORDINALITY AS a(k, i));
    keyed text := (SELECT string_agg(format('%I IS NOT NULL', k), ' AND ' ORDER BY i)
                     FROM unnest(keys) WITH ORDINALITY AS a(k, i));
    put   text := format('INSERT INTO %1$I AS c (%2$s, n) SELECT %2$s, d FROM (%%s) AS m ORDER BY %2$s '
                         'ON CONFLICT (%2$s) DO UPDATE SET n = c.n + EXCLUDED.n;', counts, cols);
    clear text := format('DELETE FROM %1$I c USING (SELECT DISTINCT %2$s FROM old_rows) AS t WHERE c.n = 0 AND %3$s;',
                         counts, cols, pairs);
BEGIN
    EXECUTE format($f$CREATE OR REPLACE FUNCTION %I() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF TG_OP = 'INSERT' THEN
        %s
    ELSIF TG_OP = 'UPDATE' THEN
        %s
        %s
    ELSE
        %s
        %s
    END IF;
    RETURN NULL;
END
$body$$f$, fn,
        format(put, format('SELECT %1$s, count(*) AS d FROM new_rows WHERE %2$s GROUP BY %1$s', cols, keyed)),
        format(put, format('SELECT %1$s, sum(d) AS d FROM (SELECT %1$s, -1 AS d FROM old_rows WHERE %2$s '
                           'UNION ALL SELECT %1$s, 1 FROM new_rows WHERE %2$s) AS m GROUP BY %1$s HAVING sum(d) <> 0',
                           cols, keyed)),
        clear,
        format(put, format('SELECT %1$s, -count(*) AS d FROM old_rows WHERE %2$s GROUP BY %1$s', cols, keyed)),
        clear);
    RETURN format('%I()', fn);
END
$fn$;

-- kit_keep_counts_on(table, counts, keys...): as before (fill ``counts`` from the rows ``table``
-- holds now, and the three statement triggers that keep it), the triggers calling the counts'
-- own function.
CREATE OR REPLACE FUNCTION kit_keep_counts_on(tbl text, counts text, VARIADIC keys text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cols  text := (SELECT string_agg(quote_ident(k), ', ' ORDER BY i) FROM unnest(keys) WITH ORDINALITY AS a(k, i));
    keyed text := (SELECT string_agg(format('%I IS NOT NULL', k), ' AND ' ORDER BY i)
                     FROM unnest(keys) WITH ORDINALITY AS a(k, i));
BEGIN
    EXECUTE format('INSERT INTO %I (%s, n) SELECT %s, count(*) FROM %I WHERE %s GROUP BY %s',
                   counts, cols, cols, tbl, keyed, cols);
    PERFORM kit_statement_triggers(tbl, counts, kit_counts_function(counts, keys));
END
$$;

-- The counts kept so far (a service's migrations ran before this one) move to their own
-- functions: their triggers are made again, with the same names, tables and keys.
DO $$
DECLARE
    r    record;
    args text[];
BEGIN
    FOR r IN SELECT DISTINCT c.relname, t.tgargs
               FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
              WHERE t.tgfoid = 'kit_keep_counts'::regproc AND c.relnamespace = current_schema()::regnamespace
    LOOP
        -- the arguments, each ended by a zero byte: the counts table, then the keys
        args := string_to_array(encode(r.tgargs, 'escape'), '\000');
        args := args[1:array_length(args, 1) - 1];
        EXECUTE format('DROP TRIGGER %1$I ON %2$I; DROP TRIGGER %3$I ON %2$I; DROP TRIGGER %4$I ON %2$I',
                       args[1] || '_insert', r.relname, args[1] || '_update', args[1] || '_delete');
        PERFORM kit_statement_triggers(r.relname, args[1], kit_counts_function(args[1], args[2:]));
    END LOOP;
END
$$;

DROP FUNCTION kit_keep_counts();
