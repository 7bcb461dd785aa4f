-- Answers kept beside a table's rows: a text column holding each row's JSON as a list answers it,
-- written by a row trigger whenever the row is inserted or changed (by any statement: the
-- service's writes, COPY, an erasure's replacements). A page of rows is then one value a row
-- for the worker to pass on, rather than tens of values to decode, put in dicts and encode again
-- on every request (half of a list's CPU in the worker).
--
-- The JSON is written as the services' answers write it: a time as ISO 8601 in UTC, with
-- microseconds only when it has some (kit_json_time); a float with a fraction or ".0"
-- (kit_json_float); a jsonb value as PostgreSQL writes it (the same JSON, other spacing).

-- kit_json_time(t): ``t`` as a JSON string, the way the answers' encoder writes a UTC time.
CREATE FUNCTION kit_json_time(t timestamptz) RETURNS json LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_json(to_char(t AT TIME ZONE 'UTC',
                           CASE WHEN date_part('microseconds', t)::bigint % 1000000 = 0
                                THEN 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'
                                ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"' END))
$$;

-- kit_json_float(x): ``x`` as a JSON number, the way the answers' encoder writes a float (a whole
-- number with ".0"; NaN and the infinities, which JSON has not, as null).
CREATE FUNCTION kit_json_float(x double precision) RETURNS json LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN x IS NULL OR x IN ('NaN', 'Infinity', '-Infinity') THEN 'null'::json
                WHEN x = trunc(x) AND abs(x) < 1e15 THEN (trunc(x)::bigint::text || '.0')::json
                ELSE x::text::json END
$$;

-- kit_keep_answers_on(table, column, fields...): the row trigger ``<table>_<column>`` (and its
-- function of that name) that writes, into ``column`` (text) of each row inserted or updated, the
-- JSON object of ``fields`` (columns of ``table``, in that order); then every row's, by updating
-- them all once, and the column is NOT NULL. A field that is not a column of the table stops the
-- migration.
CREATE FUNCTION kit_keep_answers_on(tbl text, col text, VARIADIC fields text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    name    text := tbl || '_' || col;
    missing text;
    exprs   text;
BEGIN
    SELECT string_agg(f, ', ') INTO missing FROM unnest(fields) AS f
     WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl::regclass AND a.attname = f
                                                        AND a.attnum > 0 AND NOT a.attisdropped);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'kit_keep_answers_on: % has no column %', tbl, missing;
    END IF;
    SELECT string_agg(CASE a.atttypid
                          WHEN 'timestamptz'::regtype THEN format('kit_json_time(NEW.%1$I) AS %1$I', f)
                          WHEN 'float8'::regtype THEN format('kit_json_float(NEW.%1$I) AS %1$I', f)
                          ELSE format('NEW.%1$I AS %1$I', f) END, ', ' ORDER BY i)
      INTO exprs
      FROM unnest(fields) WITH ORDINALITY AS u(f, i)
      JOIN pg_attribute a ON a.attrelid = tbl::regclass AND a.attname = u.f;
    EXECUTE format('CREATE FUNCTION %I() RETURNS trigger LANGUAGE plpgsql AS %L', name,
                   format('BEGIN NEW.%I := (SELECT to_json(a)::text FROM (SELECT %s) AS a); RETURN NEW; END',
                          col, exprs));
    EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION %I()',
                   name, tbl, name);
    EXECUTE format('UPDATE %I SET %I = NULL', tbl, col);  -- the trigger writes each row's
    EXECUTE format('ALTER TABLE %I ALTER COLUMN %I SET NOT NULL', tbl, col);
END
$$;
