-- Each order as the order list answers it, kept beside its columns (the kit's
-- kit_keep_answers_on): the list decoded 29 values an order, put them in dicts and encoded them
-- again on every request. The fields are the list's (queries.py _ORDER_COLUMNS, which a test
-- checks); the worker adds the category's label and whether the order awaits dispatch.
ALTER TABLE orders ADD COLUMN answer text;
SELECT kit_keep_answers_on('orders', 'answer',
    'order_id', 'status', 'category', 'community_id', 'grid_id', 'resident_id', 'description', 'source_case_id',
    'attempt', 'assignee_id', 'post_id', 'dispatched_by', 'accept_by', 'placed_at', 'first_dispatched_at',
    'dispatched_at', 'accepted_at', 'completed_at', 'rated_at', 'evaluated_at', 'cancelled_at', 'service_minutes',
    'resident_rating', 'resident_comment', 'rating', 'passed', 'dispatch_misses', 'last_miss_at', 'updated_at');
