"""The CloudEvents 1.0 envelope, structured JSON mode, with correlation extensions.

A record's value is the UTF-8 JSON of :class:`CloudEvent`; its ``content-type`` header is
:data:`CONTENT_TYPE`; its key is the ``subject`` (the aggregate id).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from .common import _REGISTRY, Payload
from .registry import model_for
from .wire import CONTENT_TYPE, CONTENT_TYPE_HEADER  # noqa: F401  (part of this module's API)


class CloudEvent(BaseModel):
    """CloudEvents 1.0 attributes plus the ``correlationid``/``causationid`` extensions.

    ``id`` is unique per ``source``; a repeated (``source``, ``id``) is a duplicate.
    ``causationid`` is the id of the message that caused this one; ``correlationid`` follows
    a whole story across services. Unknown extension attributes are kept, never refused.

    Bounds, so that every consumer can record (``source``, ``id``) in its inbox (a PostgreSQL
    btree entry, at most 2704 bytes): ``id`` at most 200 characters (≤ 800 bytes of UTF-8),
    ``source`` at most 500 characters and :data:`SOURCE_MAX_BYTES` bytes of UTF-8 (any 500
    characters of the Basic Multilingual Plane fit). No string of an envelope, ``data``
    included, may hold U+0000, which PostgreSQL text and jsonb cannot store
    (:func:`decode_envelope` refuses it as ``nul_character``).
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


SOURCE_MAX_BYTES = 1800  # with an id's 800 bytes at most, an inbox key stays under PostgreSQL's btree limit
NUL_ESCAPE = b"\\u0000"  # the only way JSON text can hold U+0000 (a raw NUL byte is malformed JSON)


def source_fits(env: CloudEvent) -> bool:
    """Whether the envelope's ``source`` is within :data:`SOURCE_MAX_BYTES` bytes of UTF-8 (a
    length check that costs nothing for the usual short source; not a model validator, which
    would run in Python for every record)."""
    source = env.source
    return len(source) <= SOURCE_MAX_BYTES // 4 or len(source.encode("utf-8", "surrogatepass")) <= SOURCE_MAX_BYTES


def nul_field(obj: Any) -> str | None:
    """The dotted path (``data.media.0``) of the first string in a decoded JSON value that holds
    U+0000, an object key included (named with its NUL written ``\\u0000``); None if none does."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), obj)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                return ".".join(path) or "value"
        elif isinstance(v, dict):
            children = []
            for k, x in v.items():
                k = str(k)
                if "\x00" in k:
                    return ".".join((*path, k.replace("\x00", "\\u0000")))
                children.append(((*path, k), x))
            stack.extend(reversed(children))  # depth first, in document order
        elif isinstance(v, list):
            stack.extend(((*path, str(i)), x) for i, x in reversed(list(enumerate(v))))
    return None


def refuse_nul(obj: Any) -> None:
    """Raise :class:`DecodeError` ``nul_character`` naming the field if a string holds U+0000."""
    field = nul_field(obj)
    if field is not None:
        raise DecodeError("nul_character", f"{field}: the text holds the NUL character (U+0000), which is not allowed",
                          field)


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded message: the envelope and its typed payload (and the record's bytes, when it
    came from Kafka). Use :meth:`data` for the raw ``data`` object, unknown fields included."""

    envelope: CloudEvent
    payload: Payload
    raw: bytes | None = None
    principal: Any = None
    """Who sent it, verified (a :class:`services.kit.identity.Principal`): the caller of an HTTP
    command, or the holder of an intake record's token; None for another service's event."""

    def data(self) -> dict[str, Any]:
        """The envelope's ``data`` as received (fields this reader does not know included)."""
        d = self.envelope.data
        if isinstance(d, dict):
            return d
        if self.raw is not None:
            return orjson.loads(self.raw)["data"]
        return self.payload.model_dump(mode="json")

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


_ids = random.Random()  # seeded from os.urandom; the random module reseeds it in a forked child


