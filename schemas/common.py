"""Base classes and shared codes of the contract.

Every command and event payload (the CloudEvents ``data``) is a frozen pydantic model that
derives from :class:`Command` or :class:`Event` and declares:

- ``TYPE``: the CloudEvents ``type`` string, as docs/contract.md describes it (a stable string,
  never a module path);
- ``SUBJECT``: the name of the field that holds the aggregate id, which becomes the
  CloudEvents ``subject`` and the Kafka record key.

Readers are tolerant: unknown fields are ignored (``extra="ignore"``), never a reason to
refuse. New fields are only ever added as optional.

**Occurrence time.** An event's *occurrence-time field* is a top-level date-time field of its
``data`` that says when the fact happened, as opposed to a planned or described time
(deadlines ``due_at`` / ``*_due_at`` / ``accept_by``, the span ``started_at`` /
``ended_at`` of a patrol, a scheme's ``effective_from``, the day a meeting was ``held_at`` as its
minutes say, an agreement's ``valid_from`` / ``valid_until``, the end of a 公示 ``effective_at``). Every new event type has exactly
one, named ``occurred_at`` (a ``Timestamp``, optional or required). Event types published
before this rule keep their names, since the contract is public: ``at`` (orders),
``opened_at`` / ``submitted_at`` / ``reviewed_at`` / ``posted_at`` / ``refused_at`` (points),
and none at all (assessment: the envelope ``time`` says it). Rejections
(:class:`CommandRejectedData`) carry no such field either. ``tests/contract`` freezes that
list, so a new type with an ``at`` or other ``*_at`` occurrence field, or none, fails it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from .codes import COMMUNITY_ID_PATTERN, GRID_ID_LENGTH, GRID_ID_PATTERN, STREET_ID_PATTERN

_REGISTRY: dict[str, type["Payload"]] = {}


class Payload(BaseModel):
    """The ``data`` of a CloudEvent. Subclasses set ``TYPE`` and ``SUBJECT``."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    TYPE: ClassVar[str] = ""
    SUBJECT: ClassVar[str] = ""
    KIND: ClassVar[str] = ""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        t = cls.__dict__.get("TYPE")
        if t:
            if t in _REGISTRY and _REGISTRY[t] is not cls:
                raise TypeError(f"message type {t!r} defined twice: {_REGISTRY[t]} and {cls}")
            if not cls.SUBJECT or cls.SUBJECT not in cls.model_fields:
                raise TypeError(f"{cls.__name__}.SUBJECT must name one of its fields")
            _REGISTRY[t] = cls

    @property
    def aggregate_id(self) -> str:
        """The aggregate id: CloudEvents ``subject`` and Kafka record key."""
        return str(getattr(self, self.SUBJECT))

    @classmethod
    def service(cls) -> str:
        return cls.TYPE.split(".", 1)[0]


class Command(Payload):
    """An instruction sent to a service on ``<svc>.intake.v1`` (imperative name)."""

    KIND: ClassVar[str] = "command"


class Event(Payload):
    """A fact a service publishes on ``<svc>.events.v1`` (past-tense name)."""

    KIND: ClassVar[str] = "event"


class CommandRejectedData(Event):
    """A command refused by the rules, published on ``<svc>.rejections.v1``.

    ``reason`` is a stable machine-readable code (e.g. ``illegal_transition``,
    ``unknown_grid``, ``insufficient_balance``); ``detail`` is for humans. ``no_change``: the
    command was valid but the state already is what it asks (sent again under a new command
    id), so it caused no event.
    """

    SUBJECT: ClassVar[str] = "command_id"

    command_id: str
    command_type: str
    reason: str
    detail: str = ""
    field: str | None = Field(default=None, description="the command field at fault, when there is one")


# ---------------------------------------------------------------------------------------
# Shared codes
# ---------------------------------------------------------------------------------------

NonEmptyStr = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=10_000)]
Timestamp = AwareDatetime  # RFC 3339 with offset


