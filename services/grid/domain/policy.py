"""The deadline policy (时限标准): how long each stage of a case may take.

The policy is data the operator can change (``services/grid/policy/deadlines.yaml``); the
application layer parses the file and hands the mapping to
:meth:`DeadlinePolicy.from_mapping`. Nothing here reads a file or a clock.

Shape of the mapping (every key optional except where noted)::

    timezone: Asia/Shanghai          # due times are computed and expressed in this zone
    working_days_only: false         # see "Working days" below
    holidays: [2026-10-01, ...]      # extra non-working dates (working-days mode only)
    urgent: {register: 5m, dispatch: 5m}          # replace register/dispatch when urgent
    default: {register: 15m, dispatch: 15m, handle: 5d, verify: 1h}   # all four required
    rules:                           # per category, or per "category/grade" for hazards
      hazard.fire/severe: {urgent: true, handle: 24h}
      environment: {handle: 2d}

A limit is ``<n>m`` (minutes), ``<n>h`` (hours) or ``<n>d`` (days) (``<n>s``, seconds, for
tests and drills). Each stage's limit runs
from the start of that stage: register from the report, dispatch from registration, handle
from dispatch (or from a failed verification: ``rework``, which defaults to ``handle``),
verify from handling. So "register + dispatch ≤ 10 min when urgent, ≤ 30 min otherwise"
is 5 m + 5 m and 15 m + 15 m.

Rules are looked up most specific first: ``category/grade``, then ``category``, then
``default``; a rule only overrides the stages it names. A case is urgent when the report
says so or its rule has ``urgent: true``.

Working days (``working_days_only: true``): only limits given in days (``d``) count working
days; minute and hour limits always run on the clock, so an urgent hazard reported on a
Saturday is still due within minutes (write ``24h`` instead of ``1d`` to keep a one-day
limit on the clock). A working day is Monday–Friday in the policy's time zone, minus
``holidays`` (make-up working days, 调休, are not modelled). ``n`` working days from a start
on a working day end on the n-th following working day at the same local time; a start on
a non-working day counts from 00:00 of the next working day. Without working-days mode a
day is 24 hours.
"""
from __future__ import annotations

import re
from dataclasses import fields
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from schemas.grid import Category, Grade, Stage

