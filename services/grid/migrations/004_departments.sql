-- The department's part of a case (签收, 先行联系, 管控, 退单, 延期, 不合理诉求), supervision
-- (超期督办 cards, 挂牌督办) and the 回访's resolved, on the projection's case rows.
ALTER TABLE cases
    ADD COLUMN accepted_at       timestamptz,                      -- 签收
    ADD COLUMN contacted_at      timestamptz,                      -- 先行联系
    ADD COLUMN controlled_at     timestamptz,                      -- 管控 (severe hazards)
    ADD COLUMN accept_due_at     timestamptz,                      -- the unmet accept deadline
    ADD COLUMN contact_due_at    timestamptz,                      -- the unmet contact deadline
    ADD COLUMN control_due_at    timestamptz,                      -- the unmet control deadline
    ADD COLUMN return_pending    boolean     NOT NULL DEFAULT false, -- 退单 awaiting review
    ADD COLUMN return_count      integer     NOT NULL DEFAULT 0,
    ADD COLUMN extension_until   timestamptz,                      -- 延期 asked for, awaiting review
    ADD COLUMN extension_count   integer     NOT NULL DEFAULT 0,   -- extensions granted
    ADD COLUMN exclusion_pending boolean     NOT NULL DEFAULT false,
    ADD COLUMN excluded          boolean     NOT NULL DEFAULT false, -- 不合理诉求, approved
    ADD COLUMN supervision_count integer     NOT NULL DEFAULT 0,   -- yellow and red cards
    ADD COLUMN last_card         text,                             -- yellow_card | red_card
    ADD COLUMN listed            boolean     NOT NULL DEFAULT false, -- under 挂牌督办 (until 销号)
    ADD COLUMN delisted_at       timestamptz,                      -- 销号
    ADD COLUMN resolved          boolean;                          -- 回访: 已解决 / 未解决
CREATE INDEX cases_listed ON cases (reported_at DESC) WHERE listed;
CREATE INDEX cases_supervised ON cases (reported_at DESC) WHERE supervision_count > 0;
