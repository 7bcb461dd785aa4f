-- Organisational life by kind, held or missed, kept as the entries are written (the kit's
-- kit_keep_counts), so that the life gauges read a few rows: counted, they read every entry of
-- every organisation's years every refresh. The organisation is in the key, so two transactions
-- move the same count row only when they write the life of the same organisation.
CREATE TABLE org_life_counts (
    org_id text    NOT NULL,
    kind   text    NOT NULL,
    held   boolean NOT NULL,
    n      bigint  NOT NULL,
    PRIMARY KEY (org_id, kind, held)
);
SELECT kit_keep_counts_on('org_life_log', 'org_life_counts', 'org_id', 'kind', 'held');
