"""The CloudEvents 1.0 envelope, structured JSON mode, with correlation extensions.

A record's value is the UTF-8 JSON of :class:`CloudEvent`; its ``content-type`` header is
:data:`CONTENT_TYPE`; its key is the ``subject`` (the aggregate id).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from .common import Payload
from .registry import model_for

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
CONTENT_TYPE_HEADER = "content-type"


class CloudEvent(BaseModel):
    """CloudEvents 1.0 attributes plus the ``correlationid``/``causationid`` extensions.

    ``id`` is unique per ``source``; a repeated (``source``, ``id``) is a duplicate.
    ``causationid`` is the id of the message that caused this one; ``correlationid`` follows
    a whole story across services. Unknown extension attributes are kept, never refused.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: str = Field(default="1.0", pattern=r"^1\.0$")
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: str = Field(min_length=1, max_length=200)
    time: AwareDatetime | None = None
    subject: str | None = Field(default=None, max_length=200)
    datacontenttype: str = "application/json"
    correlationid: str | None = Field(default=None, max_length=200)
    causationid: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)


class DecodeError(ValueError):
    """A record that cannot be read as a contract message. ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str, field: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded message: the envelope and its typed payload."""

    envelope: CloudEvent
    payload: Payload

    @property
    def id(self) -> str:
        return self.envelope.id

    @property
    def source(self) -> str:
        return self.envelope.source

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def correlation_id(self) -> str:
        return self.envelope.correlationid or self.envelope.id


def new_id() -> str:
    return str(uuid.uuid4())


def envelope_for(
    payload: Payload,
    *,
    source: str,
    id: str | None = None,
    time: datetime | None = None,
    correlationid: str | None = None,
    causationid: str | None = None,
) -> CloudEvent:
    """Wrap a payload in a CloudEvent; ``subject`` is the payload's aggregate id."""
    return CloudEvent(
        id=id or new_id(),
        source=source,
        type=payload.TYPE,
        time=time or datetime.now(timezone.utc),
        subject=payload.aggregate_id,
        correlationid=correlationid,
        causationid=causationid,
        data=payload.model_dump(mode="json", exclude_none=False),
    )


def build(
    payload: Payload,
    *,
    source: str,
    time: datetime,
    id: str | None = None,
    subject: str | None = None,
    correlationid: str | None = None,
    causationid: str | None = None,
) -> tuple[CloudEvent, bytes]:
    """Envelope and its encoded bytes in one step, without re-validating what we just built.

    The hot path of every publisher: the payload is already a validated model.
    """
    eid = id or str(uuid.uuid4())
    attrs: dict[str, Any] = {
        "specversion": "1.0", "id": eid, "source": source, "type": payload.TYPE, "time": time.isoformat(),
        "subject": subject or payload.aggregate_id, "datacontenttype": "application/json",
        "correlationid": correlationid or eid,
    }
    if causationid is not None:
        attrs["causationid"] = causationid
    attrs["data"] = payload.model_dump(mode="json")
    value = orjson.dumps(attrs)
    env = CloudEvent.model_construct(**{**attrs, "time": time})
    return env, value


def encode(envelope: CloudEvent) -> bytes:
    """Structured-mode JSON bytes of an envelope."""
    return orjson.dumps(envelope.model_dump(mode="json", exclude_none=True))


def decode_envelope(raw: bytes | str | dict) -> CloudEvent:
    if isinstance(raw, (bytes, str)):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise DecodeError("malformed_json", str(e)) from None
    else:
        obj = raw
    if not isinstance(obj, dict):
        raise DecodeError("not_an_object", "the record value must be a JSON object")
    try:
        return CloudEvent.model_validate(obj)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        raise DecodeError("invalid_envelope", f"{field}: {err['msg']}", field) from None


def decode_payload(envelope: CloudEvent, allowed: frozenset[str] | None = None) -> Payload:
    if allowed is not None and envelope.type not in allowed:
        raise DecodeError("unexpected_type", f"type {envelope.type!r} does not belong on this topic", "type")
    model = model_for(envelope.type)
    if model is None:
        raise DecodeError("unknown_type", f"unknown message type {envelope.type!r}", "type")
    try:
        return model.model_validate(envelope.data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(["data", *(str(x) for x in err["loc"])])
        raise DecodeError("invalid_data", f"{field}: {err['msg']}", field) from None


def decode(raw: bytes | str | dict, allowed: frozenset[str] | None = None) -> Message:
    """Decode a record value into a typed :class:`Message`, or raise :class:`DecodeError`."""
    env = decode_envelope(raw)
    return Message(envelope=env, payload=decode_payload(env, allowed))
