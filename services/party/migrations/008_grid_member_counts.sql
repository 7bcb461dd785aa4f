-- The members of each grid, kept as the members are attached, moved and removed. The coverage timer
-- (every minute) counted them for the gaps it reports and for the open gaps gauge, twice a round:
-- a sequential scan of org_members, every member of the district, grouped by grid. It now reads a
-- row per grid with members, however many members there are.
--
-- Kept by the kit's statement trigger (kit_keep_counts), keyed by the grid: two transactions move
-- the same row only when they attach members of the same grid. A member without a grid is in no
-- grid's count (as the coverage never counted one); a grid no member lives in any more has no row.
CREATE TABLE grid_member_counts (
    grid_id text   NOT NULL PRIMARY KEY,
    n       bigint NOT NULL
);
SELECT kit_keep_counts_on('org_members', 'grid_member_counts', 'grid_id');
