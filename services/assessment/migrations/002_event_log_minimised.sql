-- The event log keeps no personal free text, places, media or names of the events it records
-- (schemas.pii.minimised, applied to every new row): the rows recorded before are trimmed alike.
-- Generated from the x-pii tags of the consumed types at the time of writing.
UPDATE event_log SET data = data - ARRAY['comment'] WHERE type = 'assessment.review.recorded.v1';
UPDATE event_log SET data = data - ARRAY['reason'] WHERE type = 'grid.case.dismissed.v1';
UPDATE event_log SET data = data - ARRAY['comment'] WHERE type = 'grid.case.feedback.v1';
UPDATE event_log SET data = data - ARRAY['description', 'location'] WHERE type = 'grid.case.registered.v1';
UPDATE event_log SET data = data - ARRAY['description', 'location', 'media'] WHERE type = 'grid.case.reported.v1';
UPDATE event_log SET data = data - ARRAY['comment'] WHERE type = 'grid.case.verified.v1';
UPDATE event_log SET data = data - ARRAY['notes', 'route'] WHERE type = 'grid.patrol.logged.v1';
UPDATE event_log SET data = data - ARRAY['name'] WHERE type = 'orders.member.registered.v1';
UPDATE event_log SET data = data - ARRAY['note'] WHERE type = 'orders.order.completed.v1';
UPDATE event_log SET data = data - ARRAY['reason'] WHERE type = 'orders.order.declined.v1';
UPDATE event_log SET data = data - ARRAY['comment'] WHERE type = 'orders.order.evaluated.v1';
UPDATE event_log SET data = data - ARRAY['description'] WHERE type = 'orders.order.placed.v1';
UPDATE event_log SET data = data - ARRAY['detail'] WHERE type = 'points.transfer.posted.v1';
