"""The pure domain of the grid service: the closed loop of grid case handling.

Walk it in this order:

- :mod:`schemas.grid` — the messages: the commands and the events (the contract).
- :mod:`.state` — :class:`CaseState`, its :class:`CaseStatus` and :class:`Deadline` records.
- :mod:`.decide` — ``decide(state, command, ctx) -> list[Event]`` (refusals raise
  :class:`services.kit.errors.Rejected` subclasses from :mod:`.errors`), and the timer's
  ``check_overdue(state, now, policy)`` / ``next_check_at(state)``.
- :mod:`.evolve` — ``evolve(state, event) -> state`` and ``evolve_all(states, events)``.
- :mod:`.policy` — :class:`DeadlinePolicy` (``from_mapping``, ``limits_for``, ``due``,
  ``working_between``), with limits on the clock or in working time.
- :mod:`.calendar` — :class:`WorkCalendar`: working days (holidays, 调休) and working hours.
- :mod:`.geo` — ``find_duplicate`` (haversine, 250 m by default) and :class:`OpenCase`.
- :mod:`.publication` — what the public Open311 view may show: :data:`PRIVATE_CATEGORIES`,
  rounded positions, descriptions after registration only, dismissal reasons that are codes.

No I/O, no clock: the time and everything else from outside come in a :class:`Context`.
"""
from . import errors
from .calendar import WorkCalendar, YearSchedule
from .decide import DUPLICATE_REASON, Context, check_overdue, decide, next_check_at
from .errors import *  # noqa: F401,F403 (the refusals: errors.__all__)
from .evolve import evolve, evolve_all
from .geo import DEFAULT_DUPLICATE_RADIUS_M, OpenCase, find_duplicate, haversine_m
from .policy import DEFAULT_POLICY, DEFAULT_POLICY_MAPPING, DeadlinePolicy, Limits, Span
from .publication import (
    PRIVATE_CATEGORIES, PUBLIC_CATEGORIES, PUBLIC_COORDINATE_DECIMALS, PUBLIC_DISMISSAL_REASONS,
)
from .state import CaseState, CaseStatus, Deadline

__all__ = [
    "Context", "decide", "evolve", "evolve_all", "check_overdue", "next_check_at", "DUPLICATE_REASON",
    "CaseState", "CaseStatus", "Deadline",
    "DeadlinePolicy", "DEFAULT_POLICY", "DEFAULT_POLICY_MAPPING", "Limits", "Span", "WorkCalendar", "YearSchedule",
    "OpenCase", "find_duplicate", "haversine_m", "DEFAULT_DUPLICATE_RADIUS_M",
    "PRIVATE_CATEGORIES", "PUBLIC_CATEGORIES", "PUBLIC_COORDINATE_DECIMALS", "PUBLIC_DISMISSAL_REASONS",
    *errors.__all__,
]
