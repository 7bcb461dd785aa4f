-- A community's orders by status, kept as the orders are written (the kit's kit_keep_counts), so
-- that the total of a community's list (of a status, or of them all) reads a few rows: counted,
-- it read every order of the community up to the count's cap on every page. The grid is in the
-- key, so two transactions move the same count row only when they write orders of the same grid.
CREATE TABLE order_counts (
    community_id text   NOT NULL,
    status       text   NOT NULL,
    grid_id      text   NOT NULL,
    n            bigint NOT NULL,
    PRIMARY KEY (community_id, status, grid_id)
);
SELECT kit_keep_counts_on('orders', 'order_counts', 'community_id', 'status', 'grid_id');
