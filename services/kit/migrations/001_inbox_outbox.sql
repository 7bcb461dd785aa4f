-- The kit's tables, created in each service's own schema.

-- Inbox: every consumed message, by (source, id), recorded in the same transaction as the
-- state change it caused. A repeated (source, id) is a duplicate and is skipped.
-- (Rows are kept: a duplicate can arrive any time. Prune by processed_at only beyond the
-- longest redelivery window you accept, e.g. the topics' retention.)
CREATE TABLE inbox (
    source       text        NOT NULL,
    id           text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id)
);

-- Outbox: records to publish, written in the same transaction as the state change.
-- The relay publishes them in seq order and deletes what the broker acknowledged.
CREATE TABLE outbox (
    seq          bigserial   PRIMARY KEY,
    topic        text        NOT NULL,
    key          text,
    value        bytea       NOT NULL,
    headers      jsonb,      -- NULL: the CloudEvents content-type header only
    message_type text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- Every published row is deleted, so the table is all churn: vacuum it early and without
-- throttling, or the relay's ordered scan wades through dead index entries.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
                        autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0,
                        autovacuum_analyze_threshold = 10000);

-- What a command sent over HTTP produced, so that sending it again is answered with the
-- same events (idempotent by command id).
CREATE TABLE command_outcomes (
    source      text        NOT NULL,
    id          text        NOT NULL,
    events      jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id)
);

-- Aggregate state snapshots (jsonb), for services that keep their aggregates as documents.
CREATE TABLE aggregates (
    kind       text        NOT NULL,
    id         text        NOT NULL,
    version    bigint      NOT NULL,
    state      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, id)
);
