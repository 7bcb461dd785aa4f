"""Earning rules (积分规则): which facts earn points, how many, and the caps.

The rules are data the operator can change (``services/points/rules/earning.yaml``); this
module validates them and answers questions about them. Three sources earn points:

- ``order``  a passed service order (``orders.order.evaluated.v1`` with ``passed``) awards
  the assignee ``points + service_minutes * per_hour // 60``, at most ``max``, by the
  order category (四单式 考单 → 积分);
- ``report`` a grid report by a resident that was registered (立案, not dismissed) awards
  the reporter ``points`` by case category;
- ``deed``   an approved deed (道德日记) awards the points the reviewer set, which must lie
  within ``[min, max]`` of its category (e.g. 文明劝导 10, 拾金不昧/调解纠纷 5–10,
  帮扶困难群众 10, 抢险救灾 20).

A rule is looked up by exact category, then by its dotted prefix (``hazard`` matches
``hazard.fire``), then ``"*"``; no rule means the fact earns nothing. Each rule may cap
what one account earns under it per Shanghai day and per Shanghai month; an award over a
cap is refused (``cap_reached``), never cut down. Earned points are valid for
``validity`` (default 2 years) and then expire, oldest first.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, NonNegativeInt, PositiveInt, model_validator

from .clock import add_years, local


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceKind(str, Enum):
    """What earned the points (积分来源)."""

    order = "order"  # 四单式 service order passed its evaluation
    report = "report"  # 网格上报 registered grid report by a resident
    deed = "deed"  # 道德日记 approved good deed


class Caps(_Frozen):
    """上限 Most points one account may earn under one rule per Shanghai day / month."""

    day: PositiveInt | None = None
    month: PositiveInt | None = None


class Rule(_Frozen):
    """One earning rule. ``id`` (``order.daily_care``, ``deed.mediation``...) names it in
    transfers, cap counters and transfer ids, so renaming a rule starts new counters."""

    id: str
    source: SourceKind
    category: str
    points: NonNegativeInt = 0
    per_hour: NonNegativeInt = 0
    min: PositiveInt | None = None
    max: PositiveInt | None = None
    caps: Caps = Caps()

    @model_validator(mode="after")
    def _bounds(self) -> "Rule":
        if self.source is SourceKind.deed:
            if self.min is None or self.max is None:
                raise ValueError(f"deed rule {self.id!r} needs min and max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"rule {self.id!r}: min {self.min} > max {self.max}")
        return self

    def amount_for(self, service_minutes: int = 0) -> int:
        """Points an order or report earns under this rule (0 = nothing to award)."""
        amount = self.points + max(service_minutes, 0) * self.per_hour // 60
        if self.max is not None:
            amount = min(amount, self.max)
        if self.min is not None and amount > 0:
            amount = max(amount, self.min)
        return amount

    def allows(self, points: int) -> bool:
        """Whether a reviewer may set ``points`` for a deed under this rule."""
        lo = self.min if self.min is not None else 1
        hi = self.max if self.max is not None else points
        return lo <= points <= hi


class Validity(_Frozen):
    """有效期 How long earned points stay valid: whole years (Shanghai calendar) or days."""

    years: PositiveInt | None = None
    days: PositiveInt | None = None

    @model_validator(mode="after")
    def _one(self) -> "Validity":
        if (self.years is None) == (self.days is None):
            raise ValueError("validity takes exactly one of years or days")
        return self

    def expires_at(self, earned_at: datetime) -> datetime:
        if self.years is not None:
            return add_years(earned_at, self.years)
        return local(earned_at) + timedelta(days=self.days or 0)


_SECTIONS = {"orders": SourceKind.order, "reports": SourceKind.report, "deeds": SourceKind.deed}


class EarningRules(_Frozen):
    """The whole rule book: rules by source and category, default caps and validity."""

    validity: Validity = Validity(years=2)
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> "EarningRules":
        ids = [r.id for r in self.rules]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"rule ids defined twice: {sorted(dup)}")
        return self

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> "EarningRules":
        """Build from the mapping of ``earning.yaml``::

            validity: {years: 2}
            default_caps: {day: 50, month: 500}
            orders:  {"*": {points: 2, per_hour: 4, max: 20}, daily_care: {...}}
            reports: {hazard: {points: 5, caps: {day: 10}}, "*": {points: 2}}
            deeds:   {mediation: {min: 5, max: 10, caps: {day: 20, month: 60}}}

        Raises ``ValueError`` (a pydantic ``ValidationError``) when the data is invalid.
        """
        unknown = set(mapping) - {"validity", "default_caps", *_SECTIONS}
        if unknown:
            raise ValueError(f"unknown keys in earning rules: {sorted(unknown)}")
        default_caps = Caps.model_validate(mapping.get("default_caps") or {})
        rules: list[Rule] = []
        for section, source in _SECTIONS.items():
            for category, spec in (mapping.get(section) or {}).items():
                spec = dict(spec or {})
                spec.setdefault("caps", default_caps)
                name = "default" if category == "*" else str(category)
                rules.append(Rule.model_validate({"id": f"{source.value}.{name}", "source": source, "category": str(category), **spec}))
        return cls(validity=Validity.model_validate(mapping.get("validity") or {"years": 2}), rules=tuple(rules))

    @classmethod
    def from_yaml(cls, text: str) -> "EarningRules":
        """Parse the text of an ``earning.yaml`` (reading the file is the caller's job)."""
        return cls.from_mapping(yaml.safe_load(text) or {})

    def rule_for(self, source: SourceKind | str, category: str) -> Rule | None:
        """The rule for ``category``: exact, else the longest dotted prefix, else ``"*"``."""
        source = SourceKind(source)
        mine = {r.category: r for r in self.rules if r.source is source}
        parts = category.split(".")
        for n in range(len(parts), 0, -1):
            rule = mine.get(".".join(parts[:n]))
            if rule is not None:
                return rule
        return mine.get("*")

    def by_id(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def deed_categories(self) -> tuple[str, ...]:
        return tuple(r.category for r in self.rules if r.source is SourceKind.deed and r.category != "*")

    def expires_at(self, earned_at: datetime) -> datetime:
        """When points earned at ``earned_at`` expire."""
        return self.validity.expires_at(earned_at)
