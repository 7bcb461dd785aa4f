-- Organisational life (三会一课, 主题党日), members' commitments (承诺、践诺、评诺) and the member
-- half of 双报到 (schema "party"). Each state row carries its jsonb state (what the pure domain
-- decides on) next to the columns the queries, the timers and the metrics read.

-- An organisation's life: its meetings and the (kind, period) pairs flagged overdue.
CREATE TABLE org_life (
    org_id     text        PRIMARY KEY,
    state      jsonb       NOT NULL,
    version    bigint      NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every meeting held (party.org_life.held.v1) and every period missed (party.org_life.overdue.v1),
-- one row each: the route's list and the metrics.
CREATE TABLE org_life_log (
    event_id    text        PRIMARY KEY,
    org_id      text        NOT NULL,
    kind        text        NOT NULL,
    held        boolean     NOT NULL,       -- true: a meeting held; false: a period missed
    meeting_id  text,
    period      text        NOT NULL,       -- the Shanghai month (2026-11) or quarter (2026-Q4)
    held_at     timestamptz,
    attendees   int,
    absentees   int,
    at          timestamptz NOT NULL
);
CREATE INDEX org_life_log_org ON org_life_log (org_id, period);

-- A member's commitments, all years.
CREATE TABLE commitments (
    member_id  text        PRIMARY KEY,
    state      jsonb       NOT NULL,
    version    bigint      NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A registered member (orders.member.registered.v1) as the party service follows them.
CREATE TABLE member_follow_ups (
    member_id       text        PRIMARY KEY,
    community_id    text        NOT NULL,
    unit_id         text        NOT NULL,
    registered_at   timestamptz NOT NULL,
    overdue_flagged boolean     NOT NULL DEFAULT false,
    state           jsonb       NOT NULL,
    version         bigint      NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX member_follow_ups_due ON member_follow_ups (registered_at) WHERE NOT overdue_flagged;

-- What the quarterly feedback counts of each order a member served (orders.events.v1): when it
-- was completed, and its 考单 (passed, rating).
CREATE TABLE member_orders (
    order_id     text        PRIMARY KEY,
    member_id    text        NOT NULL,
    completed_at timestamptz,
    evaluated_at timestamptz,
    passed       boolean,
    rating       int
);
CREATE INDEX member_orders_member ON member_orders (member_id);
