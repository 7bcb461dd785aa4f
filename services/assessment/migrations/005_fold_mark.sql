-- The fold's mark. A fold of the counters leaves a token of its own here; any other change to
-- `refs` (an erasure, a hand-made correction, a truncation) replaces it with its transaction's
-- id. A worker that finds the token its last fold left knows the refs are as that fold left
-- them, and reads them from memory instead of the table.
CREATE TABLE fold_mark (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    token text NOT NULL
);
INSERT INTO fold_mark (token) VALUES (gen_random_uuid()::text);

CREATE FUNCTION refs_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE fold_mark SET token = 'tx:' || txid_current()::text;
    RETURN NULL;
END
$$;

CREATE TRIGGER refs_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON refs
    FOR EACH STATEMENT EXECUTE FUNCTION refs_changed();
