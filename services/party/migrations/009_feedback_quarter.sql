-- The latest quarter whose feedback (双重管理) a member was given, beside their follow-up, with an
-- index. The member_feedback timer (every hour) looks for the members registered before the last
-- quarter's end without its feedback: it walked every member in id order, reading each one's
-- state for its quarters, and once the quarter's feedback had gone out (most of the time) found
-- none after reading them all. It now reads through this index the members whose latest quarter
-- is another one (those without the quarter's feedback are among them), however many members have
-- had it. The column is derived from the state in the same upsert (services/party/projection/life.py).
ALTER TABLE member_follow_ups ADD COLUMN feedback_quarter text NOT NULL DEFAULT '';  -- '' for none yet
UPDATE member_follow_ups
   SET feedback_quarter = (SELECT max(q COLLATE "C") FROM jsonb_array_elements_text(state->'feedback_quarters') AS q)
 WHERE jsonb_typeof(state->'feedback_quarters') = 'array' AND jsonb_array_length(state->'feedback_quarters') > 0;
CREATE INDEX member_follow_ups_feedback ON member_follow_ups (feedback_quarter);
