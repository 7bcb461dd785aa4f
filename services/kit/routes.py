"""Declared HTTP routes: path parameters, query and body as pydantic models.

A service declares what a route takes and what it answers; the kit validates the request
before the function runs and builds ``GET /openapi.json`` from the same declarations
(:mod:`services.kit.openapi`)::

    GridRef = ref("GridRef", "grid_id", GridId)

    @rt.get("/v1/grids/{grid_id}/counts", path=GridRef, responses={200: GridCounts, 404: "no such grid"})
    async def grid_counts(req: Request[GridRef, None, None]):
        # the docstring's first paragraph is the operation's summary, the rest its description
        async with rt.snapshot() as conn:
            return found(await db.grid_counts(conn, req.path.grid_id), "grid", req.path.grid_id, "grid_id")

    rt.lookup("/v1/cases/{case_id}", path=CaseRef, out=CaseOut, fetch=db.get_case, summary="A case.")

``Request[P, Q, B]`` types the path, query and body a function gets; ``rt.get`` / ``rt.post``
are ``rt.route(template, method=...)``; ``rt.lookup`` declares the common "one object by its id,
or 404" route whole.

- ``path=`` / ``query=`` / ``body=``: pydantic models; the function gets the validated
  instances as ``req.path``, ``req.query``, ``req.body``. A value that does not validate is
  answered 422 ``{"error": "invalid_query" | "invalid_input", "detail", "field"}`` naming the
  parameter (dotted path inside a body). Query strings are read leniently (``"5"`` is an int,
  ``true``/``1``/``yes`` a bool); an empty value is the same as an absent one. Text with a NUL
  character or invalid UTF-8, which PostgreSQL cannot store or compare, is refused (422).
- ``body=Documented(T)``: a body the function reads itself (``await req.json()``), documented
  with ``T``'s schema but not validated by the kit.
- ``responses=``: status → a model or type (the body's schema), a text (an error answer with
  that description) or ``(text, type)``. The kit adds what every route may answer: 401 on
  authenticated routes, 422 when there is something to validate, 400 and 413 with a body,
  503 when the database is away (unless ``db=False``). A route given ``errors=`` (a function
  from :class:`~services.kit.http.HttpError` to ``(status, body)``, e.g. Open311's error list)
  answers its errors in its own shape and declares every status itself.

The function returns a body (JSON-serialisable; ``str``/``bytes`` are sent as text) or
``(status, body)``; it raises :class:`~services.kit.http.HttpError` for an error answer.
:func:`found` is fetch-or-404; :class:`Page` / :class:`PageOut` / :func:`page` are the
keyset pagination every list uses (``limit``, ``cursor``, a bounded ``offset``; the answer's
``next_cursor``; :mod:`services.kit.sql`).
"""
from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Awaitable, Callable, Generic, Literal, Mapping, TypeVar, Union

import orjson
from pydantic import (AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError,
                      create_model, field_validator)
from pydantic.fields import FieldInfo
from pydantic.json_schema import SkipJsonSchema

from schemas.envelope import CloudEvent, nul_field

from .http import HttpError, from_validation_error
from .identity import ROLES, Principal
from .sql import COUNT_CAP, MAX_CURSOR_CHARS, MAX_OFFSET, Paged

P = TypeVar("P")
Q = TypeVar("Q")
B = TypeVar("B")
T = TypeVar("T")

Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
"""An aggregate id in a path (case, order, member, account...): the contract's id length."""


def ref(name: str, field: str, type_: Any = Id, description: str | None = None) -> type[BaseModel]:
    """The path model ``name`` of a route that names one object by ``field`` (``ref("OrderRef",
    "order_id")``)."""
    return create_model(name, **{field: (type_, Field(description=description))})


_RFC3339 = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _rfc3339(v: Any) -> Any:
    if isinstance(v, str) and not _RFC3339.match(v):
        raise ValueError("must be an RFC 3339 date-time with its offset, e.g. 2026-11-01T08:00:00+08:00")
    return v


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
"""A date-time in a query: RFC 3339 with its offset only (pydantic alone would also read a
number of seconds since 1970)."""

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^{}]*)?\}")


def template_params(template: str) -> list[str]:
    """The parameter names of a path template (``/v1/cases/{case_id}`` → ``["case_id"]``)."""
    return _PARAM.findall(template)


