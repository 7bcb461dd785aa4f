-- Assessment (考核) projection. Unqualified names: these live in the `assessment` schema.

-- Every consumed upstream event (grid, orders, points) and every review this service
-- recorded, verbatim. Indicator values are recomputed from this log by replaying it in
-- event-time order through the pure domain, so they depend on the history alone — not on
-- the order Kafka delivered it in — and a duplicate (same source and id) is never stored twice.
CREATE TABLE event_log (
    source      text        NOT NULL,
    id          text        NOT NULL,
    topic       text        NOT NULL,
    type        text        NOT NULL,
    data        jsonb       NOT NULL,
    time        timestamptz NOT NULL,  -- the envelope time
    occurred_at timestamptz NOT NULL,  -- when the fact occurred (data field, else envelope time)
    type_rank   integer     NOT NULL,  -- lifecycle order for events of the same instant
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id)
);
CREATE INDEX event_log_replay_order ON event_log (occurred_at, type_rank, source, id);

-- Schemes introduced by assessment.scheme.change.v1 (the default data file is not stored:
-- it is read at start-up and is always the fallback).
CREATE TABLE schemes (
    scheme_id      text        PRIMARY KEY,
    effective_from timestamptz NOT NULL,
    base_scheme_id text,
    definition     jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

-- Each close of a period under a scheme (the last one is what queries show by default).
CREATE TABLE period_closes (
    period     text        NOT NULL,
    scheme_id  text        NOT NULL,
    closed_at  timestamptz NOT NULL,
    scorecards integer     NOT NULL,
    alerts     integer     NOT NULL,
    published  integer     NOT NULL,  -- scorecards whose content was new or changed
    trigger    text        NOT NULL,  -- command | timer
    PRIMARY KEY (period, scheme_id)
);

-- Published scorecards, by deterministic id (entity, period, scheme). content_hash is the
-- hash of the published payload: a re-close with the same content publishes nothing.
CREATE TABLE scorecards (
    scorecard_id text             PRIMARY KEY,
    entity_type  text             NOT NULL,
    entity_id    text             NOT NULL,
    period       text             NOT NULL,
    scheme_id    text             NOT NULL,
    parent_id    text,
    score        double precision,
    rank         integer,
    grade        text,
    card         jsonb            NOT NULL,
    content_hash text             NOT NULL,
    envelope_id  text             NOT NULL,
    published_at timestamptz      NOT NULL,
    revision     integer          NOT NULL DEFAULT 1
);
CREATE INDEX scorecards_entity ON scorecards (entity_type, entity_id, period);
CREATE INDEX scorecards_ranking ON scorecards (period, scheme_id, entity_type, parent_id, rank);

-- Alerts (约谈 warnings) currently standing for a published scorecard.
CREATE TABLE alerts (
    alert_id     text             PRIMARY KEY,
    scorecard_id text             NOT NULL,
    entity_type  text             NOT NULL,
    entity_id    text             NOT NULL,
    period       text             NOT NULL,
    scheme_id    text             NOT NULL,
    indicator    text             NOT NULL,
    value        double precision NOT NULL,
    threshold    double precision NOT NULL,
    direction    text,
    alert        jsonb            NOT NULL,
    content_hash text             NOT NULL,
    envelope_id  text             NOT NULL,
    raised_at    timestamptz      NOT NULL
);
CREATE INDEX alerts_period ON alerts (period, entity_type, indicator);

-- Marks of periodic work (the period-close timer remembers up to when it has closed).
CREATE TABLE timer_marks (
    name text        PRIMARY KEY,
    at   timestamptz NOT NULL
);
