-- The grid service's tables (schema grid). The case state is the pure domain's CaseState as
-- jsonb; next_check_at is when the overdue timer next has something to say about the case.
CREATE TABLE case_state (
    case_id       text        PRIMARY KEY,
    version       integer     NOT NULL,
    state         jsonb       NOT NULL,
    next_check_at timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_state_next_check ON case_state (next_check_at) WHERE next_check_at IS NOT NULL;

-- Projection: one row per case (案卷), for queries, Open311 and metrics.
CREATE TABLE cases (
    case_id          text        PRIMARY KEY,
    version          integer     NOT NULL,
    status           text        NOT NULL,
    is_open          boolean     NOT NULL,
    category         text        NOT NULL,
    grade            text,
    urgent           boolean     NOT NULL DEFAULT false,
    grid_id          text        NOT NULL,
    community_id     text        NOT NULL,
    street_id        text        NOT NULL,
    description      text        NOT NULL,
    lat              double precision NOT NULL,
    lon              double precision NOT NULL,
    address          text        NOT NULL DEFAULT '',
    reporters        jsonb       NOT NULL DEFAULT '[]',   -- the reporter first, then co-reporters of duplicates
    duplicates       jsonb       NOT NULL DEFAULT '[]',   -- ids of dismissed duplicate reports
    media            jsonb       NOT NULL DEFAULT '[]',
    level            text        NOT NULL,                -- community | street | district
    joint_mediation  boolean     NOT NULL DEFAULT false,
    department       text,
    assignee_id      text,
    due_stage        text,                                -- stage of the open deadline
    due_at           timestamptz,                         -- when the open deadline falls due
    overdue          boolean     NOT NULL DEFAULT false,  -- a deadline of the case was missed (超期)
    overdue_count    integer     NOT NULL DEFAULT 0,      -- deadlines reported overdue
    rework_count     integer     NOT NULL DEFAULT 0,
    dismissal_reason text,
    duplicate_of     text,
    result           text,
    on_time          boolean,
    handling_seconds integer,
    satisfaction     text,
    reported_at      timestamptz NOT NULL,
    registered_at    timestamptz,
    dispatched_at    timestamptz,
    handled_at       timestamptz,
    closed_at        timestamptz,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX cases_grid ON cases (grid_id, status);
CREATE INDEX cases_community ON cases (community_id, status);
CREATE INDEX cases_street ON cases (street_id, status);
CREATE INDEX cases_status_category ON cases (status, category);
CREATE INDEX cases_reported_at ON cases (reported_at DESC, case_id);
CREATE INDEX cases_open_near ON cases (category, lat, lon) WHERE is_open;

-- Every event of a case, in order (the case's history).
CREATE TABLE case_history (
    case_id     text        NOT NULL,
    seq         integer     NOT NULL,       -- the case version after the event
    event_id    text        NOT NULL UNIQUE,
    type        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    data        jsonb       NOT NULL,
    PRIMARY KEY (case_id, seq)
);

-- Patrol logs (巡查), by patrol id.
CREATE TABLE patrols (
    patrol_id      text        PRIMARY KEY,
    grid_id        text        NOT NULL,
    community_id   text        NOT NULL,
    street_id      text        NOT NULL,
    grid_worker_id text        NOT NULL,
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz NOT NULL,
    notes          text        NOT NULL DEFAULT '',
    route          jsonb       NOT NULL DEFAULT '[]',
    logged_at      timestamptz NOT NULL
);
CREATE INDEX patrols_grid ON patrols (grid_id, started_at DESC);
CREATE INDEX patrols_worker ON patrols (grid_worker_id, started_at DESC);
