-- Each entry of an organisation's life as its list answers it, kept beside its columns (the kit's
-- kit_keep_answers_on): a page of 100 entries was 900 values to decode, put in dicts and encode
-- again on every request. The fields are the list's (life.py _LIFE_COLUMNS, which a test checks).
ALTER TABLE org_life_log ADD COLUMN answer text;
SELECT kit_keep_answers_on('org_life_log', 'answer',
    'kind', 'held', 'meeting_id', 'period', 'held_at', 'attendees', 'absentees', 'at', 'event_id');
