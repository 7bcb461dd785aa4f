"""A stand-in identity provider for ``make run`` and the tests.

``python -m services.kit.devidentity`` generates an ES256 key pair and writes, under
``$VAR_DIR/run`` (default ``var/run``):

- ``jwks.json``: the public key as a JWKS (point ``JWKS`` at it);
- ``signing-key.pem``: the private key (mode 600);
- ``identities.json`` (mode 600): demo identities, a list of ``{"name", "sub", "roles",
  "scope", "token"}``: at least one per role, two residents in two communities, with areas
  taken from the grid register (``services/grid/registry/grids.yaml``).

Tokens carry the issuer and audience the settings default to (``JWT_ISSUER``, ``JWT_AUDIENCE``)
and live ``--lifetime`` seconds (12 h by default). ``--rotate`` keeps the previous public key in
the JWKS beside the new one, as a provider does during a key rotation.

Tests use :func:`generate_key`, :func:`public_jwk` and :func:`mint` directly.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from schemas.codes import GridCode, parent_of

from .identity import ROLES
from .settings import DEFAULT_JWT_AUDIENCE, DEFAULT_JWT_ISSUER

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LIFETIME_SECONDS = 12 * 3600
DEFAULT_REGISTER = ROOT / "services" / "grid" / "registry" / "grids.yaml"


# -- keys and tokens ------------------------------------------------------------------------------

def generate_key() -> ec.EllipticCurvePrivateKey:
    """A new P-256 private key (ES256)."""
    return ec.generate_private_key(ec.SECP256R1())


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The key's RFC 7638 thumbprint (SHA-256, base64url): its ``kid`` here."""
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def public_jwk(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """The public half of ``key`` as a JWK with ``kid``, ``alg`` and ``use``."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    jwk.update(kid=thumbprint(jwk), alg="ES256", use="sig")
    return jwk


def mint(claims: Mapping[str, Any], key: ec.EllipticCurvePrivateKey | str | bytes, *, kid: str | None = None,
         algorithm: str = "ES256", headers: Mapping[str, Any] | None = None) -> str:
    """``claims`` signed with ``key`` (a private key or its PEM). The header names ``kid``
    (by default the key's thumbprint, for an EC key). Nothing is added to the claims."""
    if isinstance(key, (str, bytes)):
        key = load_key_pem(key)
    if kid is None and isinstance(key, ec.EllipticCurvePrivateKey):
        kid = public_jwk(key)["kid"]
    hdr = dict(headers or {})
    if kid is not None:
        hdr.setdefault("kid", kid)
    return jwt.encode(dict(claims), key, algorithm=algorithm, headers=hdr or None)


def claims_for(sub: str, roles: list[str], scope: Mapping[str, list[str]], *, name: str | None = None,
               issuer: str = DEFAULT_JWT_ISSUER, audience: str = DEFAULT_JWT_AUDIENCE,
               lifetime: float = DEFAULT_LIFETIME_SECONDS, now: float | None = None) -> dict[str, Any]:
    """A complete claim set in the platform's shape."""
    now = int(time.time() if now is None else now)
    out: dict[str, Any] = {"iss": issuer, "aud": audience, "sub": sub, "iat": now, "nbf": now,
                           "exp": now + int(lifetime), "jti": secrets.token_hex(8), "roles": list(roles),
                           "scope": {k: list(v) for k, v in scope.items()}}
    if name:
        out["name"] = name
    return out


def load_key_pem(pem: str | bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the signing key is not an EC private key")
    return key


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# -- the demo district's people ---------------------------------------------------------------------

def _areas(register: Path) -> tuple[list[str], list[str], list[str]]:
    """Streets, communities (of the first street) and grids (of the first community) from the register."""
    doc = yaml.safe_load(register.read_text())
    division = str(doc["division"])
    streets, communities, grids = [], [], []
    for s in doc["streets"]:
        for c in s["communities"]:
            for g in c["grids"]:
                code = GridCode(division, str(s["code"]), str(c["code"]), str(g))
                if code.street_id not in streets:
                    streets.append(code.street_id)
                if code.street_id == streets[0] and code.community_id not in communities:
                    communities.append(code.community_id)
                if code.community_id == communities[0]:
                    grids.append(code.grid_id)
    if len(communities) < 2 or not grids:
        raise ValueError(f"{register}: the demo identities need a street with two communities")
    return streets, communities, grids


def demo_identities(register: Path = DEFAULT_REGISTER) -> list[dict[str, Any]]:
    """``{"name", "sub", "roles", "scope"}`` for each demo person or app (no tokens)."""
    streets, communities, grids = _areas(register)
    c1, c2 = communities[0], communities[1]

    def scope(streets=(), communities=(), grids=(), departments=()):
        return {"streets": list(streets), "communities": list(communities), "grids": list(grids),
                "departments": list(departments)}

    people = [
        ("resident-1", "resident-0001", ["resident"], scope(communities=[c1])),
        ("resident-2", "resident-0002", ["resident"], scope(communities=[c2])),
        ("grid-worker", "grid-worker-0001", ["grid_worker"], scope(grids=grids[:2])),
        ("community-officer", "community-officer-0001", ["community_officer"], scope(communities=[c1])),
        ("community-officer-2", "community-officer-0002", ["community_officer"], scope(communities=[c2])),
        ("street-officer", "street-officer-0001", ["street_officer"], scope(streets=streets[:1])),
        # 区城管委 of the department register, which the 权责清单 names for environment cases
        ("department-officer", "department-officer-0001", ["department_officer"],
         scope(departments=[f"{parent_of(streets[0])}.cgw"])),
        ("party-member", "party-member-0001", ["party_member", "resident"], scope(communities=[c1])),
        ("party-secretary", "party-secretary-0001", ["party_secretary", "party_member"], scope(communities=[c1])),
        ("merchant", "merchant-0001", ["merchant"], scope(communities=[c2])),
        ("points-operator", "points-operator-0001", ["points_operator"], scope(streets=streets)),
        ("assessor", "assessor-0001", ["assessor"], scope(streets=streets)),
        ("auditor", "auditor-0001", ["auditor"], scope(streets=streets)),
        ("data-protection-officer", "dpo-0001", ["data_protection_officer"], scope(streets=streets)),
    ]
    out = [{"name": n, "sub": sub, "roles": roles, "scope": sc} for n, sub, roles, sc in people]
    missing = set(ROLES) - {r for p in out for r in p["roles"]}
    assert not missing, missing
    return out


# -- files ----------------------------------------------------------------------------------------------

def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically (a reader sees the old file or the new one) with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_jwks(path: Path, jwks: list[Mapping[str, Any]]) -> None:
    write_file(path, json.dumps({"keys": list(jwks)}, indent=2).encode(), 0o644)


def generate(out_dir: Path, *, issuer: str = DEFAULT_JWT_ISSUER, audience: str = DEFAULT_JWT_AUDIENCE,
             lifetime: float = DEFAULT_LIFETIME_SECONDS, register: Path = DEFAULT_REGISTER,
             rotate: bool = False) -> dict[str, Path]:
    """Write the key pair, the JWKS and the demo identities under ``out_dir``; the paths written."""
    paths = {"jwks": out_dir / "jwks.json", "signing_key": out_dir / "signing-key.pem",
             "identities": out_dir / "identities.json"}
    keep: list[dict[str, Any]] = []
    if rotate and paths["signing_key"].exists():
        keep = [public_jwk(load_key_pem(paths["signing_key"].read_bytes()))]
    key = generate_key()
    jwk = public_jwk(key)
    write_file(paths["signing_key"], key_pem(key), 0o600)
    write_jwks(paths["jwks"], [jwk] + [k for k in keep if k["kid"] != jwk["kid"]])
    now = time.time()
    identities = []
    for person in demo_identities(register):
        claims = claims_for(person["sub"], person["roles"], person["scope"], name=person["name"], issuer=issuer,
                            audience=audience, lifetime=lifetime, now=now)
        identities.append({**person, "token": mint(claims, key, kid=jwk["kid"])})
    write_file(paths["identities"], json.dumps(identities, indent=2, ensure_ascii=False).encode(), 0o600)
    return paths


def main(argv: list[str] | None = None) -> int:
    var = Path(os.environ.get("VAR_DIR") or ROOT / "var")
    ap = argparse.ArgumentParser(prog="python -m services.kit.devidentity", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=var / "run", help="directory written (default: $VAR_DIR/run)")
    ap.add_argument("--issuer", default=os.environ.get("JWT_ISSUER") or DEFAULT_JWT_ISSUER)
    ap.add_argument("--audience", default=os.environ.get("JWT_AUDIENCE") or DEFAULT_JWT_AUDIENCE)
    ap.add_argument("--lifetime", type=float, default=DEFAULT_LIFETIME_SECONDS, help="token lifetime, seconds")
    ap.add_argument("--register", type=Path, default=DEFAULT_REGISTER, help="the grid register the areas come from")
    ap.add_argument("--rotate", action="store_true", help="keep the previous public key in the JWKS")
    args = ap.parse_args(argv)
    if args.lifetime <= 0:
        ap.error("--lifetime must be positive")
    paths = generate(args.out, issuer=args.issuer, audience=args.audience, lifetime=args.lifetime,
                     register=args.register, rotate=args.rotate)
    for what, path in paths.items():
        print(f"{what}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
