-- Reads by who the caller is (issue 14): a resident lists the cases they reported (reporters
-- containing them), a department officer the cases dispatched to their departments.
CREATE INDEX cases_reporters ON cases USING gin (reporters jsonb_path_ops);
CREATE INDEX cases_department ON cases (department, reported_at DESC) WHERE dispatched_at IS NOT NULL;