def openapi_path(template: str) -> str:
    """An aiohttp path template as OpenAPI writes it: ``{id:[^/]+}.json`` → ``{id}.json``."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", template)


# -- shared shapes ---------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    """Every error answer of the kit's routes."""

    error: str = Field(description="a stable, machine-readable code (not_found, invalid_query, unauthorized...)")
    detail: str = Field(description="for humans")
    field: str | None = Field(None, description="the parameter or body field at fault (dotted path), when there is one")
    errors: list[FieldError] | None = Field(None, description="every failing field, on a validation error")


class Page(BaseModel):
    """``limit``/``cursor``/``offset`` query parameters of a list. ``Page.sized(default, maximum)``
    gives the same with another default or upper bound of ``limit``.

    A list pages by keyset: each answer's ``next_cursor`` is the ``cursor`` of the next page.
    ``offset`` skips a few more rows (after the cursor, if any) and is bounded
    (:data:`~services.kit.sql.MAX_OFFSET`): a deep page is read with the cursor."""

    limit: int = Field(50, ge=1, le=500, description="items per page")
    cursor: str | None = Field(None, max_length=MAX_CURSOR_CHARS, pattern=r"^[A-Za-z0-9_-]+$",
                               description="the `next_cursor` of the previous page: the page after it")
    offset: int = Field(0, ge=0, description=f"items to skip (at most {MAX_OFFSET}; page further with `cursor`)",
                        json_schema_extra={"maximum": MAX_OFFSET})

    @field_validator("offset")
    @classmethod
    def _small_offset(cls, v: int) -> int:
        if v > MAX_OFFSET:
            raise ValueError(f"offset is at most {MAX_OFFSET}: read further pages with cursor "
                             "(the next_cursor of the page before)")
        return v

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", v):
            raise ValueError("cursor is not a cursor a list gave out (base64url)")
        return v

    @classmethod
    def sized(cls, default: int = 50, maximum: int = 500) -> type["Page"]:
        return _sized_page(default, maximum)


@functools.cache
def _sized_page(default: int, maximum: int) -> type[Page]:
    return create_model(f"Page{default}of{maximum}", __base__=Page,
                        limit=(int, Field(default, ge=1, le=maximum, description="items per page")))


class PageOut(BaseModel, Generic[T]):
    """One page of a list: the count matching (bounded), the page asked for, its items and the
    cursor of the next page."""

    total: int = Field(ge=0, description=f"items matching, on every page, counted up to {COUNT_CAP}")
    total_exact: bool = Field(description=f"false when more than {COUNT_CAP} match (`total` is then {COUNT_CAP})")
    limit: int
    offset: int
    next_cursor: str | None = Field(description="the `cursor` of the next page; null on the last page")
    items: list[T]


class Health(BaseModel):
    status: Literal["ok"]
    service: str


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description="worker, database, migrations, broker (and relay): ok or what is wrong")


def page(q: Page, result: Paged, items: list | None = None, **extra: Any) -> dict[str, Any]:
    """The ``{"total", "total_exact", "limit", "offset", "next_cursor", "items"}`` answer of a
    list (``items``: the page's rows as answered, when not ``result.items`` themselves)."""
    out = result.answer(q.limit, q.offset, **extra)
    if items is not None:
        out["items"] = items
    return out


def found(value: T | None, what: str, id: str, field: str | None = None) -> T:
    """``value``, or a 404 ``{"error": "not_found", "detail": "no <what> '<id>'", "field"}``."""
    if value is None:
        raise HttpError(404, "not_found", f"no {what} {id!r}", field)
    return value


@dataclass(frozen=True)
class Documented:
    """A request body the route reads itself (``await req.json()``), documented as ``type``."""

    type: Any


# -- requests ----------------------------------------------------------------------------------


class Request(Generic[P, Q, B]):
    """What a route function gets: the validated ``path``, ``query`` and ``body`` (None where
    the route declares none), the caller's verified :class:`~services.kit.identity.Principal`
    (None on a route without authentication), the raw parameters and request."""

    def __init__(self, raw, params: Mapping[str, str], principal: Principal | None,
                 path: P = None, query: Q = None, body: B = None):
        self.raw = raw
        self.params = params
        self.principal = principal
        self.headers = raw.headers
        self.path = path
        self.query = query
        self.body = body

    async def json(self) -> Any:
        """The JSON body: 413 over the size limit, 400 when it is not JSON."""
        try:
            data = await self.raw.read()
        except Exception as e:
            if getattr(e, "status", None) == 413:  # aiohttp's HTTPRequestEntityTooLarge
                raise too_large(getattr(self.raw, "client_max_size", None)) from None
            raise
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise HttpError(400, "malformed_json", str(e), "body") from None


