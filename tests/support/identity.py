"""A test identity provider: a signing key of its own, its JWKS in a temporary file, tokens on demand.

One per test process (:func:`test_identity`); :class:`~tests.support.procs.Worker` points every
worker it starts at its JWKS, issuer and audience, and tests mint tokens for their HTTP calls::

    from tests.support.identity import token
    await http("GET", worker.url + "/v1/cases", token=token())
    token(sub="resident-0001", roles=["resident"], lifetime=-120)   # an expired one
"""
from __future__ import annotations

import atexit
import functools
import importlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from schemas.common import Payload
from schemas.envelope import CONTENT_TYPE, CloudEvent, decode_payload
from services.kit import devidentity

ISSUER = "https://identity.test.invalid/realms/grassroots-test"
AUDIENCE = "grassroots-test"
DEFAULT_SUB = "test-operator"
DEFAULT_ROLES = ("community_officer", "points_operator", "assessor", "auditor")


class TestIdentity:
    """A key pair; the public half as ``jwks.json`` in ``directory``."""

    __test__ = False  # not a test class

    def __init__(self, directory: Path, *, issuer: str = ISSUER, audience: str = AUDIENCE, key=None):
        self.directory = directory
        self.issuer = issuer
        self.audience = audience
        self.key = key or devidentity.generate_key()
        self.jwks_path = directory / "jwks.json"
        devidentity.write_jwks(self.jwks_path, [devidentity.public_jwk(self.key)])

    @classmethod
    def kept_in(cls, directory: Path, *, new: bool = False) -> "TestIdentity":
        """The provider whose signing key ``directory`` keeps (``key.pem``, beside its
        ``jwks.json``), so that its tokens verify in later processes too; a new key there if
        there is none, or if ``new``."""
        pem = directory / "key.pem"
        if new or not pem.exists():
            directory.mkdir(parents=True, exist_ok=True)
            key = devidentity.generate_key()
            devidentity.write_file(pem, devidentity.key_pem(key), 0o600)
        else:
            key = devidentity.load_key_pem(pem.read_bytes())
        return cls(directory, key=key)

    @property
    def kid(self) -> str:
        return devidentity.public_jwk(self.key)["kid"]

    def env(self) -> dict[str, str]:
        """The settings a worker needs to verify this provider's tokens."""
        return {"JWKS": str(self.jwks_path), "JWT_ISSUER": self.issuer, "JWT_AUDIENCE": self.audience}

    def claims(self, sub: str = DEFAULT_SUB, roles: Iterable[str] = DEFAULT_ROLES,
               scope: Mapping[str, list[str]] | None = None, *, lifetime: float = 3600,
               now: float | None = None, **extra: Any) -> dict[str, Any]:
        out = devidentity.claims_for(sub, list(roles), dict(scope or {}), issuer=self.issuer, audience=self.audience,
                                     lifetime=lifetime, now=now)
        out.update(extra)
        return out

    def token(self, sub: str = DEFAULT_SUB, roles: Iterable[str] = DEFAULT_ROLES,
              scope: Mapping[str, list[str]] | None = None, *, lifetime: float = 3600, now: float | None = None,
              key=None, kid: str | None = None, **extra: Any) -> str:
        """A token for ``sub`` signed by this provider's key (or by ``key``, its header naming
        ``kid`` or that key's own). A negative ``lifetime`` gives one that has already expired."""
        if lifetime < 0:  # claims_for counts from now; an expired token was issued in the past
            now = (time.time() if now is None else now) + lifetime * 2
            lifetime = -lifetime
        return devidentity.mint(self.claims(sub, roles, scope, lifetime=lifetime, now=now, **extra), key or self.key,
                                kid=kid)


_current: TestIdentity | None = None


def test_identity() -> TestIdentity:
    """This process's test identity provider (created on first use, removed at exit)."""
    global _current
    if _current is None:
        directory = Path(tempfile.mkdtemp(prefix="grassroots-test-identity-"))
        atexit.register(shutil.rmtree, directory, True)
        _current = TestIdentity(directory)
    return _current


test_identity.__test__ = False  # type: ignore[attr-defined]


def token(sub: str = DEFAULT_SUB, roles: Iterable[str] = DEFAULT_ROLES, **kw: Any) -> str:
    """A valid token of this process's test identity provider."""
    return test_identity().token(sub, roles, **kw)


# -- tokens for the sender a command names ------------------------------------------------------------

def all_streets() -> list[str]:
    """Every street of the grid register (a scope covering the whole test district)."""
    return _register_streets()


