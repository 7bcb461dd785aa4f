"""The one topic registry. Every producer, consumer and the provisioner take names from here.

No topic name is typed anywhere else in the code base.
"""
from __future__ import annotations

from dataclasses import dataclass

from .registry import SERVICES, types_of


@dataclass(frozen=True)
class Topic:
    """A topic of the contract.

    ``kind``: intake (commands in), events (facts out), rejections (refused commands),
    dlq (records that could not be processed, raw, with the reason in headers).
    ``partitions``: None = the deployment's default partition count.
    """

    name: str
    service: str
    kind: str
    key: str
    description: str
    partitions: int | None = None
    writers: str = ""

    @property
    def message_types(self) -> frozenset[str]:
        """Types that may appear on this topic (empty for a DLQ: anything, raw)."""
        if self.kind == "intake":
            return types_of(self.service, "command")
        if self.kind == "events":
            return types_of(self.service, "event")
        if self.kind == "rejections":
            return frozenset({f"{self.service}.command.rejected.v1"})
        return frozenset()


_KEYS = {
    "grid": ("case id / grid id", "grid apps, other systems"),
    "orders": ("order id / member id", "resident apps, community consoles"),
    "points": ("account id", "resident apps, community consoles, merchants"),
    "assessment": ("entity id", "community and street consoles"),
    "party": ("org / council / unit / project / member id", "party and community consoles"),
}


@dataclass(frozen=True)
class ServiceTopics:
    service: str
    intake: Topic
    events: Topic
    rejections: Topic
    dlq: Topic

    def all(self) -> tuple[Topic, ...]:
        return (self.intake, self.events, self.rejections, self.dlq)


def _service_topics(svc: str) -> ServiceTopics:
    key, writers = _KEYS[svc]
    return ServiceTopics(
        service=svc,
        intake=Topic(f"{svc}.intake.v1", svc, "intake", key, f"commands for the {svc} service", writers=writers),
        events=Topic(f"{svc}.events.v1", svc, "events", key, f"facts published by the {svc} service", writers=f"{svc} service only"),
        rejections=Topic(
            f"{svc}.rejections.v1", svc, "rejections", "same as intake",
            "commands that were refused, with the reason and the command's id", writers=f"{svc} service only",
        ),
        dlq=Topic(
            f"{svc}.dlq.v1", svc, "dlq", "original key",
            "records that could not be parsed or processed; origin topic/partition/offset and error in headers",
            writers=f"{svc} service only",
        ),
    )


GRID = _service_topics("grid")
ORDERS = _service_topics("orders")
POINTS = _service_topics("points")
ASSESSMENT = _service_topics("assessment")
PARTY = _service_topics("party")

BY_SERVICE: dict[str, ServiceTopics] = {t.service: t for t in (GRID, ORDERS, POINTS, ASSESSMENT, PARTY)}
assert tuple(BY_SERVICE) == SERVICES

ALL_TOPICS: tuple[Topic, ...] = tuple(t for s in BY_SERVICE.values() for t in s.all())
BY_NAME: dict[str, Topic] = {t.name: t for t in ALL_TOPICS}


def topic(name: str) -> Topic:
    """Look a topic up by name (for tools that take a name on the command line)."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown topic {name!r}; known: {sorted(BY_NAME)}") from None
