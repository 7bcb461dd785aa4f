"""Points service — 道德银行 moral bank: a district-wide double-entry points ledger.

- :mod:`services.points.domain` — the pure rules: accounts, transfers, earning rules, caps,
  deeds, expiry, rankings.
- ``rules/earning.yaml`` — the default earning rules (data the operator can change);
  :data:`DEFAULT_RULES_PATH` points at it, :meth:`EarningRules.from_yaml` parses its text.
"""
from __future__ import annotations

from pathlib import Path

DEFAULT_RULES_PATH = Path(__file__).parent / "rules" / "earning.yaml"
