-- 好人榜 reads its kept totals (009), no longer the period's earnings: their period indexes only
-- cost each award two more index entries.
DROP INDEX earnings_month;
DROP INDEX earnings_year;
