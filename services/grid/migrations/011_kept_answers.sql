-- Each case as the case list answers it, kept beside its columns (the kit's kit_keep_answers_on):
-- a page of 50 cases was 2,700 values to decode, put in dicts and encode again on every request,
-- half of the list's CPU in the worker. The fields are the list's (queries.py _CASE_FIELDS, which
-- a test checks); the trigger writes them again whenever a case is written or erased.
ALTER TABLE cases ADD COLUMN answer text;
SELECT kit_keep_answers_on('cases', 'answer',
    'case_id', 'status', 'category', 'grade', 'urgent', 'grid_id', 'community_id', 'street_id', 'description',
    'lat', 'lon', 'address', 'reporters', 'duplicates', 'media', 'level', 'joint_mediation', 'department',
    'assignee_id', 'due_stage', 'due_at', 'overdue', 'overdue_count', 'rework_count', 'dismissal_reason',
    'duplicate_of', 'result', 'on_time', 'handling_seconds', 'satisfaction', 'reported_at', 'registered_at',
    'dispatched_at', 'handled_at', 'closed_at', 'updated_at', 'version', 'accepted_at', 'contacted_at',
    'controlled_at', 'accept_due_at', 'contact_due_at', 'control_due_at', 'return_pending', 'return_count',
    'extension_until', 'extension_count', 'exclusion_pending', 'excluded', 'supervision_count', 'last_card',
    'listed', 'delisted_at', 'resolved');
