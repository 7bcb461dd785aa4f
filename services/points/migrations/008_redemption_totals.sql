-- What a merchant took in redemptions in all (how many, how many points), kept as postings are
-- written, so that a page of its redemptions reads its totals from one row rather than summing
-- and counting its whole history. Kept by statement triggers beside the ledger's own; an
-- erasure that re-keys a merchant's postings moves its totals to the new id.
CREATE TABLE redemption_totals (
    account_id  text   PRIMARY KEY,
    redemptions bigint NOT NULL,
    points      bigint NOT NULL
);

INSERT INTO redemption_totals (account_id, redemptions, points)
SELECT credit_account, count(*), sum(amount) FROM postings WHERE kind = 'redemption' GROUP BY credit_account;

CREATE FUNCTION redemptions_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO redemption_totals AS t (account_id, redemptions, points)
    SELECT credit_account, count(*), sum(amount) FROM new_postings WHERE kind = 'redemption' GROUP BY credit_account
    ON CONFLICT (account_id) DO UPDATE SET redemptions = t.redemptions + EXCLUDED.redemptions,
                                           points = t.points + EXCLUDED.points;
    RETURN NULL;
END $$;
CREATE TRIGGER redemptions_written AFTER INSERT ON postings REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION redemptions_written();

CREATE FUNCTION redemptions_rekeyed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO redemption_totals AS t (account_id, redemptions, points)
    SELECT account_id, sum(n), sum(points)
      FROM (SELECT credit_account AS account_id, 1 AS n, amount AS points FROM new_postings WHERE kind = 'redemption'
            UNION ALL
            SELECT credit_account, -1, -amount FROM old_postings WHERE kind = 'redemption') d
     GROUP BY account_id HAVING sum(n) <> 0 OR sum(points) <> 0
    ON CONFLICT (account_id) DO UPDATE SET redemptions = t.redemptions + EXCLUDED.redemptions,
                                           points = t.points + EXCLUDED.points;
    DELETE FROM redemption_totals WHERE redemptions = 0 AND points = 0
       AND account_id IN (SELECT credit_account FROM old_postings WHERE kind = 'redemption');
    RETURN NULL;
END $$;
CREATE TRIGGER redemptions_rekeyed AFTER UPDATE ON postings REFERENCING OLD TABLE AS old_postings NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION redemptions_rekeyed();
