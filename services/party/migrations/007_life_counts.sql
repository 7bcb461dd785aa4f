-- Organisational life by kind, held or missed, kept as the entries are written (the kit's
-- kit_keep_counts), so that the life gauges read a few rows: counted, they read every entry of
-- every organisation's years every refresh.
CREATE TABLE org_life_counts (
    kind text    NOT NULL,
    held boolean NOT NULL,
    n    bigint  NOT NULL,
    PRIMARY KEY (kind, held)
);
SELECT kit_keep_counts_on('org_life_log', 'org_life_counts', 'kind', 'held');
