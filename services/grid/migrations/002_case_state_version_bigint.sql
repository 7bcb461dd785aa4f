-- case_state is kept by the kit's AggregateStore, whose version column is a bigint (one more
-- per save; the number of events applied stays in the state itself).
ALTER TABLE case_state ALTER COLUMN version TYPE bigint;
