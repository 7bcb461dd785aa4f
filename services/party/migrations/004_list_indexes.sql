-- Lists page by keyset: organisations and units by id, projects latest posted first (a
-- project is stored when it is posted: posted_at is never null), behind each filter.
ALTER TABLE projects ALTER COLUMN posted_at SET NOT NULL;
DROP INDEX orgs_parent;
CREATE INDEX orgs_parent_keyset ON orgs (parent_id, org_id);
CREATE INDEX orgs_kind_keyset ON orgs (kind, org_id);
CREATE INDEX orgs_area_keyset ON orgs (area_id, org_id);
CREATE INDEX orgs_street_keyset ON orgs (street_id, org_id);
CREATE INDEX orgs_grid_keyset ON orgs (grid_id, org_id);
CREATE INDEX projects_community_keyset ON projects (community_id, posted_at, project_id);
CREATE INDEX projects_status_keyset ON projects (community_id, status, posted_at, project_id);
