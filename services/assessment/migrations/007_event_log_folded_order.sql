-- The folded rows in replay order, for the tail a late event unwinds (the folded rows after
-- it). The index over every row made that read walk the unfolded rows after the key too: while
-- a log recorded unfolded (counters emptied to be folded again, a generated history) is
-- folded chunk by chunk, every chunk read every row after it, so that folding the log cost the
-- square of its length. The unfolded rows have their own index (event_log_unfolded); together
-- the two cover what the index over every row did, and no query but a test's full read needs
-- the log in order across both.
CREATE INDEX event_log_folded ON event_log (occurred_at, type_rank, source, id) WHERE undo IS NOT NULL;
DROP INDEX event_log_replay_order;
