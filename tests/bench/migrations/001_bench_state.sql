CREATE TABLE patrol_counts (grid_id text PRIMARY KEY, n bigint NOT NULL);
