-- The order, member and post rows as the kit's aggregate store keeps them: every state row has
-- a version (orders had one already). A post's categories are read from its state (the store
-- writes its query columns from one value per row, and nothing filters on them).
ALTER TABLE members ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE posts ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE posts DROP COLUMN categories;
