-- Consent to a redemption: a resident's short-lived, single-use code, stored only as its hash.
CREATE TABLE redemption_codes (
    code_hash   text        PRIMARY KEY,       -- sha256 of the code, hex; the code itself is never stored
    account_id  text        NOT NULL,          -- the resident account it allows a redemption from
    amount      bigint      NOT NULL CHECK (amount > 0),  -- the most it allows
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_by     text,                          -- the transfer that consumed it
    used_at     timestamptz
);
CREATE INDEX redemption_codes_expiry ON redemption_codes (expires_at);

-- Adjustments over 100 points wait here for a second, different operator's approval.
CREATE TABLE adjustment_requests (
    transfer_id  text        PRIMARY KEY,
    operator_id  text        NOT NULL,
    request      jsonb       NOT NULL,          -- the points.adjustment.requested.v1 payload
    requested_at timestamptz NOT NULL,
    approver_id  text,
    approved_at  timestamptz
);
