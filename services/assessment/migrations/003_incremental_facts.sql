-- Counters accumulated as events arrive, instead of a replay of the whole log at every close.
--
-- Each consumed event is folded once, in the transaction that records it in event_log (the
-- inbox's), through the pure domain (services/assessment/domain/incremental.py): its counter
-- deltas are added to `facts`, the refs it wrote are upserted in `refs`, and what it takes to
-- undo it is kept in event_log.undo. An event that arrives after events that occurred later
-- (another topic's partition lagging, a redelivery) has those later events unwound (their undo)
-- and folded again after it, so that the tables always equal one replay of the log in replay
-- order: a close reads one period's rows, never the history.

-- The counters, per (period, entity, fact). `value` is the exact (numeric) sum of the deltas;
-- `n` how many deltas built it (a replay has the key iff n > 0, even when value is 0: an
-- entity whose counters sum to 0 still has a scorecard). A month, its quarter and its year each
-- have their own rows (an event's delta is written to every period it falls in).
-- Filling it by COPY: one row per key with n >= 1 and value the sum of its deltas.
CREATE TABLE facts (
    period      text    NOT NULL,  -- 2026-11, 2026-Q4 or 2026
    entity_type text    NOT NULL,  -- grid, community, street, grid_worker, member, unit, department
    entity_id   text    NOT NULL,
    fact        text    NOT NULL,  -- a counter of the catalogue (cases_received, ...)
    value       numeric NOT NULL,
    n           integer NOT NULL CHECK (n >= 0),
    PRIMARY KEY (period, entity_type, entity_id, fact)
);

-- What earlier events established about a case, an order, a member, a unit, a worker, an
-- account, a whistle, an organisation, a grid, a council, a project or a member's duty: the
-- refs of services/assessment/domain/facts/refs.py, as model_dump(mode="json") under their kind.
-- The live aggregates: a provisional scorecard and a close read the grids' and units' refs (standing
-- counts) and the refs of the workers and members they score (coverage, ranking parent).
CREATE TABLE refs (
    kind   text  NOT NULL,  -- case, order, member, unit, worker, account, whistle, org, grid, council, project, duty
    ref_id text  NOT NULL,
    data   jsonb NOT NULL,
    PRIMARY KEY (kind, ref_id)
);

-- The event log stays: the audit trail of what was counted and the source the counters are
-- rebuilt from (empty facts and refs, set undo to NULL: the worker folds the log again at
-- start-up), pruned by the retention rule. `undo`
-- is what folding the row wrote over, as [[kind, ref_id, data or null (created)], ...];
-- NULL: the row is not folded yet (every row recorded before this migration: the worker folds
-- them at start-up).
ALTER TABLE event_log ADD COLUMN undo jsonb;
CREATE INDEX event_log_unfolded ON event_log (occurred_at, type_rank, source, id) WHERE undo IS NULL;
