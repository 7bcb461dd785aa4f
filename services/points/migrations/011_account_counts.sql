-- The accounts by kind, kept as the accounts are written (the kit's kit_keep_counts), so that the
-- accounts gauge reads three rows: counted, it read every account every refresh.
CREATE TABLE account_counts (
    kind text   NOT NULL PRIMARY KEY,
    n    bigint NOT NULL
);
SELECT kit_keep_counts_on('accounts', 'account_counts', 'kind');