_SPAN_RE = re.compile(r"^\s*([0-9]+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Span(BaseModel):
    """A time limit: ``amount`` minutes, hours or days, written ``"10m"``, ``"4h"``, ``"3d"``
    (seconds, ``"30s"``, exist for tests and drills)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: int = Field(gt=0)
    unit: Literal["s", "m", "h", "d"]

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, v: Any) -> Any:
        if isinstance(v, str):
            m = _SPAN_RE.match(v)
            if not m:
                raise ValueError(f"a time limit is written like 10m, 4h or 3d, not {v!r}")
            return {"amount": int(m.group(1)), "unit": m.group(2)}
        return v

    @property
    def clock(self) -> timedelta:
        """The span on the clock (a day = 24 h)."""
        return timedelta(seconds=self.amount * _UNIT_SECONDS[self.unit])

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


# StageLimits, UrgentLimits and Limits are pydantic dataclasses, not BaseModels, because a
# field called ``register`` would shadow ``BaseModel.register``.


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class StageLimits:
    """A rule of the policy: limits for some stages, and whether the case is urgent."""

    urgent: bool | None = None
    register: Span | None = None
    dispatch: Span | None = None
    handle: Span | None = None
    verify: Span | None = None
    rework: Span | None = None
    accept: Span | None = None
    contact: Span | None = None
    control: Span | None = None


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class UrgentLimits:
    """Register and dispatch limits for urgent cases (紧急案件)."""

    register: Span
    dispatch: Span


@dataclass(frozen=True)
class Limits:
    """The limits that apply to one case, resolved from the policy."""

    urgent: bool
    register: Span
    dispatch: Span
    handle: Span
    verify: Span
    rework: Span
    accept: Span
    contact: Span
    control: Span | None = None  # only severe hazards (重大隐患) have a control stage

    def for_stage(self, stage: Stage) -> Span:
        return getattr(self, stage.value)


_STAGE_LIMIT_FIELDS = tuple(f.name for f in fields(StageLimits))


def _rule_key_ok(key: str) -> bool:
    cat, _, grade = key.partition("/")
    try:
        category = Category(cat)
    except ValueError:
        return False
    if not grade:
        return True
    try:
        Grade(grade)
    except ValueError:
        return False
    return category.is_hazard


class DeadlinePolicy(BaseModel):
    """The deadline policy of the grid service (see the module docstring for its shape)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "Asia/Shanghai"
    working_days_only: bool = False
    holidays: frozenset[date] = frozenset()
    urgent: UrgentLimits = UrgentLimits(register=Span(amount=5, unit="m"), dispatch=Span(amount=5, unit="m"))
    default: StageLimits
    rules: dict[str, StageLimits] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("default")
    @classmethod
    def _complete_default(cls, v: StageLimits) -> StageLimits:
        missing = [s for s in ('register', 'dispatch', 'handle', 'verify') if getattr(v, s) is None]
        if missing:
            raise ValueError(f"the default rule must give every stage a limit; missing: {', '.join(missing)}")
        return v

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, v: dict[str, StageLimits]) -> dict[str, StageLimits]:
        bad = [k for k in v if not _rule_key_ok(k)]
        if bad:
            raise ValueError(
                f"unknown rule key(s) {bad}: use a category ({', '.join(c.value for c in Category)}) "
                "or hazard.<kind>/<grade> with grade general, major or severe"
            )
        return v

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> "DeadlinePolicy":
        """Build a policy from a parsed YAML/JSON mapping; raises ``pydantic.ValidationError``."""
        return cls.model_validate(dict(mapping))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def limits_for(self, category: Category, grade: Grade | None = None, urgent: bool = False) -> Limits:
        """The limits for a case of ``category``/``grade``; ``urgent`` as asked by the reporter."""
        merged: dict[str, Any] = {}
        keys = (category.value, f"{category.value}/{grade.value}" if grade else None)
        for rule in (self.default, *(self.rules.get(k) for k in keys if k)):
            if rule is not None:
                merged.update({k: getattr(rule, k) for k in _STAGE_LIMIT_FIELDS if getattr(rule, k) is not None})
        is_urgent = bool(urgent or merged.get("urgent"))
        if is_urgent:
            merged["register"] = self.urgent.register
            merged["dispatch"] = self.urgent.dispatch
        merged.setdefault("rework", merged["handle"])
        merged.setdefault("accept", Span(amount=2, unit="h"))
        merged.setdefault("contact", Span(amount=4, unit="h"))
        merged["urgent"] = is_urgent
        return Limits(**merged)

    def is_working_day(self, day: date) -> bool:
        """Monday–Friday and not a listed holiday."""
        return day.weekday() < 5 and day not in self.holidays

    def due(self, start: datetime, span: Span) -> datetime:
        """When a stage that starts at ``start`` with limit ``span`` is due, in the policy's zone."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        tz = self.tz
        if self.working_days_only and span.unit == "d":
            return self._add_working_days(start.astimezone(tz), span.amount)
        return (start + span.clock).astimezone(tz)

    def _next_working_day(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def _add_working_days(self, local: datetime, n: int) -> datetime:
        day, at = local.date(), local.time().replace(tzinfo=None)
        if not self.is_working_day(day):  # count from 00:00 of the next working day
            day, at = self._next_working_day(day), time(0, 0)
        for _ in range(n):
            day = self._next_working_day(day)
        return datetime.combine(day, at, tzinfo=local.tzinfo)


# The defaults, identical to services/grid/policy/deadlines.yaml (a test keeps them equal).
DEFAULT_POLICY_MAPPING: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "working_days_only": False,
    "holidays": [],
    "urgent": {"register": "5m", "dispatch": "5m"},
    "default": {"register": "15m", "dispatch": "15m", "handle": "5d", "verify": "1h", "accept": "2h", "contact": "4h"},
    "rules": {
        "hazard.fire/general": {"handle": "3d"},
        "hazard.fire/major": {"urgent": True, "handle": "2d"},
        "hazard.fire/severe": {"urgent": True, "control": "4h", "handle": "24h"},
        "hazard.production/general": {"handle": "3d"},
        "hazard.production/major": {"urgent": True, "handle": "2d"},
        "hazard.production/severe": {"urgent": True, "control": "4h", "handle": "24h"},
        "hazard.food/general": {"handle": "3d"},
        "hazard.food/major": {"urgent": True, "handle": "2d"},
        "hazard.food/severe": {"urgent": True, "control": "4h", "handle": "24h"},
        "dispute.neighbour": {"handle": "5d"},
        "dispute.property": {"handle": "5d"},
        "dispute.labour": {"handle": "5d"},
        "environment": {"handle": "2d"},
        "public_facility": {"handle": "3d"},
        "resident_need": {"handle": "3d"},
    },
}

DEFAULT_POLICY = DeadlinePolicy.from_mapping(DEFAULT_POLICY_MAPPING)
