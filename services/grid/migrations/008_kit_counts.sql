-- The counts of a grid's cases by status are kept by the kit's kit_keep_counts, the function the
-- other services' kept counts use; the grid's own copy of it goes, and the counts are filled again.
DROP TRIGGER grid_status_counts_insert ON cases;
DROP TRIGGER grid_status_counts_update ON cases;
DROP TRIGGER grid_status_counts_delete ON cases;
DROP FUNCTION grid_status_counts_move();
TRUNCATE grid_status_counts;
SELECT kit_keep_counts_on('cases', 'grid_status_counts', 'grid_id', 'status');
