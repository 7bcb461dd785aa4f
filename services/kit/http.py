"""HTTP plumbing on faust's web server: JSON bodies, JSON errors, token auth, query parsing."""
from __future__ import annotations

import hmac
from datetime import datetime
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


def from_validation_error(e: ValidationError, prefix: str = "") -> HttpError:
    """422 naming the first failing field (dotted path) and listing all of them."""
    errors = e.errors()
    fields = [".".join([p for p in [prefix] if p] + [str(x) for x in err["loc"]]) for err in errors]
    return HttpError(422, "invalid_input", errors[0]["msg"], fields[0],
                     errors=[{"field": f, "message": err["msg"]} for f, err in zip(fields, errors)])


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


class Query:
    """Typed access to query parameters with 422 on bad values."""

    def __init__(self, params: Mapping[str, str]):
        self.params = params

    def str(self, name: str, default: str | None = None) -> str | None:
        v = self.params.get(name)
        return v if v not in (None, "") else default

    def choice(self, name: str, allowed, *, required: bool = False) -> str | None:
        """A value from a fixed set (an enum's values, a list of codes); 422 naming the set."""
        v = self.str(name)
        if v is None:
            if required:
                raise HttpError(422, "invalid_query", f"{name} is required", name)
            return None
        options = sorted(a.value if hasattr(a, "value") else a for a in allowed)
        if v not in options:
            raise HttpError(422, "invalid_query", f"{name} must be one of {', '.join(options)}", name)
        return v

    def int(self, name: str, default: int, *, lo: int = 0, hi: int = 10_000) -> int:
        raw = self.params.get(name)
        if raw in (None, ""):
            return default
        try:
            v = int(raw)
        except ValueError:
            raise HttpError(422, "invalid_query", f"{name} must be an integer", name) from None
        if not lo <= v <= hi:
            raise HttpError(422, "invalid_query", f"{name} must be between {lo} and {hi}", name)
        return v

    def bool(self, name: str) -> bool | None:
        raw = self.params.get(name)
        if raw in (None, ""):
            return None
        if raw.lower() in ("1", "true", "yes"):
            return True
        if raw.lower() in ("0", "false", "no"):
            return False
        raise HttpError(422, "invalid_query", f"{name} must be true or false", name)

    def datetime(self, name: str) -> datetime | None:
        raw = self.params.get(name)
        if raw in (None, ""):
            return None
        try:
            v = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise HttpError(422, "invalid_query", f"{name} must be an RFC 3339 time", name) from None
        if v.tzinfo is None:
            raise HttpError(422, "invalid_query", f"{name} needs a UTC offset", name)
        return v

    def page(self, default_limit: int = 50, max_limit: int = 500) -> tuple[int, int]:
        """(limit, offset) from ``limit``/``offset``."""
        return self.int("limit", default_limit, lo=1, hi=max_limit), self.int("offset", 0, lo=0, hi=10_000_000)
