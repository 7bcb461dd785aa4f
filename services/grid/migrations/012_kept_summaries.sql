-- Each case as the case list's basic view answers it (``view=basic``), kept beside its columns
-- like its full answer (011): the view's 20 columns cost the worker more to decode and encode
-- again than the full answer kept whole. The fields are the view's (queries.py
-- _CASE_SUMMARY_FIELDS, which a test checks).
ALTER TABLE cases ADD COLUMN summary text;
SELECT kit_keep_answers_on('cases', 'summary',
    'case_id', 'status', 'category', 'grade', 'urgent', 'grid_id', 'community_id', 'street_id', 'level', 'department',
    'assignee_id', 'due_stage', 'due_at', 'overdue', 'supervision_count', 'last_card', 'listed', 'reported_at',
    'updated_at', 'version');
