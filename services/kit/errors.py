"""Errors shared by the pure domains and the kit. No I/O here."""
from __future__ import annotations

from typing import Mapping, TypeVar

R = TypeVar("R")


class Rejected(Exception):
    """A command refused by the rules of a domain.

    ``reason`` is a stable, machine-readable code (``illegal_transition``, ``unknown_grid``,
    ``insufficient_balance``...). It becomes ``<svc>.command.rejected.v1`` on the rejections
    topic (Kafka path) or HTTP 409 (HTTP path). ``field`` names the command field at fault,
    when there is one.
    """

    def __init__(self, reason: str, detail: str = "", field: str | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.field = field
        self.effects: list = []

    def after_commit(self, fn) -> "Rejected":
        """Run ``fn`` once the refusal is committed (e.g. a metric of the refusal itself: the
        refused command's own after-commit effects are undone with it)."""
        self.effects.append(fn)
        return self


class NoChange(Rejected):
    """``no_change``: a command whose handler decided nothing — no event, no refusal — because
    the state already is what it asks (a registration, a close, an erasure sent again under a
    new command id). The kit answers every such command of a service's own with this rejection
    (:func:`services.kit.handlers.dispatch`), so that each command has an outcome; what the
    handler wrote meanwhile stays."""

    def __init__(self, command_type: str):
        super().__init__("no_change", f"{command_type} changes nothing: the state already is what it asks")
        self.command_type = command_type


class IllegalTransition(Rejected):
    """The command does not apply in the aggregate's current state."""

    def __init__(self, command: str, state: str, detail: str = ""):
        super().__init__("illegal_transition", detail or f"{command} is not allowed in state {state!r}")
        self.command = command
        self.state = state


class NotFound(Rejected):
    """The command addresses an aggregate that does not exist."""

    def __init__(self, what: str, id: str, field: str | None = None):
        super().__init__(f"unknown_{what}", f"no {what} {id!r}", field)


def rule_for(rules: Mapping[type, R], command: object, domain: str) -> R:
    """The rule a domain's table holds for the command's class. A class without one is a bug
    (the kit routes to a domain only the classes its handler declares): ``TypeError``."""
    rule = rules.get(type(command))
    if rule is None:
        raise TypeError(f"the {domain} domain has no rule for {type(command).__name__}")
    return rule
