-- Lists page by keyset: each list's sort key (newest first, the id as the tiebreaker) behind
-- each filter a list or a reader's scope restricts by, so a page is one index range scan however
-- much history the table holds. Replaces the indexes of the same filters that ended at the
-- status or at the report time alone.
DROP INDEX cases_grid;
DROP INDEX cases_community;
DROP INDEX cases_street;
DROP INDEX cases_status_category;
DROP INDEX cases_reported_at;
DROP INDEX cases_department;
DROP INDEX cases_listed;
DROP INDEX cases_supervised;
CREATE INDEX cases_keyset ON cases (reported_at, case_id);
CREATE INDEX cases_grid_keyset ON cases (grid_id, reported_at, case_id);
CREATE INDEX cases_community_keyset ON cases (community_id, reported_at, case_id);
CREATE INDEX cases_street_keyset ON cases (street_id, reported_at, case_id);
CREATE INDEX cases_status_keyset ON cases (status, reported_at, case_id);
CREATE INDEX cases_category_keyset ON cases (category, reported_at, case_id);
CREATE INDEX cases_department_keyset ON cases (department, reported_at, case_id);
CREATE INDEX cases_listed_keyset ON cases (reported_at, case_id) WHERE listed;
CREATE INDEX cases_supervised_keyset ON cases (reported_at, case_id) WHERE supervision_count > 0;

DROP INDEX patrols_grid;
DROP INDEX patrols_worker;
CREATE INDEX patrols_keyset ON patrols (started_at, patrol_id);
CREATE INDEX patrols_grid_keyset ON patrols (grid_id, started_at, patrol_id);
CREATE INDEX patrols_community_keyset ON patrols (community_id, started_at, patrol_id);
CREATE INDEX patrols_street_keyset ON patrols (street_id, started_at, patrol_id);
CREATE INDEX patrols_worker_keyset ON patrols (grid_worker_id, started_at, patrol_id);

DROP INDEX whistles_street;
DROP INDEX whistles_blown_at;
CREATE INDEX whistles_keyset ON whistles (blown_at, whistle_id);
CREATE INDEX whistles_street_keyset ON whistles (street_id, blown_at, whistle_id);
CREATE INDEX cases_overdue_keyset ON cases (reported_at, case_id) WHERE overdue;
