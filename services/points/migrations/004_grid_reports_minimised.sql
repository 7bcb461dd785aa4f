-- A grid case's report and registration are kept without the personal fields no award reads
-- (schemas.pii.minimised, applied to every new row): the rows kept before are trimmed alike.
UPDATE grid_reports SET reported = reported - ARRAY['description', 'location', 'media'] WHERE reported IS NOT NULL;
UPDATE grid_reports SET registered = registered - ARRAY['description', 'location'] WHERE registered IS NOT NULL;
