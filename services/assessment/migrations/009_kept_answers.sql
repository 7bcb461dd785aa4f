-- Each alert as the alert list answers it, kept beside its columns (the kit's
-- kit_keep_answers_on): the fields are the list's (store.py ALERT_FIELDS, which a test checks).
ALTER TABLE alerts ADD COLUMN answer text;
SELECT kit_keep_answers_on('alerts', 'answer',
    'entity_type', 'entity_id', 'indicator', 'value', 'threshold', 'alert_id', 'period', 'scheme_id', 'scorecard_id',
    'direction', 'raised_at');
