"""New event types name their occurrence time ``occurred_at`` (see :mod:`schemas.common`).

An event's *occurrence-time fields* are the top-level ``date-time`` properties of its
``data`` schema that are not planned or described times (:data:`NOT_OCCURRENCE`). Every
event type must have exactly ``["occurred_at"]``, except the types published before the
rule, frozen in :data:`BEFORE_THE_RULE` with what they have (the contract is public, so they
keep their names), and rejections (:class:`schemas.common.CommandRejectedData`, whose time is
the envelope's). The frozen list only ever shrinks: a type in it that changes, or a new type
with an ``at`` / ``*_at`` field (or with no time at all), fails here.
"""
from __future__ import annotations

from typing import Any, ClassVar

import pytest

from schemas.common import CommandRejectedData, Event, Timestamp
from schemas.registry import all_types

OCCURRED_AT = "occurred_at"


def not_occurrence(name: str) -> bool:
    """Planned or described times: deadlines, a patrol's span, a scheme's start, an extension asked for,
    when a meeting was held (its minutes), an agreement's validity, the end of a 公示."""
    return name.endswith("due_at") or name in {"accept_by", "report_by", "until", "started_at", "ended_at",
                                               "effective_from", "held_at", "valid_from", "valid_until",
                                               "effective_at"}


NOT_OCCURRENCE = ("due_at, *_due_at, accept_by, report_by, until, started_at, ended_at, effective_from, held_at, "
                  "valid_from, valid_until, effective_at")

BEFORE_THE_RULE: dict[str, tuple[str, ...]] = {
    "assessment.alert.raised.v1": (),
    "assessment.review.recorded.v1": (),
    "assessment.scheme.changed.v1": (),
    "assessment.scorecard.published.v1": (),
    "orders.member.registered.v1": ("at",),
    "orders.order.accepted.v1": ("at",),
    "orders.order.cancelled.v1": ("at",),
    "orders.order.completed.v1": ("at",),
    "orders.order.declined.v1": ("at",),
    "orders.order.dispatch_expired.v1": ("at",),
    "orders.order.dispatched.v1": ("at",),
    "orders.order.evaluated.v1": ("at",),
    "orders.order.placed.v1": ("at",),
    "orders.post.claimed.v1": ("at",),
    "orders.post.released.v1": ("at",),
    "points.account.opened.v1": ("opened_at",),
    "points.deed.approved.v1": ("reviewed_at",),
    "points.deed.rejected.v1": ("reviewed_at",),
    "points.deed.submitted.v1": ("submitted_at",),
    "points.transfer.posted.v1": ("posted_at",),
    "points.transfer.refused.v1": ("refused_at",),
}
"""Event types published before the rule → their occurrence-time fields (frozen: never add)."""


def _is_date_time(prop: dict[str, Any]) -> bool:
    return any(p.get("format") == "date-time" for p in [prop, *prop.get("anyOf", []), *prop.get("oneOf", [])])


def occurrence_fields(model: type[Event]) -> tuple[str, ...]:
    props = model.model_json_schema(mode="validation").get("properties", {})
    return tuple(sorted(n for n, p in props.items() if _is_date_time(p) and not not_occurrence(n)))


def rule_problem(message_type: str, model: type[Event]) -> str | None:
    """Why an event type breaks the rule; None when it keeps it."""
    found = occurrence_fields(model)
    if message_type in BEFORE_THE_RULE:
        frozen = BEFORE_THE_RULE[message_type]
        if found != frozen:
            return (f"{message_type} was frozen with occurrence-time fields {list(frozen)} and now has {list(found)}; "
                    "its public names stay as they are")
        return None
    if found != (OCCURRED_AT,):
        return (f"{message_type}: a new event type names its occurrence time `{OCCURRED_AT}` (a Timestamp) and has no "
                f"other occurrence-time field; it has {list(found)} (planned times: {NOT_OCCURRENCE})")
    return None


EVENTS = {t: m for t, m in sorted(all_types().items()) if issubclass(m, Event) and not issubclass(m, CommandRejectedData)}


@pytest.mark.parametrize("message_type", sorted(EVENTS))
def test_event_types_name_their_occurrence_time_occurred_at(message_type: str):
    assert rule_problem(message_type, EVENTS[message_type]) is None


def test_the_frozen_list_names_only_registered_event_types():
    stray = sorted(set(BEFORE_THE_RULE) - set(EVENTS))
    assert not stray, f"no longer registered event types (remove them from BEFORE_THE_RULE): {stray}"


def test_the_frozen_list_holds_only_types_that_break_the_rule():
    keeping = sorted(t for t, fields in BEFORE_THE_RULE.items() if fields == (OCCURRED_AT,))
    assert not keeping, f"these follow the rule, so they need no place in BEFORE_THE_RULE: {keeping}"


def test_grid_events_follow_the_rule():
    grid = [t for t in EVENTS if t.startswith("grid.")]
    assert grid and all(occurrence_fields(EVENTS[t]) == (OCCURRED_AT,) for t in grid)


# ---------------------------------------------------------------------------------------
# The rule refuses what it should
# ---------------------------------------------------------------------------------------


class _WithAt(Event):
    """A made-up new event whose time is named ``at``."""

    SUBJECT: ClassVar[str] = "thing_id"
    thing_id: str
    at: Timestamp | None = None


class _WithOccurredAt(Event):
    """A made-up new event that follows the rule, with a deadline beside its time."""

    SUBJECT: ClassVar[str] = "thing_id"
    thing_id: str
    occurred_at: Timestamp | None = None
    due_at: Timestamp | None = None


class _WithTwoTimes(_WithOccurredAt):
    """A made-up new event with a second occurrence-time field."""

    recorded_at: Timestamp


class _WithoutTime(Event):
    """A made-up new event with no time field."""

    SUBJECT: ClassVar[str] = "thing_id"
    thing_id: str


@pytest.mark.parametrize("model", [_WithAt, _WithTwoTimes, _WithoutTime])
def test_a_new_event_type_without_occurred_at_fails(model):
    assert rule_problem("testing.thing.happened.v1", model) is not None


def test_a_new_event_type_with_occurred_at_passes():
    assert rule_problem("testing.thing.happened.v1", _WithOccurredAt) is None


def test_a_frozen_type_that_renames_its_time_fails():
    assert rule_problem("orders.order.placed.v1", _WithOccurredAt) is not None
