"""The pure domain of the points service — 道德银行 moral bank.

No I/O, no clock: times come in as arguments; the application loads the state a decision
needs (accounts, the deed, the posting already stored under a transfer id), calls a
``decide_*`` function, stores the events and applies them with ``evolve_*``.

- :mod:`.accounts`  — :class:`Account` (balance, earning lots, cap counters), floors,
  :func:`decide_open_account`, :func:`evolve_account`
- :mod:`.transfers` — double-entry postings: :func:`award_plan` → :class:`AwardPlan` →
  :func:`decide_award`, :func:`decide_transfer` (redeem, adjust), :func:`decide_expire`,
  deterministic transfer ids
- :mod:`.deeds`     — 申报 → 评审 → 兑现: :func:`decide_submit_deed`, :func:`decide_review_deed`,
  :func:`decide_credit_deed`, :func:`evolve_deed`
- :mod:`.consent`   — a resident's single-use redemption codes (consent to a redemption)
- :mod:`.errors`    — the named refusals (:class:`~.errors.SelfReview`)
- :mod:`.rules`     — :class:`EarningRules` (from ``rules/earning.yaml``), caps, validity
- :mod:`.sources`   — orders and grid facts (:class:`OrderFacts`, the grid's case events) → :class:`Earning`
- :mod:`.rankings`  — 好人榜 and 道德模范 candidates
- :mod:`.clock`     — Asia/Shanghai days and months
"""
from . import errors
from .accounts import (
    Account, Lot, account_id_for, decide_open_account, evolve_account, evolve_accounts, floor_of, issuer_account_id,
)
from .deeds import (
    DEED_SOURCE, Deed, DeedStatus, decide_credit_deed, decide_review_deed, decide_submit_deed, deed_transfer_id,
    evolve_deed, submitter_of,
)
from .rankings import EarnedPoints, RankingEntry, earned_from, moral_model_candidates, rankings
from .rules import Caps, EarningRules, Rule, SourceKind, Validity
from .sources import OrderFacts, earning_from_order, earning_from_report
from .transfers import (
    AwardPlan, Earning, SelfApproval, SelfCredit, TransferRefusal, award_plan, award_transfer_id,
    decide_approve_adjustment, decide_award, decide_expire, decide_request_adjustment, decide_transfer, due_lots,
    expiry_transfer_id, needs_approval,
)
from .consent import Consent, check_consent, code_hash, new_code

__all__ = [
    "Account", "AwardPlan", "Caps", "DEED_SOURCE", "Deed", "DeedStatus", "EarnedPoints", "Earning", "EarningRules",
    "Lot", "OrderFacts", "RankingEntry", "Rule", "SourceKind", "TransferRefusal", "Validity", "account_id_for",
    "award_plan", "award_transfer_id", "decide_award", "decide_credit_deed", "decide_expire", "decide_open_account",
    "decide_review_deed", "decide_submit_deed", "decide_transfer", "deed_transfer_id", "due_lots", "earned_from",
    "earning_from_order", "earning_from_report", "evolve_account", "evolve_accounts", "evolve_deed",
    "expiry_transfer_id", "floor_of", "issuer_account_id", "moral_model_candidates", "rankings", "submitter_of",
    "errors", "SelfApproval", "SelfCredit", "decide_approve_adjustment", "decide_request_adjustment", "needs_approval",
    "Consent", "check_consent", "code_hash", "new_code",
]
