-- Organisational life by kind, held or missed, kept as the entries are written (the kit's
-- kit_keep_counts), so that the life gauges read a few rows: counted, they read every entry of
-- every organisation's years every refresh.
CREATE TABLE org_life_counts (
    kind text    NOT NULL,
    held boolean NOT NULL,
    n    bigint  NOT NULL,
    PRIMARY KEY (kind, held)
);
INSERT INTO org_life_counts (kind, held, n) SELECT kind, held, count(*) FROM org_life_log GROUP BY kind, held;
CREATE TRIGGER org_life_counts_insert AFTER INSERT ON org_life_log REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kit_keep_counts('org_life_counts', 'kind', 'held');
CREATE TRIGGER org_life_counts_update AFTER UPDATE ON org_life_log REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kit_keep_counts('org_life_counts', 'kind', 'held');
CREATE TRIGGER org_life_counts_delete AFTER DELETE ON org_life_log REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kit_keep_counts('org_life_counts', 'kind', 'held');
