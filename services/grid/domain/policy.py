"""The deadline policy (时限标准): how long each stage of a case may take.

The policy is data the operator can change (``services/grid/policy/deadlines.yaml``); the
application layer parses the file and hands the mapping to :meth:`DeadlinePolicy.from_mapping`,
with the working-time calendar (``services/grid/policy/calendar.yaml``, see
:mod:`.calendar`). Nothing here reads a file or a clock.

Shape of the mapping (every key optional except where noted)::

    urgent: {register: 5m, dispatch: 5m, accept: 30m, contact: 1h}   # replace these when urgent
    default: {register: 1wh, dispatch: 1wh, accept: 2wh, contact: 4wh, handle: 5wd, verify: 4wh}
    rules:                           # per category, or per "category/grade" for hazards
      hazard.fire/severe: {urgent: true, control: 4h, handle: 15wd}
      environment: {handle: 2wd}

``default`` must give every stage but ``control`` a limit; ``urgent`` must give ``register``
and ``dispatch``.

A limit is ``<n><unit>``. On the clock: ``s`` seconds (tests and drills), ``m`` minutes,
``h`` hours, ``d`` days of 24 hours. In working time, on the calendar: ``wh`` working hours
(only the working periods of working days count) and ``wd`` working days (the n-th following
working day at the same local time; a start outside working time counts from the next working
period's start). So an urgent case reported on a Saturday night is still registered within
minutes (``5m``), while an ordinary one is due one working hour into Monday (``1wh``).

Each stage's limit runs from the start of that stage: register (立案) from the report,
dispatch (派遣) from registration; accept (签收), contact (先行联系), control (管控) and handle
(处置) from dispatch, handle also from a failed verification (``rework``, which defaults to
``handle``); verify (核查) from handling. ``control`` is the first of a severe hazard's two
stages (重大隐患: brought under control within hours; then rectification, 整改, is ``handle``):
only ``hazard.<kind>/severe`` rules may give it, and other cases have none.

Rules are looked up most specific first: ``category/grade``, then ``category``, then
``default``; a rule only overrides the stages it names. A case is urgent when the report
says so or its rule has ``urgent: true``.

Due times are expressed in the calendar's time zone. The keys ``timezone``,
``working_days_only``, ``holidays`` (now in the calendar) and ``escalate_on_overdue`` (a missed
deadline leads to supervision, 超期督办, not to escalation) are refused.
"""
from __future__ import annotations

import re
from dataclasses import fields
from datetime import date, datetime, timedelta
from typing import Any, Literal, Mapping
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from schemas.grid import Category, Grade, Stage

from .calendar import WorkCalendar