def too_large(limit: int | None) -> HttpError:
    return HttpError(413, "payload_too_large",
                     f"the body is larger than {limit} bytes" if limit else "the body is too large", "body")


def _text(name: str, value: str, error: str) -> str:
    if "\x00" in value:
        raise HttpError(422, error, f"{name} must not contain NUL characters", name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise HttpError(422, error, f"{name} is not valid UTF-8", name) from None
    return value


def _is_list(info: FieldInfo) -> bool:
    ann = info.annotation
    return getattr(ann, "__origin__", None) in (list, tuple, set, frozenset)


def _validate(model: type[BaseModel], data: Any, error: str, whole: str | None = None) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise from_validation_error(e, error=error, whole=whole) from None


# -- declarations -------------------------------------------------------------------------------

RouteFn = Callable[..., Awaitable[Any]]
ErrorShape = Callable[[HttpError], "tuple[int, Any]"]

_DEFAULT_DESCRIPTIONS = {200: "OK", 201: "created", 400: "bad request", 404: "not found", 409: "refused by the rules",
                         413: "payload too large", 422: "invalid input", 503: "unavailable"}


@dataclass(frozen=True)
class Answer:
    """One documented response: its description and its body's type (None: no body)."""

    description: str
    type: Any = None
    content_type: str = "application/json"


@dataclass
class Route:
    """A declared route: what it takes, what it answers, and the function behind it."""

    template: str
    method: str
    fn: RouteFn
    auth: bool = True
    label: str = ""
    path: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: Any = None
    responses: dict[int, Any] = field(default_factory=dict)
    summary: str | None = None
    description: str | None = None
    errors: ErrorShape | None = None
    db: bool = True
    roles: frozenset[str] | None = None

    def __post_init__(self) -> None:
        self.label = self.label or self.template
        if self.roles is not None:
            if not self.auth:
                raise TypeError(f"{self.method} {self.template}: roles= on a route without authentication")
            unknown = sorted(set(self.roles) - set(ROLES))
            if unknown or not self.roles:
                raise TypeError(f"{self.method} {self.template}: unknown roles {unknown or 'none given'}")
            self.roles = frozenset(self.roles)
        self.responses = dict(self.responses) or {200: Answer("OK")}
        names = template_params(self.template)
        if self.path is not None:
            fields = set(self.path.model_fields)
            if fields != set(names):
                raise TypeError(f"{self.method} {self.template}: path model {self.path.__name__} has fields "
                                f"{sorted(fields)}, the template {names}")
        elif names:
            raise TypeError(f"{self.method} {self.template}: declare path=<model> for {names}")
        self._query_lists = {n for n, f in self.query.model_fields.items() if _is_list(f)} if self.query else set()

    def permit(self, principal: Principal | None) -> None:
        """403 ``forbidden`` when the route names roles and the caller holds none of them; 401
        when it names roles and there is no verified caller at all."""
        if self.roles is None:
            return
        if principal is None:
            raise HttpError(401, "unauthorized", f"{self.method} {self.template} needs a verified caller")
        if not (self.roles & principal.roles):
            raise HttpError(403, "forbidden", f"{self.method} {self.template} is for {', '.join(sorted(self.roles))}; "
                                              f"the caller's roles are {', '.join(sorted(principal.roles)) or 'none'}")

    async def bind(self, raw, params: Mapping[str, str], principal: Principal | None) -> Request:
        """The request as the function gets it, validated (HttpError otherwise)."""
        path = query = None
        if self.path is not None:
            path = _validate(self.path, {k: _text(k, v, "invalid_input") for k, v in params.items()}, "invalid_input")
        if self.query is not None:
            query = _validate(self.query, self._query_values(raw.query), "invalid_query")
        req = Request(raw, params, principal, path, query)
        if isinstance(self.body, type) and issubclass(self.body, BaseModel):
            obj = await req.json()
            bad = nul_field(obj)  # PostgreSQL text and jsonb cannot hold U+0000
            if bad is not None:
                raise HttpError(422, "invalid_input", f"{bad}: the text holds the NUL character (U+0000)", bad)
            req.body = _validate(self.body, obj, "invalid_input", whole="body")
        return req

    def _query_values(self, multi) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.query.model_fields:  # type: ignore[union-attr]
            values = [_text(name, v, "invalid_query") for v in multi.getall(name, []) if v != ""]
            if values:
                out[name] = values if name in self._query_lists else values[0]
        return out

    def answers(self) -> dict[int, Answer]:
        """Every status this route may answer, with its body's type."""
        out: dict[int, Answer] = {}
        if self.errors is None:
            if self.auth:
                out[401] = Answer("no valid `Authorization: Bearer <JWT>`: `detail` names the reason "
                                  "(missing_token, expired, bad_signature...)", ErrorOut)
            if self.roles is not None:
                out[403] = Answer("`forbidden`: the caller's roles may not do this (roles: "
                                  + ", ".join(sorted(self.roles)) + ")", ErrorOut)
            if self.path or self.query or self.body:
                out[422] = Answer("a parameter or body field is invalid; `field` names it", ErrorOut)
            if self.body is not None:
                out[400] = Answer("the body is not JSON", ErrorOut)
                out[413] = Answer("the body is larger than the server accepts", ErrorOut)
            if self.db:
                out[503] = Answer("the database is unavailable; retry", ErrorOut)
        for status, spec in self.responses.items():
            if isinstance(spec, Answer):
                out[status] = spec
            elif isinstance(spec, str):
                out[status] = Answer(spec, ErrorOut)
            elif isinstance(spec, tuple):
                out[status] = Answer(spec[0], spec[1])
            else:
                out[status] = Answer(_DEFAULT_DESCRIPTIONS.get(status, "answer"), spec)
        return dict(sorted(out.items()))


# -- POST /v1/commands ------------------------------------------------------------------------------


class CommandEnvelope(BaseModel):
    """A command: ``{"id", "type", "data"}``, or a whole CloudEvent (``specversion``, ``source``,
    ``time``... given). Without ``specversion``, ``source`` is ``/users/<sub of the token>``
    and ``time`` to now."""

    model_config = ConfigDict(extra="allow", json_schema_extra=lambda schema: _envelope_schema(schema))

    id: str = Field(min_length=1, max_length=200,
                    description="unique per source: the same id again is answered with the first outcome")
    specversion: Literal["1.0"] | SkipJsonSchema[None] = None
    source: Annotated[str, StringConstraints(min_length=1, max_length=500)] | SkipJsonSchema[None] = None
    time: AwareDatetime | SkipJsonSchema[None] = None
    subject: Annotated[str, StringConstraints(max_length=200)] | SkipJsonSchema[None] = Field(
        None, description="the aggregate id (default: the command's)")
    correlationid: Annotated[str, StringConstraints(max_length=200)] | SkipJsonSchema[None] = None
    causationid: Annotated[str, StringConstraints(max_length=200)] | SkipJsonSchema[None] = None


@functools.cache
def command_body(types: frozenset[str]) -> Any:
    """The body of ``POST /v1/commands`` accepting ``types``: one envelope per command type,
    told apart by ``type``, its ``data`` the command's payload model."""
    from schemas.registry import model_for

    envelopes = []
    for t in sorted(types):
        payload = model_for(t)
        envelopes.append(create_model(
            f"{payload.__name__}Command", __base__=CommandEnvelope, __doc__=f"`{t}`: {_first_paragraph(payload.__doc__)}",
            type=(Literal[t], Field(description="the command type")), data=(payload, Field(description="the command"))))
    return Annotated[Union[tuple(envelopes)], Field(discriminator="type")]


def _envelope_schema(schema: dict[str, Any]) -> None:
    """A ``specversion`` needs a ``source``; the optional attributes have no ``null`` default
    (absent is the default, ``null`` is not a value)."""
    schema["dependentRequired"] = {"specversion": ["source"]}
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]


def _first_paragraph(doc: str | None) -> str:
    return " ".join(inspect.cleandoc(doc or "").split("\n\n", 1)[0].split())


class CommandOut(BaseModel):
    """The command's outcome: the events it caused (for a replay, the ones it caused the first time)."""

    command_id: str
    replayed: bool = Field(description="the command id was seen before: these are the first outcome's events")
    events: list[CloudEvent]


class CommandRefused(ErrorOut):
    """A command refused by the rules: ``error`` is the reason; ``events`` holds the rejection."""

    command_id: str
    replayed: bool
    events: list[CloudEvent]