def new_id() -> str:
    """A random (version 4) UUID string for an envelope id.

    Ids need only be unique per source; drawing 122 random bits from a PRNG seeded from the OS
    keeps uuid4's collision odds without a getrandom() system call per event (on the hot path
    that call per event was a sizeable part of a worker's CPU)."""
    h = "%032x" % ((_ids.getrandbits(128) & _ID_MASK) | _ID_BITS)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_ID_MASK = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_ID_BITS = (0x4 << 76) | (0x2 << 62)


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


def rfc3339(t: datetime) -> str:
    """A time as the contract writes it (and as pydantic does): UTC as ``Z``, else the offset."""
    s = t.isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s


_last_time: list = [None, ""]  # the last time written: a batch's events mostly share one


def _rfc3339_memo(t: datetime) -> str:
    last = _last_time
    held = last[0]
    if held is not t:
        # an equal instant at the same offset is written the same (times read from the database
        # are equal without being one object)
        if held is None or held != t or held.utcoffset() != t.utcoffset():
            last[1] = rfc3339(t)
        last[0] = t
    return last[1]


class Emitted:
    """An envelope this process has just built from a validated payload.

    It has the attributes of :class:`CloudEvent` (``time`` as a datetime) without the cost of a
    pydantic model per published event; ``data`` is parsed only when read;
    :meth:`cloudevent` gives the model when one is needed.
    """

    __slots__ = ("id", "source", "type", "time", "subject", "correlationid", "causationid", "_data_json", "_data")
    specversion = "1.0"
    datacontenttype = "application/json"

    def __init__(self, *, id: str, source: str, type: str, time: datetime, subject: str, correlationid: str,
                 causationid: str | None, data_json: bytes):
        self.id, self.source, self.type, self.time = id, source, type, time
        self.subject, self.correlationid, self.causationid = subject, correlationid, causationid
        self._data_json = data_json
        self._data: dict[str, Any] | None = None

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = orjson.loads(self._data_json)
        return self._data

    def model_dump(self, mode: str = "json", exclude_none: bool = False) -> dict[str, Any]:
        out = {"specversion": self.specversion, "id": self.id, "source": self.source, "type": self.type,
               "time": rfc3339(self.time) if mode == "json" else self.time, "subject": self.subject,
               "datacontenttype": self.datacontenttype, "correlationid": self.correlationid,
               "causationid": self.causationid, "data": self.data}
        if exclude_none:
            out = {k: v for k, v in out.items() if v is not None}
        return out

    def cloudevent(self) -> CloudEvent:
        return CloudEvent.model_validate(self.model_dump())


def build(
    payload: Payload,
    *,
    source: str,
    time: datetime,
    id: str | None = None,
    subject: str | None = None,
    correlationid: str | None = None,
    causationid: str | None = None,
) -> tuple[Emitted, bytes]:
    """Envelope and its encoded bytes in one step, without re-validating what we just built.

    The hot path of every publisher: the payload is already a validated model.
    """
    eid = id or new_id()
    data_json = payload.__pydantic_serializer__.to_json(payload)
    env = Emitted(id=eid, source=source, type=payload.TYPE, time=time, subject=subject or payload.aggregate_id,
                  correlationid=correlationid or eid, causationid=causationid, data_json=data_json)
    attrs: dict[str, Any] = {
        "specversion": "1.0", "id": eid, "source": source, "type": env.type, "time": _rfc3339_memo(time),
        "subject": env.subject, "datacontenttype": "application/json", "correlationid": env.correlationid,
    }
    if causationid is not None:
        attrs["causationid"] = causationid
    return env, orjson.dumps(attrs)[:-1] + b',"data":' + data_json + b"}"


def encode(envelope: CloudEvent) -> bytes:
    """Structured-mode JSON bytes of an envelope."""
    return orjson.dumps(envelope.model_dump(mode="json", exclude_none=True))


