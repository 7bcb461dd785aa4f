-- The incremental ledger check. Balances move once per INSERT statement (a COPY of a million
-- postings moves each account once, not once per posting), and every statement that writes
-- postings or accounts appends one row of what it changed to ledger_deltas, from the rows it
-- wrote (transition tables), in the same transaction. A timer folds the deltas into the one row
-- of ledger_totals. Two sides are kept apart so that each checks the other:
--   the postings side: count, amount, Σ digest(posting) and Σ (w(credit) - w(debit))·amount;
--   the accounts side: count, Σ balance, Σ w(account)·balance and Σ w(account)·state balance;
-- all sums modulo the prime 2^61 - 1, w(account) a 60-bit weight of the account id. When the
-- stored balances follow the postings, Σ w·balance = Σ (w(credit) - w(debit))·amount, and so for
-- the balance the aggregate state holds; a posting or balance changed behind the ledger's back
-- leaves them apart. The check compares the totals plus the unfolded deltas: O(1) in history.

CREATE FUNCTION ledger_weight(key text) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('x' || substr(md5(key), 1, 15))::bit(60)::bigint
$$;

CREATE FUNCTION ledger_digest(transfer_id text, debit text, credit text, amount bigint, kind text,
                              posted_at timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ledger_weight(transfer_id || '|' || debit || '|' || credit || '|' || amount || '|' || kind || '|'
                         || (extract(epoch FROM posted_at) * 1000000)::bigint)
$$;

CREATE TABLE ledger_totals (
    one           boolean     PRIMARY KEY DEFAULT true CHECK (one),
    postings      bigint      NOT NULL,
    amount        numeric     NOT NULL,
    digests       bigint      NOT NULL,  -- Σ digest(posting) mod p
    moves         bigint      NOT NULL,  -- Σ (w(credit) - w(debit))·amount mod p
    accounts      bigint      NOT NULL,
    balance_total numeric     NOT NULL,  -- Σ balance (0 in a sound ledger)
    balances      bigint      NOT NULL,  -- Σ w(account)·balance mod p
    states        bigint      NOT NULL,  -- Σ w(account)·(state->>'balance') mod p
    folded_at     timestamptz,
    full_check_at timestamptz            -- when the last full check started (its rate limit)
);

-- Appended by the triggers, folded into ledger_totals by the timer: no index, no update.
CREATE TABLE ledger_deltas (
    postings      bigint  NOT NULL DEFAULT 0,
    amount        numeric NOT NULL DEFAULT 0,
    digests       numeric NOT NULL DEFAULT 0,
    moves         numeric NOT NULL DEFAULT 0,
    accounts      bigint  NOT NULL DEFAULT 0,
    balance_total numeric NOT NULL DEFAULT 0,
    balances      numeric NOT NULL DEFAULT 0,
    states        numeric NOT NULL DEFAULT 0
);

-- the totals of what is there now (computed once, here)
INSERT INTO ledger_totals (postings, amount, digests, moves, accounts, balance_total, balances, states)
SELECT p.n, p.amount, p.digests, p.moves, a.n, a.total, a.balances, a.states
FROM (SELECT count(*) AS n, coalesce(sum(amount), 0) AS amount,
             (coalesce(sum(ledger_digest(transfer_id, debit_account, credit_account, amount, kind, posted_at)), 0)
                 % 2305843009213693951)::bigint AS digests,
             ((coalesce(sum((ledger_weight(credit_account) - ledger_weight(debit_account))::numeric * amount), 0)
                 % 2305843009213693951 + 2305843009213693951) % 2305843009213693951)::bigint AS moves
      FROM postings) p,
     (SELECT count(*) AS n, coalesce(sum(balance), 0) AS total,
             ((coalesce(sum(ledger_weight(account_id)::numeric * balance), 0)
                 % 2305843009213693951 + 2305843009213693951) % 2305843009213693951)::bigint AS balances,
             ((coalesce(sum(ledger_weight(account_id)::numeric * coalesce((state->>'balance')::bigint, 0)), 0)
                 % 2305843009213693951 + 2305843009213693951) % 2305843009213693951)::bigint AS states
      FROM accounts) a;

DROP TRIGGER postings_balances ON postings;
DROP FUNCTION postings_move_balances();

CREATE FUNCTION postings_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts a SET balance = a.balance + m.delta, updated_at = now()
      FROM (SELECT account_id, sum(delta) AS delta
              FROM (SELECT debit_account AS account_id, -amount AS delta FROM new_postings
                    UNION ALL SELECT credit_account, amount FROM new_postings) d
             GROUP BY account_id) m
     WHERE a.account_id = m.account_id;
    INSERT INTO ledger_deltas (postings, amount, digests, moves)
    SELECT count(*), coalesce(sum(amount), 0),
           coalesce(sum(ledger_digest(transfer_id, debit_account, credit_account, amount, kind, posted_at)), 0),
           coalesce(sum((ledger_weight(credit_account) - ledger_weight(debit_account))::numeric * amount), 0)
      FROM new_postings;
    RETURN NULL;
END $$;
CREATE TRIGGER postings_written AFTER INSERT ON postings REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION postings_written();

CREATE FUNCTION accounts_opened() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_deltas (accounts, balance_total, balances, states)
    SELECT count(*), coalesce(sum(balance), 0), coalesce(sum(ledger_weight(account_id)::numeric * balance), 0),
           coalesce(sum(ledger_weight(account_id)::numeric * coalesce((state->>'balance')::bigint, 0)), 0)
      FROM new_accounts;
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_opened AFTER INSERT ON accounts REFERENCING NEW TABLE AS new_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_opened();

CREATE FUNCTION accounts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_deltas (balance_total, balances, states)
    SELECT coalesce(sum(n.balance - o.balance), 0),
           coalesce(sum(ledger_weight(n.account_id)::numeric * (n.balance - o.balance)), 0),
           coalesce(sum(ledger_weight(n.account_id)::numeric
                        * (coalesce((n.state->>'balance')::bigint, 0) - coalesce((o.state->>'balance')::bigint, 0))), 0)
      FROM new_accounts n JOIN old_accounts o USING (account_id)
    HAVING bool_or(n.balance <> o.balance OR n.state->'balance' IS DISTINCT FROM o.state->'balance');
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_changed AFTER UPDATE ON accounts REFERENCING OLD TABLE AS old_accounts NEW TABLE AS new_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_changed();

-- an erasure re-keys postings to a pseudonymous account and removes the old account
-- (erase_account): the digests and moves follow the new ids, the old account leaves the totals
CREATE FUNCTION postings_rekeyed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_deltas (amount, digests, moves)
    SELECT coalesce(sum(n.amount - o.amount), 0),
           coalesce(sum(ledger_digest(n.transfer_id, n.debit_account, n.credit_account, n.amount, n.kind, n.posted_at)
                        - ledger_digest(o.transfer_id, o.debit_account, o.credit_account, o.amount, o.kind, o.posted_at)), 0),
           coalesce(sum((ledger_weight(n.credit_account) - ledger_weight(n.debit_account))::numeric * n.amount
                        - (ledger_weight(o.credit_account) - ledger_weight(o.debit_account))::numeric * o.amount), 0)
      FROM new_postings n JOIN old_postings o USING (seq);
    RETURN NULL;
END $$;
CREATE TRIGGER postings_rekeyed AFTER UPDATE ON postings REFERENCING OLD TABLE AS old_postings NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION postings_rekeyed();

CREATE FUNCTION accounts_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_deltas (accounts, balance_total, balances, states)
    SELECT -count(*), -coalesce(sum(balance), 0), -coalesce(sum(ledger_weight(account_id)::numeric * balance), 0),
           -coalesce(sum(ledger_weight(account_id)::numeric * coalesce((state->>'balance')::bigint, 0)), 0)
      FROM old_accounts;
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_removed AFTER DELETE ON accounts REFERENCING OLD TABLE AS old_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_removed();
