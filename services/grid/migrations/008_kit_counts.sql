-- The counts of a grid's cases by status are kept by the kit's kit_keep_counts, the function the
-- other services' kept counts use; the grid's own copy of it goes. The counts stay as they are.
DROP TRIGGER grid_status_counts_insert ON cases;
DROP TRIGGER grid_status_counts_update ON cases;
DROP TRIGGER grid_status_counts_delete ON cases;
DROP FUNCTION grid_status_counts_move();
CREATE TRIGGER grid_status_counts_insert AFTER INSERT ON cases REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kit_keep_counts('grid_status_counts', 'grid_id', 'status');
CREATE TRIGGER grid_status_counts_update AFTER UPDATE ON cases REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kit_keep_counts('grid_status_counts', 'grid_id', 'status');
CREATE TRIGGER grid_status_counts_delete AFTER DELETE ON cases REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kit_keep_counts('grid_status_counts', 'grid_id', 'status');
