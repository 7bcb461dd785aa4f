-- A merchant's redemptions page by seq and their sum is read from the index alone; 好人榜 sums
-- the period's earnings from the index alone (month or year, then community).
DROP INDEX postings_kind_credit;
CREATE INDEX postings_redemptions ON postings (credit_account, seq) INCLUDE (amount) WHERE kind = 'redemption';
DROP INDEX earnings_month;
DROP INDEX earnings_year;
CREATE INDEX earnings_month ON earnings (month, community_id, account_id) INCLUDE (amount);
CREATE INDEX earnings_year ON earnings (year, community_id, account_id) INCLUDE (amount);