# Codes are checked by pydantic's Rust regex engine, in which ``[0-9]`` is the ten ASCII digits
# only (never "١" or "１"): no Python validator per field, which on the hot path would cost a
# noticeable share of a worker's decode. The code tree (division 6 + street 3 + community 3 +
# grid 3) and its patterns are in :mod:`schemas.codes`.
GridId = Annotated[str, StringConstraints(min_length=GRID_ID_LENGTH, max_length=GRID_ID_LENGTH, pattern=GRID_ID_PATTERN)]
CommunityId = Annotated[str, StringConstraints(pattern=COMMUNITY_ID_PATTERN)]
StreetId = Annotated[str, StringConstraints(pattern=STREET_ID_PATTERN)]


# ---------------------------------------------------------------------------------------
# Personal data
# ---------------------------------------------------------------------------------------

PII_CATEGORIES: dict[str, str] = {
    "identifier": "an id that names a person (resident, member, grid worker, officer, reviewer; "
                  "an account id that embeds one; a scorecard entity that may be a person)",
    "name": "a person's name",
    "contact": "a phone number, e-mail or other way to reach a person",
    "location": "coordinates, an address or a route where a person was or lives",
    "free_text": "text a person wrote (description, note, comment, reason, result)",
    "media": "photos, videos or other recordings (URLs or object keys)",
    "credential": "a secret a person hands over (a consent code); never published",
}
"""The personal data categories of the contract (``x-pii`` in the generated JSON Schemas)."""


def pii(category: str) -> Any:
    """Tag a field as personal data: ``field: Annotated[T, pii("free_text")]``. Shows as
    ``"x-pii": "<category>"`` on the property in the JSON Schema and AsyncAPI; read back by
    :mod:`schemas.pii` (the inventory, and what downstream projections leave out)."""
    if category not in PII_CATEGORIES:
        raise ValueError(f"unknown personal data category {category!r}; known: {sorted(PII_CATEGORIES)}")
    return Field(json_schema_extra={"x-pii": category})


# ---------------------------------------------------------------------------------------
# Erasure of a person (every service has a command and an event of these shapes)
# ---------------------------------------------------------------------------------------

ERASED_PREFIX = "erased-"
"""Every pseudonym an erasure gives a person starts with this."""


class ErasePersonCommand(Command):
    """擦除 Erase a person's personal data in this service: sent by a data protection officer,
    with the reason. The person's id is replaced by a pseudonym wherever the service keeps it,
    their free text, addresses, locations and media are removed, and the service publishes
    ``<svc>.person.erased.v1`` so that the services holding copies do the same. Amounts and
    aggregate statistics stay as they are (the points ledger still sums to zero). Erasing a
    person again changes nothing and publishes nothing."""

    SUBJECT: ClassVar[str] = "person_id"

    person_id: Annotated[NonEmptyStr, pii("identifier")] = Field(description="the person to erase: a resident, "
                                                                      "member, grid worker or other person id")
    reason: Annotated[NonEmptyStr, pii("free_text")] = Field(description="why (the legal ground, the request's reference)")
    requested_by: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        default=None, description="the data protection officer (filled from the token)")


class PersonErasedEvent(Event):
    """A person's data was erased in this service (by a command, or in reaction to another
    service's ``person.erased.v1``).

    ``person_id`` is the original id, carried this once: a subscriber cannot find the rows to
    erase without it (a digest would need every id it holds hashed to compare). It is the last
    record naming the person; the record key is the pseudonym. ``pseudonym`` is what the person
    is called from now on, in every service: a subscriber erasing in reaction uses the same one,
    so that counts per person still agree across services."""

    SUBJECT: ClassVar[str] = "pseudonym"

    pseudonym: str = Field(min_length=len(ERASED_PREFIX) + 1, max_length=100,
                           description="the pseudonym that replaces the id everywhere (`erased-<random>`)")
    person_id: Annotated[NonEmptyStr, pii("identifier")] = Field(
        description="the erased id, so that subscribers can erase their copies; never stored by them")
    occurred_at: Timestamp


def now() -> datetime:
    from datetime import timezone

    return datetime.now(timezone.utc)
