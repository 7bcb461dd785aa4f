-- Rankings and alerts page by keyset: a ranking by parent (none first), rank (unranked last)
-- and entity; alerts by period, entity and indicator, the alert id last.
DROP INDEX scorecards_ranking;
CREATE INDEX scorecards_ranking_keyset ON scorecards
    (period, scheme_id, entity_type, coalesce(parent_id, ''), coalesce(rank, 2147483647), entity_id);
DROP INDEX alerts_period;
CREATE INDEX alerts_keyset ON alerts (period, entity_type, entity_id, indicator, alert_id);
CREATE INDEX alerts_indicator_keyset ON alerts (indicator, period, entity_type, entity_id, alert_id);
