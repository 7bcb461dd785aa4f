-- The kit's tables, created in each service's own schema.

-- Inbox: every consumed message, by (source, id), recorded in the same transaction as the
-- state change it caused. A repeated (source, id) is a duplicate and is skipped.
CREATE TABLE inbox (
    source       text        NOT NULL,
    id           text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id)
);

-- Outbox: records to publish, written in the same transaction as the state change.
-- The relay publishes them in seq order and marks them; published rows are kept for a
-- retention period so a replayed command can be answered with the events it caused.
CREATE TABLE outbox (
    seq          bigserial   PRIMARY KEY,
    topic        text        NOT NULL,
    key          text,
    value        bytea       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '[]',
    message_type text        NOT NULL DEFAULT '',
    causation_id text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_causation ON outbox (causation_id) WHERE causation_id IS NOT NULL;

-- Aggregate state snapshots (jsonb), for services that keep their aggregates as documents.
CREATE TABLE aggregates (
    kind       text        NOT NULL,
    id         text        NOT NULL,
    version    bigint      NOT NULL,
    state      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, id)
);
