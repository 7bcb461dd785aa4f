-- A community's orders by status, kept as the orders are written (the kit's kit_keep_counts), so
-- that the total of a community's list (of a status, or of them all) reads a few rows: counted,
-- it read every order of the community up to the count's cap on every page.
CREATE TABLE order_counts (
    community_id text   NOT NULL,
    status       text   NOT NULL,
    n            bigint NOT NULL,
    PRIMARY KEY (community_id, status)
);
INSERT INTO order_counts (community_id, status, n)
SELECT community_id, status, count(*) FROM orders GROUP BY community_id, status;

CREATE TRIGGER order_counts_insert AFTER INSERT ON orders REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kit_keep_counts('order_counts', 'community_id', 'status');
CREATE TRIGGER order_counts_update AFTER UPDATE ON orders REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kit_keep_counts('order_counts', 'community_id', 'status');
CREATE TRIGGER order_counts_delete AFTER DELETE ON orders REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kit_keep_counts('order_counts', 'community_id', 'status');
