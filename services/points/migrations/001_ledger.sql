-- 道德银行 moral bank: the double-entry ledger of the points service (schema "points").

-- Accounts: one row per account. ``balance`` is derived from the postings (the trigger on
-- postings keeps it, in the same transaction); ``state`` is the domain's Account (earning lots,
-- cap counters) as jsonb. Only issuer accounts may go below zero.
CREATE TABLE accounts (
    account_id    text        PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('resident', 'merchant', 'issuer')),
    holder_id     text        NOT NULL,
    community_id  text,
    balance       bigint      NOT NULL DEFAULT 0,
    state         jsonb       NOT NULL,
    oldest_lot_at timestamptz,            -- earliest earning date of a lot with points left (expiry scan)
    opened_at     timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_one_per_holder UNIQUE (kind, holder_id),
    CONSTRAINT accounts_balance_floor CHECK (kind = 'issuer' OR balance >= 0)
);
CREATE INDEX accounts_expiry ON accounts (oldest_lot_at) WHERE kind = 'resident' AND oldest_lot_at IS NOT NULL;

-- Postings: append-only. Each row moves ``amount`` from ``debit_account`` to ``credit_account``.
CREATE TABLE postings (
    seq             bigserial   PRIMARY KEY,
    transfer_id     text        NOT NULL UNIQUE,
    debit_account   text        NOT NULL REFERENCES accounts (account_id),
    credit_account  text        NOT NULL REFERENCES accounts (account_id),
    amount          bigint      NOT NULL CHECK (amount > 0),
    kind            text        NOT NULL CHECK (kind IN ('award', 'redemption', 'expiry', 'adjustment')),
    rule            text,
    category        text,
    community_id    text,
    source          text,
    source_event_id text,
    operator_id     text,
    reason          text,        -- the operator's reason of an adjustment
    lot_id          text,
    account_id      text,        -- the record key: the resident or merchant side
    posted_at       timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    event           jsonb       NOT NULL, -- the points.transfer.posted.v1 payload as published
    CONSTRAINT postings_two_accounts CHECK (debit_account <> credit_account)
);
CREATE INDEX postings_debit ON postings (debit_account, seq);
CREATE INDEX postings_credit ON postings (credit_account, seq);
CREATE INDEX postings_kind_credit ON postings (kind, credit_account, seq);

-- Postings are never edited or deleted: corrections are new adjustment transfers.
CREATE FUNCTION postings_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'postings are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER postings_no_update BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION postings_are_immutable();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION postings_are_immutable();

-- Balances follow the postings in the same transaction (and the floor CHECK guards them).
CREATE FUNCTION postings_move_balances() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts SET balance = balance - NEW.amount, updated_at = now() WHERE account_id = NEW.debit_account;
    UPDATE accounts SET balance = balance + NEW.amount, updated_at = now() WHERE account_id = NEW.credit_account;
    RETURN NEW;
END $$;
CREATE TRIGGER postings_balances AFTER INSERT ON postings
    FOR EACH ROW EXECUTE FUNCTION postings_move_balances();

-- What each posting adds to (or, by correction, takes from) an account's earned points: 好人榜.
CREATE TABLE earnings (
    transfer_id  text        PRIMARY KEY REFERENCES postings (transfer_id),
    account_id   text        NOT NULL REFERENCES accounts (account_id),
    amount       bigint      NOT NULL,
    community_id text,
    earned_at    timestamptz NOT NULL,
    month        text        NOT NULL,   -- Shanghai calendar month, 2026-11
    year         text        NOT NULL    -- Shanghai calendar year, 2026
);
CREATE INDEX earnings_month ON earnings (month, community_id);
CREATE INDEX earnings_year ON earnings (year, community_id);

-- Deeds (道德日记): 申报 → 评审 → 兑现.
CREATE TABLE deeds (
    deed_id      text        PRIMARY KEY,
    account_id   text        NOT NULL REFERENCES accounts (account_id),
    community_id text        NOT NULL,
    category     text        NOT NULL,
    status       text        NOT NULL,
    points       int,
    transfer_id  text,
    refused_reason text,
    state        jsonb       NOT NULL,
    submitted_at timestamptz,
    reviewed_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deeds_account ON deeds (account_id);
CREATE INDEX deeds_approved ON deeds (status) WHERE status = 'approved';

-- Facts of other services kept until the event that decides an award arrives.
-- Orders: category, community and minutes, when the evaluation does not carry them.
CREATE TABLE order_facts (
    order_id        text PRIMARY KEY,
    category        text,
    community_id    text,
    service_minutes int
);

-- Grid reports: the reporter of a case until it is registered (award) or dismissed; either
-- order of arrival works: a registration that comes first waits here for its report.
CREATE TABLE grid_reports (
    case_id        text PRIMARY KEY,
    reported       jsonb,          -- grid.case.reported.v1 data
    outcome        text,           -- registered | dismissed
    registered     jsonb,          -- {"source", "id", "time", "data"} of grid.case.registered.v1
    awarded        boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
