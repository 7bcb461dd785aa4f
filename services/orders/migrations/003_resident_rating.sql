-- The resident's own rating of a completed order (评价, orders.order.rated.v1), apart from the
-- organisation's 考单 (rating, passed).
ALTER TABLE orders ADD COLUMN resident_rating int;
ALTER TABLE orders ADD COLUMN resident_comment text;
ALTER TABLE orders ADD COLUMN rated_at timestamptz;
