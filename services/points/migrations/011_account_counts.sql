-- The accounts by kind, kept as the accounts are opened and erased. The accounts gauge (a timer
-- every few seconds on every worker) counted them with a sequential scan of every account, one
-- per resident who ever earned a point, their lots' states with them; it now reads a row per kind
-- and community.
--
-- An account is opened (INSERT) and erased (its pseudonymous copy inserted, the old row deleted);
-- no statement changes an account's kind or community, but one that did would move its count too.
-- The community is in the key ('' for an account of none: a merchant's), so two transactions move
-- the same count row only when they open accounts of the same community. Each statement writes its
-- counts in key order, so two transactions never deadlock on them; a key no account has has no row.
CREATE TABLE account_counts (
    kind         text   NOT NULL,
    community_id text   NOT NULL,  -- the account's community, '' for none
    n            bigint NOT NULL,
    PRIMARY KEY (kind, community_id)
);

CREATE FUNCTION account_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO account_counts AS c (kind, community_id, n)
        SELECT kind, coalesce(community_id, ''), count(*) FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (kind, community_id) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO account_counts AS c (kind, community_id, n)
        SELECT kind, coalesce(community_id, ''), -count(*) FROM old_rows GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (kind, community_id) DO UPDATE SET n = c.n + EXCLUDED.n;
        DELETE FROM account_counts c
         USING (SELECT DISTINCT kind, coalesce(community_id, '') AS community_id FROM old_rows) AS o
         WHERE c.n = 0 AND (c.kind, c.community_id) = (o.kind, o.community_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER account_counts_insert AFTER INSERT ON accounts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION account_counts_move();
CREATE TRIGGER account_counts_delete AFTER DELETE ON accounts REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION account_counts_move();

-- An UPDATE naming kind or community_id (none does): the row leaves its count for its new one.
-- A row trigger on those columns only, so the balance and state updates of every posting do not
-- fire it.
CREATE FUNCTION account_counts_rekeyed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.kind, coalesce(OLD.community_id, '')) IS DISTINCT FROM (NEW.kind, coalesce(NEW.community_id, '')) THEN
        INSERT INTO account_counts AS c (kind, community_id, n)
        SELECT k, cid, d FROM (VALUES (OLD.kind, coalesce(OLD.community_id, ''), -1),
                                      (NEW.kind, coalesce(NEW.community_id, ''), 1)) AS m(k, cid, d)
        ORDER BY 1, 2
        ON CONFLICT (kind, community_id) DO UPDATE SET n = c.n + EXCLUDED.n;
        DELETE FROM account_counts WHERE n = 0 AND kind = OLD.kind AND community_id = coalesce(OLD.community_id, '');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER account_counts_rekeyed AFTER UPDATE OF kind, community_id ON accounts
    FOR EACH ROW EXECUTE FUNCTION account_counts_rekeyed();

INSERT INTO account_counts (kind, community_id, n)
SELECT kind, coalesce(community_id, ''), count(*) FROM accounts GROUP BY 1, 2;
