"""HTTP plumbing on faust's web server: JSON bodies, JSON errors, bearer-token authentication
(routes: :mod:`.routes`; tokens: :mod:`.identity`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import orjson
from pydantic import ValidationError

from .identity import Principal, Unauthenticated

if TYPE_CHECKING:
    from .identity import TokenVerifier


class HttpError(Exception):
    """An HTTP error answered as ``{"error": code, "detail": ..., "field": ...}``."""

    def __init__(self, status: int, error: str, detail: str = "", field: str | None = None, **extra: Any):
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field
        self.extra = extra

    def body(self) -> dict:
        out = {"error": self.error, "detail": self.detail}
        if self.field is not None:
            out["field"] = self.field
        out.update(self.extra)
        return out


def from_validation_error(e: ValidationError, prefix: str = "", *, error: str = "invalid_input",
                          whole: str | None = None) -> HttpError:
    """422 naming the first failing field (dotted path) and listing all of them; ``whole`` names
    an error about the value as a whole (e.g. ``body``)."""
    errors = e.errors(include_url=False, include_input=False)
    fields = [".".join([p for p in [prefix] if p] + [str(x) for x in err["loc"]]) or (whole or "") for err in errors]
    messages = [_message(err) for err in errors]
    return HttpError(422, error, messages[0], fields[0] or None,
                     errors=[{"field": f, "message": msg} for f, msg in zip(fields, messages)])


def _message(err: dict) -> str:
    """pydantic's message, without its "Value error, " prefix on a validator's own words."""
    if err.get("type") == "value_error" and "error" in err.get("ctx", {}):
        return str(err["ctx"]["error"])
    return err["msg"]


def dumps(obj: Any) -> bytes:
    """``obj`` as JSON. Keys that are not strings (a count by enum or number) are written as
    strings, by a second pass: orjson's option for them costs half as much again on every
    answer, and almost no answer has such a key."""
    try:
        return orjson.dumps(obj, default=_default)
    except orjson.JSONEncodeError:
        return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS)


def _default(o: Any):
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of ``Authorization: Bearer <token>``; 401 when there is none."""
    auth = headers.get("Authorization") or headers.get("authorization") or ""
    scheme, _, token = auth.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HttpError(401, "unauthorized", "missing_token: send Authorization: Bearer <JWT>")
    return token


def unauthorized(e: Unauthenticated) -> HttpError:
    """401 ``{"error": "unauthorized", "detail": "<reason>: <what is wrong>"}``."""
    return HttpError(401, "unauthorized", str(e))


def authenticate(headers: Mapping[str, str], verifier: "TokenVerifier") -> Principal:
    """The principal of a valid ``Authorization: Bearer <JWT>``; 401 naming the reason otherwise
    (``missing_token``, ``expired``, ``bad_signature``, ``unknown_key``...). The verification
    may read a JWKS file; a verifier on a JWKS URL is called from a thread (:func:`authenticate_async`)."""
    token = bearer_token(headers)
    try:
        return verifier.verify(token)
    except Unauthenticated as e:
        raise unauthorized(e) from None


async def authenticate_async(headers: Mapping[str, str], verifier: "TokenVerifier", *, in_thread: bool) -> Principal:
    """:func:`authenticate`, in a thread when ``in_thread`` (a JWKS URL may be fetched)."""
    if not in_thread:
        return authenticate(headers, verifier)
    import asyncio

    token = bearer_token(headers)
    try:
        return await asyncio.to_thread(verifier.verify, token)
    except Unauthenticated as e:
        raise unauthorized(e) from None
