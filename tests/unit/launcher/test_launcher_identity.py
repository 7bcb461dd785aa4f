"""make run gives the workers an identity provider's keys and the user one token per role."""
from __future__ import annotations

import json

from services.kit.identity import ROLES, TokenVerifier
from services.kit.settings import ServiceSettings
from services.launcher.launcher import SERVICES, Config, Launcher
from services.simulator.identities import ROLE_OF, tokens_by_role


def launcher(monkeypatch, tmp_path) -> Launcher:
    for k in ("JWKS", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_SCOPE_CLAIM", "SIMULATE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    la = Launcher(Config.from_env())
    la.bootstrap, la.dsn = "127.0.0.1:1", "postgresql://x@127.0.0.1:1/x"
    la.set_clock()
    return la


def test_workers_verify_the_tokens_the_launcher_hands_out(monkeypatch, tmp_path):
    la = launcher(monkeypatch, tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "tokens.env").write_text("API_TOKEN=old\n")  # what an earlier version left
    la.make_identities()
    la.write_api_env()
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} == {"jwks.json", "signing-key.pem", "identities.json", "api.env"}
    for name in ("signing-key.pem", "identities.json", "api.env"):
        assert (run / name).stat().st_mode & 0o777 == 0o600, name

    env = la.base_env()
    assert env["JWKS"] == str(run / "jwks.json")
    for k in ("JWKS", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_SCOPE_CLAIM"):
        monkeypatch.setenv(k, env[k])
    verifier = TokenVerifier.from_settings(ServiceSettings())

    api = dict(line.split("=", 1) for line in (run / "api.env").read_text().splitlines())
    assert {f"{s.upper()}_URL" for s in SERVICES} <= set(api)
    assert api["GRID_URL"] == la.url("grid")
    for role in ROLES:
        assert role in verifier.verify(api[f"{role.upper()}_TOKEN"]).roles, role
    people = json.loads((run / "identities.json").read_text())
    assert all(verifier.verify(p["token"]).sub == p["sub"] for p in people)
    assert api["IDENTITIES_FILE"] == str(run / "identities.json")


def test_every_simulated_command_has_a_sender_role_with_a_demo_identity(tmp_path, monkeypatch):
    from schemas.topics import BY_SERVICE

    commands = {t for topics in BY_SERVICE.values() for t in topics.intake.message_types}
    assert commands <= set(ROLE_OF)
    assert set(ROLE_OF) - commands <= {"points.adjust.approve.v1"}  # the second operator's approval
    assert set(ROLE_OF.values()) <= set(ROLES)
    la = launcher(monkeypatch, tmp_path)
    la.make_identities()
    assert set(ROLE_OF.values()) <= set(tokens_by_role(la.identity["identities"]))


def test_the_simulator_gets_the_signing_key_and_the_points_api(monkeypatch, tmp_path):
    la = launcher(monkeypatch, tmp_path)
    la.make_identities()
    started = {}
    monkeypatch.setattr("services.launcher.launcher.Proc.start", lambda self: started.update(env=self.env))
    la.start_simulator()
    env = started["env"]
    assert env["SIGNING_KEY_FILE"] == str(tmp_path / "run" / "signing-key.pem")
    assert env["POINTS_URL"] == la.url("points")
    assert env["IDENTITIES_FILE"] == str(tmp_path / "run" / "identities.json")
    assert env["JWT_ISSUER"] == la.issuer and env["JWT_AUDIENCE"] == la.audience
