-- Answers kept beside aggregate states: a list that answers each state whole (a party's units and
-- projects) reads the text the aggregate store wrote with the state (its ``answer`` option: the
-- state as its model writes it), rather than validating and writing every state again on every
-- request. Another statement that changes the state (an erasure's replacements) leaves that text
-- behind, so a row trigger empties it then, and the list renders that state from the model again
-- (as for a row written before the column was there).

-- kit_forget_stale_answers_on(table, column, state): the row trigger ``<table>_<column>_stale``
-- (and its function of that name) that empties ``column`` of each row updated whose ``state``
-- changed while ``column`` did not.
CREATE FUNCTION kit_forget_stale_answers_on(tbl text, col text, state text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    name text := tbl || '_' || col || '_stale';
BEGIN
    EXECUTE format('CREATE FUNCTION %I() RETURNS trigger LANGUAGE plpgsql AS %L', name,
                   format('BEGIN IF NEW.%1$I IS DISTINCT FROM OLD.%1$I AND NEW.%2$I IS NOT DISTINCT FROM OLD.%2$I '
                          'THEN NEW.%2$I := NULL; END IF; RETURN NEW; END', state, col));
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION %I()', name, tbl, name);
END
$$;
