-- The retention timer deletes the log's oldest rows by when they were recorded, a batch per
-- round: without an index each round (every few minutes) read the whole log, which holds years
-- of a district's events, to find them; with it a round reads the rows it deletes.
CREATE INDEX event_log_recorded_at ON event_log (recorded_at);
