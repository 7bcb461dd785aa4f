"""HTTP plumbing on faust's web server: JSON bodies, JSON errors, token auth (routes: :mod:`.routes`)."""
from __future__ import annotations

import hmac
from typing import Any, Mapping

import orjson
from pydantic import ValidationError


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
    return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS)


def _default(o: Any):
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def authenticate(headers: Mapping[str, str], tokens: Mapping[str, str]) -> str:
    """The app name for a valid ``Authorization: Bearer <token>``; 401 otherwise."""
    auth = headers.get("Authorization") or headers.get("authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HttpError(401, "unauthorized", "send Authorization: Bearer <token>")
    for known, app in tokens.items():
        if hmac.compare_digest(known.encode(), token.strip().encode()):
            return app
    raise HttpError(401, "unauthorized", "unknown API token")