_SPAN_RE = re.compile(r"^\s*([0-9]+)\s*(s|m|h|d|wh|wd)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

class Span(BaseModel):
    """A time limit, written ``"10m"``, ``"4h"``, ``"3d"`` on the clock, or ``"4wh"``, ``"5wd"``
    in working hours and working days (seconds, ``"30s"``, exist for tests and drills)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: int = Field(gt=0)
    unit: Literal["s", "m", "h", "d", "wh", "wd"]

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, v: Any) -> Any:
        if isinstance(v, str):
            m = _SPAN_RE.match(v)
            if not m:
                raise ValueError(f"a time limit is written like 10m, 4h, 3d, 4wh or 5wd, not {v!r}")
            return {"amount": int(m.group(1)), "unit": m.group(2)}
        return v

    @property
    def working(self) -> bool:
        """Whether the span runs in working time (``wh``, ``wd``) rather than on the clock."""
        return self.unit in ("wh", "wd")

    @property
    def clock(self) -> timedelta:
        """A clock span as a duration (a day = 24 h); a working-time span has none."""
        if self.working:
            raise ValueError(f"{self} runs in working time: ask the policy when it is due")
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
    accept: Span | None = None
    contact: Span | None = None
    control: Span | None = None
    handle: Span | None = None
    verify: Span | None = None
    rework: Span | None = None


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class UrgentLimits:
    """Limits that replace the rule's for urgent cases (紧急案件): register and dispatch, and
    optionally accept and contact."""

    register: Span
    dispatch: Span
    accept: Span | None = None
    contact: Span | None = None


@dataclass(frozen=True)
class Limits:
    """The limits that apply to one case, resolved from the policy (``control`` only for a
    severe hazard whose rule gives it)."""

    urgent: bool
    register: Span
    dispatch: Span
    accept: Span
    contact: Span
    handle: Span
    verify: Span
    rework: Span
    control: Span | None = None

    def for_stage(self, stage: Stage) -> Span | None:
        return getattr(self, stage.value)


_STAGE_LIMIT_FIELDS = tuple(f.name for f in fields(StageLimits))
_URGENT_FIELDS = tuple(f.name for f in fields(UrgentLimits))

_REMOVED_KEYS = {
    "timezone": "the time zone is the working-time calendar's (services/grid/policy/calendar.yaml)",
    "working_days_only": "write limits in working days (wd) or working hours (wh); working days are in the "
                         "working-time calendar (services/grid/policy/calendar.yaml)",
    "holidays": "holidays and make-up working days (调休) are in the working-time calendar "
                "(services/grid/policy/calendar.yaml)",
    "escalate_on_overdue": "a missed deadline leads to supervision (超期督办), not escalation; escalation is a "
                           "deliberate command",
}


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
    """The deadline policy of the grid service (see the module docstring for its shape), with
    the working-time calendar its ``wh`` and ``wd`` limits run on (by default Monday–Friday,
    09:00–12:00 and 13:30–17:30, no holidays)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    urgent: UrgentLimits = UrgentLimits(register=Span(amount=5, unit="m"), dispatch=Span(amount=5, unit="m"))
    default: StageLimits
    rules: dict[str, StageLimits] = Field(default_factory=dict)
    calendar: WorkCalendar = WorkCalendar()

    @model_validator(mode="before")
    @classmethod
    def _no_removed_keys(cls, v: Any) -> Any:
        if isinstance(v, Mapping):
            for key, why in _REMOVED_KEYS.items():
                if key in v:
                    raise ValueError(f"{key!r} is no longer a key of the deadline policy: {why}")
        return v

    @field_validator("default")
    @classmethod
    def _complete_default(cls, v: StageLimits) -> StageLimits:
        missing = [s.value for s in Stage if s is not Stage.CONTROL and getattr(v, s.value) is None]
        if missing:
            raise ValueError(f"the default rule must give every stage but control a limit; missing: {', '.join(missing)}")
        if v.control is not None:
            raise ValueError("control (管控) is for severe hazards only: give it in hazard.<kind>/severe rules")
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
        control = [k for k, r in v.items() if r.control is not None and not k.endswith(f"/{Grade.SEVERE.value}")]
        if control:
            raise ValueError(f"control (管控) is for severe hazards only (hazard.<kind>/severe), not {control}")
        return v

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], calendar: WorkCalendar | None = None) -> "DeadlinePolicy":
        """Build a policy from a parsed YAML/JSON mapping, on ``calendar`` (default: Monday–Friday);
        raises ``pydantic.ValidationError``."""
        data = dict(mapping)
        if calendar is not None:
            data["calendar"] = calendar
        return cls.model_validate(data)

    @property
    def tz(self) -> ZoneInfo:
        """The calendar's time zone, in which due times are expressed."""
        return self.calendar.tz

    def limits_for(self, category: Category, grade: Grade | None = None, urgent: bool = False) -> Limits:
        """The limits for a case of ``category``/``grade``; ``urgent`` as asked by the reporter."""
        merged: dict[str, Any] = {}
        keys = (category.value, f"{category.value}/{grade.value}" if grade else None)
        for rule in (self.default, *(self.rules.get(k) for k in keys if k)):
            if rule is not None:
                merged.update({k: getattr(rule, k) for k in _STAGE_LIMIT_FIELDS if getattr(rule, k) is not None})
        is_urgent = bool(urgent or merged.get("urgent"))
        if is_urgent:
            merged.update({k: getattr(self.urgent, k) for k in _URGENT_FIELDS if getattr(self.urgent, k) is not None})
        merged.setdefault("rework", merged["handle"])
        merged["urgent"] = is_urgent
        return Limits(**merged)

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day of the calendar."""
        return self.calendar.is_workday(day)

    def due(self, start: datetime, span: Span) -> datetime:
        """When a stage that starts at ``start`` with limit ``span`` is due, in the calendar's zone."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if span.unit == "wh":
            return self.calendar.add_working_hours(start, span.amount * 3600)
        if span.unit == "wd":
            return self.calendar.add_working_days(start, span.amount)
        return (start + span.clock).astimezone(self.tz)

    def working_between(self, a: datetime, b: datetime) -> float:
        """Seconds of working time from ``a`` to ``b`` on the calendar (negative when ``b`` is
        earlier): what "within N working hours" rates measure."""
        return self.calendar.working_seconds_between(a, b)


# The defaults, identical to services/grid/policy/deadlines.yaml (a test keeps them equal).
DEFAULT_POLICY_MAPPING: dict[str, Any] = {
    "urgent": {"register": "5m", "dispatch": "5m", "accept": "30m", "contact": "1h"},
    "default": {"register": "1wh", "dispatch": "1wh", "accept": "2wh", "contact": "4wh", "handle": "5wd",
                "verify": "4wh"},
    "rules": {
        "hazard.fire/general": {"handle": "3wd"},
        "hazard.fire/major": {"urgent": True, "handle": "2wd"},
        "hazard.fire/severe": {"urgent": True, "control": "4h", "handle": "15wd"},
        "hazard.production/general": {"handle": "3wd"},
        "hazard.production/major": {"urgent": True, "handle": "2wd"},
        "hazard.production/severe": {"urgent": True, "control": "4h", "handle": "15wd"},
        "hazard.food/general": {"handle": "3wd"},
        "hazard.food/major": {"urgent": True, "handle": "2wd"},
        "hazard.food/severe": {"urgent": True, "control": "4h", "handle": "15wd"},
        "dispute.neighbour": {"handle": "5wd"},
        "dispute.property": {"handle": "5wd"},
        "dispute.labour": {"handle": "5wd"},
        "environment": {"handle": "2wd"},
        "public_facility": {"handle": "3wd"},
        "resident_need": {"handle": "3wd"},
    },
}

# On the default calendar (Monday–Friday, no holidays): the application replaces it with the
# calendar file's (services.grid.app.handler.load_policy).
DEFAULT_POLICY = DeadlinePolicy.from_mapping(DEFAULT_POLICY_MAPPING)
