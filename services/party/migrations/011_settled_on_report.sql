-- A member's follow-up is settled when the service learns that the member's unit has reported
-- (its report, or a registration or move to a unit that has reported), in that message's
-- transaction, no longer by the report timer once the deadline has passed: the timer did so
-- without an event, so a rebuild, which replays the messages and the rounds that published,
-- could not settle them again. A unit's report settles the follow-ups of its members through
-- this index; the follow-ups whose unit has reported already are settled here.
CREATE INDEX member_follow_ups_unit ON member_follow_ups (unit_id) WHERE NOT overdue_flagged AND NOT report_settled;
UPDATE member_follow_ups f
   SET report_settled = true, state = jsonb_set(state, '{report_settled}', 'true')
 WHERE NOT overdue_flagged AND NOT report_settled AND EXISTS (SELECT 1 FROM units u WHERE u.unit_id = f.unit_id);
