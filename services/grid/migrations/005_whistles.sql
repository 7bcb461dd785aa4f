-- 吹哨报到: one row per whistle. The state is the pure domain's WhistleState as jsonb (its
-- summons: each summoned department's report, missing record and rating), kept by the kit's
-- AggregateStore; the other columns are derived from it in the same upsert, for the queries and
-- the missed-department timer (next_check_at: the whistle's report_by while a department may
-- still be recorded missing).
CREATE TABLE whistles (
    whistle_id    text        PRIMARY KEY,
    version       bigint      NOT NULL,
    state         jsonb       NOT NULL,
    street_id     text        NOT NULL,
    case_id       text,
    blown_at      timestamptz NOT NULL,
    report_by     timestamptz NOT NULL,
    is_open       boolean     NOT NULL,   -- a summoned department has neither reported nor been recorded missing
    next_check_at timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX whistles_next_check ON whistles (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX whistles_street ON whistles (street_id, blown_at DESC);
CREATE INDEX whistles_case ON whistles (case_id) WHERE case_id IS NOT NULL;
CREATE INDEX whistles_blown_at ON whistles (blown_at DESC, whistle_id);
-- the whistles that summoned a department: state->'summons' @> '[{"department": "..."}]'
CREATE INDEX whistles_summons ON whistles USING gin ((state->'summons') jsonb_path_ops);
