-- The party service's tables for the organisation tree (schema "party"). An organisation's row
-- carries its state as jsonb (what the pure domain decides on) next to the columns the queries
-- and the coverage timer read; both are written in one statement, so they never disagree.

-- 党组织: one row per Party organisation, from the street working committee to the building group.
CREATE TABLE orgs (
    org_id         text        PRIMARY KEY,
    kind           text        NOT NULL,
    parent_id      text,
    area_id        text        NOT NULL,
    name           text        NOT NULL,
    secretary_id   text,
    street_id      text,          -- the codes of the area it acts for (a unit's org and a council: its parent's)
    community_id   text,
    grid_id        text,
    established_at timestamptz,
    member_count   int         NOT NULL DEFAULT 0,
    state          jsonb       NOT NULL,
    version        bigint      NOT NULL DEFAULT 1,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orgs_parent ON orgs (parent_id);
CREATE INDEX orgs_kind_street ON orgs (kind, street_id);
CREATE INDEX orgs_community ON orgs (community_id);
CREATE INDEX orgs_branch_grid ON orgs (grid_id) WHERE kind = 'grid_branch';

-- Every event of every organisation, in the order they were applied (its history: 组织关系
-- attached and transferred, 党员中心户).
CREATE TABLE org_history (
    seq         bigserial   PRIMARY KEY,
    org_id      text        NOT NULL,
    event_id    text        NOT NULL UNIQUE,
    type        text        NOT NULL,
    at          timestamptz,
    data        jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX org_history_org ON org_history (org_id, seq);

-- 组织关系: the organisation each member belongs to now, and the grid they live in (coverage).
CREATE TABLE org_members (
    member_id   text        PRIMARY KEY,
    org_id      text        NOT NULL,
    grid_id     text,
    from_org_id text,
    attached_at timestamptz
);
CREATE INDEX org_members_org ON org_members (org_id);
CREATE INDEX org_members_grid ON org_members (grid_id);

-- Coverage gaps reported (party.coverage.gap.v1): once per grid.
CREATE TABLE coverage_gaps (
    grid_id      text        PRIMARY KEY,
    community_id text,
    street_id    text,
    members      int         NOT NULL,
    reported_at  timestamptz NOT NULL
);
