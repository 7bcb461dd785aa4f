-- The accounts by kind, kept as the accounts are written (the kit's kit_keep_counts), so that the
-- accounts gauge reads three rows: counted, it read every account every refresh.
CREATE TABLE account_counts (
    kind text   NOT NULL PRIMARY KEY,
    n    bigint NOT NULL
);
INSERT INTO account_counts (kind, n) SELECT kind, count(*) FROM accounts GROUP BY kind;
CREATE TRIGGER account_counts_insert AFTER INSERT ON accounts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kit_keep_counts('account_counts', 'kind');
CREATE TRIGGER account_counts_update AFTER UPDATE ON accounts REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kit_keep_counts('account_counts', 'kind');
CREATE TRIGGER account_counts_delete AFTER DELETE ON accounts REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kit_keep_counts('account_counts', 'kind');
