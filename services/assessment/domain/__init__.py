"""The pure domain of the assessment service (考核). No I/O, no clock: time is an argument.

- :mod:`.periods`     — months / quarters / years in Asia/Shanghai, period ends.
- :mod:`.indicators`  — the indicator catalogue, each with its written formula.
- :mod:`.facts`       — consumed event (typed payload) → counter increments (and refs for
  attribution), one module per upstream service.
- :mod:`.history`     — the event log's entries, their replay order and fold.
- :mod:`.incremental` — the same fold one event at a time as events arrive, in any order (undo
  and re-fold of what occurred after a late event), exactly equal to a replay.
- :mod:`.scheme`      — schemes: weights, scoring, thresholds, grades; scheme change decide.
- :mod:`.scorecards`  — composite score, ranking, grades, alerts, deterministic ids, diff.
- :mod:`.publication` — a period's scorecards from the folded history; publication identity.
- :mod:`.reviews`     — two-way reviews (双向评议): decide / evolve.

Commands and events are the schema models of :mod:`schemas.assessment`, re-exported here.
"""
from schemas.assessment import (
    ChangeScheme,
    ClosePeriod,
    EntityType,
    Grade,
    RecordReview,
    ReviewRecorded,
    SchemeChanged,
    ScorecardPublished,
)

from .facts import (
    CONSUMED,
    CONSUMED_TYPES,
    MemoryLookup,
    effect_of_event,
    facts_by_entity,
    facts_from_event,
    parent_of,
    ref_from_json,
    replay,
)
from .indicators import CATALOGUE, Fact, evaluate, indicator_values, indicators_for
from .periods import Period, enclosing_periods, parse_period, period_end, period_start, periods_ended_between, periods_of
from .reviews import ReviewBook, decide_review, evolve_review
from .scheme import (
    InvalidScheme,
    Scheme,
    SchemeState,
    decide_scheme_change,
    default_scheme,
    evolve_scheme,
    scheme_for_period,
    scheme_from_event,
)
from .scorecards import (
    EntityFacts,
    Publication,
    alerts_for,
    check_close,
    close_period,
    competition_ranks,
    diff_scorecards,
    rank_scorecards,
    score_entity,
    scorecard_id,
)

__all__ = [n for n in dir() if not n.startswith("_")]
