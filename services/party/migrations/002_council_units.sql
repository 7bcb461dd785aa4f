-- 区域化党建 and 双报到 of units (schema "party"). Each row carries the pure domain's state as
-- jsonb, kept by the kit's AggregateStore; the other columns are derived from it in the same
-- upsert, for the queries and the council timer.

-- A regional council (大工委 / 大党委): its compositions, meetings and resolutions. next_check_at
-- is when the council timer next has something to say (the end of a 公示, of a quarter not yet
-- settled, an open resolution's deadline).
CREATE TABLE councils (
    council_id    text        PRIMARY KEY,
    version       bigint      NOT NULL,
    state         jsonb       NOT NULL,
    level         text        NOT NULL,
    area_id       text        NOT NULL,
    effective     boolean     NOT NULL,
    next_check_at timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX councils_next_check ON councils (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX councils_area ON councils (area_id);

-- A resident unit (驻区单位) that reported (单位报到) to the community where it sits, with its
-- co-building agreements (共建协议) in its state.
CREATE TABLE units (
    unit_id      text        PRIMARY KEY,
    version      bigint      NOT NULL,
    state        jsonb       NOT NULL,
    name         text        NOT NULL,
    community_id text        NOT NULL,
    street_id    text,
    org_id       text,
    reported_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX units_community ON units (community_id, unit_id);
-- the unit holding an agreement: state->'agreements' @> '[{"agreement_id": "..."}]'
CREATE INDEX units_agreements ON units USING gin ((state->'agreements') jsonb_path_ops);

-- A project of a community's 项目清单: posted → claimed → completed → rated.
CREATE TABLE projects (
    project_id   text        PRIMARY KEY,
    version      bigint      NOT NULL,
    state        jsonb       NOT NULL,
    community_id text        NOT NULL,
    status       text        NOT NULL,
    unit_id      text,
    posted_at    timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_community ON projects (community_id, status, posted_at DESC);
