-- The order list pages by keyset (placed_at, order_id), newest first, behind each filter and
-- each reader's restriction (community, street, resident, assignee). Every order is stored when
-- it is placed: placed_at is never null, and the keyset relies on it.
ALTER TABLE orders ALTER COLUMN placed_at SET NOT NULL;
DROP INDEX orders_status;
CREATE INDEX orders_keyset ON orders (placed_at, order_id);
CREATE INDEX orders_status_keyset ON orders (status, placed_at, order_id);
CREATE INDEX orders_community_keyset ON orders (community_id, placed_at, order_id);
CREATE INDEX orders_street_keyset ON orders (left(community_id, 9), placed_at, order_id);
CREATE INDEX orders_category_keyset ON orders (category, placed_at, order_id);
CREATE INDEX orders_resident_keyset ON orders (resident_id, placed_at, order_id);
CREATE INDEX orders_assignee_keyset ON orders (assignee_id, placed_at, order_id);