def decode_envelope(raw: bytes | str | dict) -> CloudEvent:
    """The envelope of a record value, or :class:`DecodeError` with the reason: ``malformed_json``,
    ``not_an_object``, ``nul_character`` (a string holds U+0000), ``invalid_envelope``.

    The search for U+0000 walks the value only when its text holds the escape ``\\u0000``
    (a decoded dict is always walked)."""
    if isinstance(raw, (bytes, str)):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise DecodeError("malformed_json", str(e)) from None
        suspect = (NUL_ESCAPE in raw) if isinstance(raw, bytes) else ("\\u0000" in raw)
    else:
        obj = raw
        suspect = True
    if not isinstance(obj, dict):
        raise DecodeError("not_an_object", "the record value must be a JSON object")
    if suspect:
        refuse_nul(obj)
    try:
        env = CloudEvent.model_validate(obj)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        raise DecodeError("invalid_envelope", f"{field}: {err['msg']}", field) from None
    if not source_fits(env):
        raise DecodeError("invalid_envelope", f"source: must be at most {SOURCE_MAX_BYTES} bytes of UTF-8", "source")
    return env


class _Attributes(CloudEvent):
    """An envelope's attributes alone: what :func:`skim_envelope` validates."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def skim_envelope(raw: bytes) -> CloudEvent | None:
    """The envelope of a record whose data will not be read (a type its consumer does not react
    to), its attributes validated as :func:`decode_envelope` validates them and its ``data``
    only found to be an object, not validated or kept (it comes back empty): some 5 µs a record
    against 7. None where :func:`decode_envelope` might refuse the value (the JSON, the
    attributes, ``data`` not an object, a string that could hold U+0000, a source too long):
    that one then says why."""
    if NUL_ESCAPE in raw:
        return None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or type(obj.pop("data", {})) is not dict:
        return None
    try:
        env = _Attributes.model_validate(obj)
    except ValidationError:
        return None
    return env if source_fits(env) else None


def decode_payload(envelope: CloudEvent, allowed: frozenset[str] | None = None) -> Payload:
    if allowed is not None and envelope.type not in allowed:
        raise DecodeError("unexpected_type", f"type {envelope.type!r} does not belong on this topic", "type")
    model = _REGISTRY.get(envelope.type) or model_for(envelope.type)
    if model is None:
        raise DecodeError("unknown_type", f"unknown message type {envelope.type!r}", "type")
    try:
        return model.model_validate(envelope.data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(["data", *(str(x) for x in err["loc"])])
        raise DecodeError("invalid_data", f"{field}: {err['msg']}", field) from None


_TYPED: dict[frozenset[str], TypeAdapter] = {}


def typed_adapter(types: frozenset[str]) -> TypeAdapter | None:
    """One validator for envelopes of the given types, discriminated on ``type``, that parses
    the JSON bytes and the typed payload in a single pass (pydantic-core).

    It does not look for U+0000 (pydantic accepts it): a value holding :data:`NUL_ESCAPE`
    must go through :func:`decode_envelope` instead, which refuses it."""
    adapter = _TYPED.get(types)
    if adapter is None and types not in _TYPED:
        models = []
        for t in sorted(types):
            model = model_for(t)
            if model is not None:
                models.append(create_model(f"CloudEvent[{t}]", __base__=CloudEvent,
                                           type=(Literal[t], ...), data=(model, ...)))  # type: ignore[call-overload]
        if len(models) == 1:
            adapter = TypeAdapter(models[0])
        elif models:
            adapter = TypeAdapter(Annotated[Union[tuple(models)], Field(discriminator="type")])  # type: ignore[valid-type]
        _TYPED[types] = adapter
    return adapter


def decode(raw: bytes | str | dict, allowed: frozenset[str] | None = None) -> Message:
    """Decode a record value into a typed :class:`Message`, or raise :class:`DecodeError`."""
    env = decode_envelope(raw)
    return Message(envelope=env, payload=decode_payload(env, allowed), raw=raw if isinstance(raw, bytes) else None)
