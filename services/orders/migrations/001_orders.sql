-- The orders service's tables (schema "orders"). Each aggregate row carries its state as jsonb
-- (what the pure domain decides on) next to the columns the queries, the expiry timer and
-- the dispatch candidates read. Both are written in one statement, so they never disagree.

-- 服务订单: one row per order.
CREATE TABLE orders (
    order_id            text        PRIMARY KEY,
    status              text        NOT NULL,
    category            text        NOT NULL,
    community_id        text        NOT NULL,
    grid_id             text        NOT NULL,
    resident_id         text        NOT NULL,
    description         text        NOT NULL DEFAULT '',
    source_case_id      text,
    attempt             int         NOT NULL DEFAULT 0,
    assignee_id         text,
    post_id             text,
    dispatched_by       text,
    accept_by           timestamptz,
    placed_at           timestamptz,
    first_dispatched_at timestamptz,
    dispatched_at       timestamptz,
    accepted_at         timestamptz,
    completed_at        timestamptz,
    evaluated_at        timestamptz,
    cancelled_at        timestamptz,
    service_minutes     int,
    rating              int,
    passed              boolean,
    dispatch_misses     int         NOT NULL DEFAULT 0,
    last_miss_at        timestamptz,
    state               jsonb       NOT NULL,
    version             bigint      NOT NULL DEFAULT 1,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
-- exactly one order per grid case (网格发现 → 点单)
CREATE UNIQUE INDEX orders_source_case ON orders (source_case_id) WHERE source_case_id IS NOT NULL;
CREATE INDEX orders_community_status ON orders (community_id, status, category);
CREATE INDEX orders_assignee_held ON orders (assignee_id) WHERE status IN ('dispatched', 'accepted');
CREATE INDEX orders_due_expiry ON orders (accept_by) WHERE status = 'dispatched';
CREATE INDEX orders_waiting ON orders (community_id, category, placed_at)
    WHERE status IN ('placed', 'declined', 'dispatch_expired');
CREATE INDEX orders_status ON orders (status, placed_at);

-- Every event of every order, in the order they were applied (the order's history).
CREATE TABLE order_history (
    seq          bigserial   PRIMARY KEY,
    order_id     text        NOT NULL,
    event_id     text        NOT NULL UNIQUE,
    type         text        NOT NULL,
    at           timestamptz,
    data         jsonb       NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_history_order ON order_history (order_id, seq);

-- 在职党员 (双报到): one row per registered member.
CREATE TABLE members (
    member_id     text        PRIMARY KEY,
    community_id  text        NOT NULL,
    unit_id       text        NOT NULL,
    name          text,
    unit_name     text,
    registered_at timestamptz,
    state         jsonb       NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX members_community ON members (community_id);

-- 岗位认领: one row per claimed post (released posts stay, with status 'released').
CREATE TABLE posts (
    post_id      text        PRIMARY KEY,
    member_id    text        NOT NULL,
    community_id text        NOT NULL,
    categories   text[]      NOT NULL,
    capacity     int         NOT NULL,
    status       text        NOT NULL,
    title        text,
    claimed_at   timestamptz,
    released_at  timestamptz,
    state        jsonb       NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX posts_community_active ON posts (community_id) WHERE status = 'claimed';
CREATE INDEX posts_member ON posts (member_id);

-- Per-member open order counts (orders dispatched to or accepted by the member): the load
-- automatic dispatch balances. A view over orders, so it can never drift from them.
CREATE VIEW member_open_orders AS
    SELECT assignee_id AS member_id, count(*)::int AS open_orders
      FROM orders
     WHERE status IN ('dispatched', 'accepted') AND assignee_id IS NOT NULL
     GROUP BY assignee_id;