@functools.cache
def _register_streets() -> list[str]:
    import yaml

    from schemas.codes import GridCode

    doc = yaml.safe_load(devidentity.DEFAULT_REGISTER.read_text())
    return sorted({GridCode(str(doc["division"]), str(s["code"]), "001", "001").street_id for s in doc["streets"]})


def policy_of(service: str):
    """The service's policy table (``services.<svc>.app.policy.POLICY``), or None."""
    try:
        return importlib.import_module(f"services.{service}.app.policy").POLICY
    except ModuleNotFoundError:
        return None


def sender_token(payload: Payload, *, role: str | None = None, departments: Iterable[str] = (), **kw: Any) -> str:
    """A token for the person who would send ``payload``: the first role its service's policy
    allows it to (or ``role``), ``sub`` read back from the command's actor fields, and a scope
    covering every street of the test district (plus ``departments``), so that tests written
    before the policy keep sending what the policy allows."""
    policy = policy_of(payload.service())
    if policy is None:
        return token(**kw)
    grants = policy.commands.get(type(payload), ())
    grant = next((g for g in grants if (role is None or role in g.roles) and _fits(payload, g)), None)
    if grant is None:
        return token(roles=[role] if role else [], **kw)
    sub = kw.pop("sub", None) or _sub_from(payload, grant) or DEFAULT_SUB
    roles = [role] if role else [sorted(grant.roles)[0]]
    scope = {"streets": all_streets(), "departments": list(departments)}
    return token(sub, roles, scope=scope, **kw)


def _get(obj: Any, path: str) -> Any:
    """A dotted path of a payload or of a raw ``data`` object (a body that does not validate)."""
    for part in path.split("."):
        if obj is None:
            return None
        obj = obj.get(part) if isinstance(obj, Mapping) else getattr(obj, part, None)
    return getattr(obj, "value", obj)  # an enum member as its value


def _fits(payload: Any, grant) -> bool:
    """Whether the constant actor fields of ``grant`` (e.g. ``reporter.kind`` = ``resident``) are
    the payload's or left empty: the grant a command naming its kind of sender is sent under."""
    from services.kit.policy import SUB

    return all(_get(payload, path) in (None, template) for path, template in grant.actor.items() if SUB not in template)


def _sub_from(payload: Any, grant) -> str | None:
    from services.kit.policy import SUB

    for path, template in grant.actor.items():
        if SUB not in template:
            continue
        value = _get(payload, path)
        prefix, _, suffix = template.partition(SUB)
        if isinstance(value, str) and value.startswith(prefix) and value.endswith(suffix):
            return value[len(prefix):len(value) - len(suffix)] if suffix else value[len(prefix):]
    return None


def command_headers(envelope: CloudEvent, **kw: Any) -> list[tuple[str, bytes]]:
    """Kafka headers of a command record: its content type and its sender's token."""
    try:
        payload = decode_payload(envelope, None)
    except Exception:  # a malformed command (a test of refusals): the default token
        return [("content-type", CONTENT_TYPE.encode()), ("authorization", f"Bearer {token(**kw)}".encode())]
    return [("content-type", CONTENT_TYPE.encode()),
            ("authorization", f"Bearer {sender_token(payload, **kw)}".encode())]


def command_token(body: Mapping[str, Any], **kw: Any) -> str:
    """The sender's token (:func:`sender_token`) for a ``POST /v1/commands`` body
    (``{"id", "type", "data"}`` or a whole CloudEvent); the default token when it does not decode."""
    from schemas.registry import model_for

    model = model_for(str(body.get("type")))
    try:
        payload = model.model_validate(body.get("data")) if model is not None else None
    except Exception:
        payload = None
    if payload is not None:
        return sender_token(payload, **kw)
    policy = policy_of(model.service()) if model is not None else None
    data = body.get("data")
    grants = policy.commands.get(model, ()) if policy is not None else ()
    grant = next((g for g in grants if isinstance(data, Mapping) and _fits(data, g)), grants[0] if grants else None)
    if grant is None:  # not a command of a policy: the default token
        return token(**kw)
    # an invalid body (a test of 422s): its sender as far as the raw data says, so that the
    # refusal is about the body, not the role
    sub = kw.pop("sub", None) or (_sub_from(data, grant) if isinstance(data, Mapping) else None) or DEFAULT_SUB
    return token(sub, [sorted(grant.roles)[0]], scope={"streets": all_streets()}, **kw)
