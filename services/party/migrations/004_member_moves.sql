-- A member who moved (orders.member.moved.v1) reports to the new community by the move's
-- deadline: the report timer looks for it beside the window after a registration.
ALTER TABLE member_follow_ups ADD COLUMN report_due_at timestamptz;
CREATE INDEX member_follow_ups_move_due ON member_follow_ups (report_due_at)
    WHERE NOT overdue_flagged AND report_due_at IS NOT NULL;
