-- Deeds are kept by the kit's aggregate store: each save checks and raises the version of the
-- state it read (a deed saved before this migration counts as version 1).
ALTER TABLE deeds ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE deeds ALTER COLUMN version DROP DEFAULT;

-- Grid reports: ``reported`` and ``registered`` hold the data of grid.case.reported.v1 and
-- grid.case.registered.v1 as published (each read back as its contract model); the
-- registration's envelope, whose source and id make the award's transfer id and whose time
-- dates it, moves to columns of its own.
ALTER TABLE grid_reports
    ADD COLUMN registered_source text,
    ADD COLUMN registered_id     text,
    ADD COLUMN registered_at     timestamptz;
UPDATE grid_reports
   SET registered_source = registered->>'source', registered_id = registered->>'id',
       registered_at = (registered->>'time')::timestamptz, registered = registered->'data'
 WHERE registered IS NOT NULL;
ALTER TABLE grid_reports ADD CONSTRAINT grid_reports_registration_envelope
    CHECK ((registered IS NULL) = (registered_source IS NULL) AND (registered IS NULL) = (registered_id IS NULL)
           AND (registered IS NULL) = (registered_at IS NULL));
