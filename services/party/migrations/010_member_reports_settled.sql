-- A follow-up the report timer has done with because the member's unit had reported by the
-- deadline. The timer takes the oldest due follow-ups first, a batch a round; a member whose unit
-- reported was neither flagged nor marked, so stayed due: once a batch's worth of them had
-- gathered, every round took the same ones and flagged nobody, and the members after them were
-- never reported overdue. Those it settles now leave both due indexes; a new registration or move
-- (a new window) clears the mark.
ALTER TABLE member_follow_ups ADD COLUMN report_settled boolean NOT NULL DEFAULT false;
DROP INDEX member_follow_ups_due;
DROP INDEX member_follow_ups_move_due;
CREATE INDEX member_follow_ups_due ON member_follow_ups (registered_at)
    WHERE NOT overdue_flagged AND NOT report_settled AND report_due_at IS NULL;
CREATE INDEX member_follow_ups_move_due ON member_follow_ups (report_due_at)
    WHERE NOT overdue_flagged AND NOT report_settled AND report_due_at IS NOT NULL;
