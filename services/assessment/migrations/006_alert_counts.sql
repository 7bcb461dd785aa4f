-- The alerts of a period by scheme, entity type and indicator, kept as the alerts are written
-- (the kit's kit_keep_counts), so that the total of a list of alerts read by a reader of the whole
-- district reads a few rows: counted, it read every alert of the period (each one's row, for its
-- scheme) up to the count's cap on every page.
CREATE TABLE alert_counts (
    period      text   NOT NULL,
    scheme_id   text   NOT NULL,
    entity_type text   NOT NULL,
    indicator   text   NOT NULL,
    n           bigint NOT NULL,
    PRIMARY KEY (period, scheme_id, entity_type, indicator)
);
SELECT kit_keep_counts_on('alerts', 'alert_counts', 'period', 'scheme_id', 'entity_type', 'indicator');
