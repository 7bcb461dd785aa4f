"""The Keycloak realm export: it parses, and it gives tokens the claims the verifier reads."""
from __future__ import annotations

import json

from services.kit.identity import ROLES
from services.kit.settings import DEFAULT_JWT_AUDIENCE, DEFAULT_JWT_ISSUER

from .support import DEPLOY

REALM = DEPLOY / "keycloak" / "realm-grassroots.json"


def realm() -> dict:
    return json.loads(REALM.read_text(encoding="utf-8"))


def test_the_realm_holds_every_role():
    r = realm()
    assert r["realm"] == DEFAULT_JWT_ISSUER.rsplit("/realms/", 1)[1]
    assert sorted(role["name"] for role in r["roles"]["realm"]) == sorted(ROLES)


def test_the_client_maps_roles_scope_and_audience_into_access_tokens():
    r = realm()
    (client,) = [c for c in r["clients"] if c["clientId"] == DEFAULT_JWT_AUDIENCE]
    mappers = {m["protocolMapper"]: m["config"] for m in client["protocolMappers"]}
    roles = mappers["oidc-usermodel-realm-role-mapper"]
    assert roles["claim.name"] == "roles" and roles["multivalued"] == "true" and roles["access.token.claim"] == "true"
    scope = mappers["oidc-usermodel-attribute-mapper"]
    assert scope["jsonType.label"] == "JSON" and scope["access.token.claim"] == "true"
    assert scope["claim.name"] == scope["user.attribute"] == "grassroots_scope"
    assert mappers["oidc-audience-mapper"]["included.client.audience"] == DEFAULT_JWT_AUDIENCE
    # only the platform's roles reach the token (not Keycloak's default roles)
    assert client["fullScopeAllowed"] is False
    (mapping,) = [m for m in r["scopeMappings"] if m["client"] == DEFAULT_JWT_AUDIENCE]
    assert sorted(mapping["roles"]) == sorted(ROLES)


def test_the_scope_attribute_is_declared_in_the_user_profile():
    (profile,) = realm()["components"]["org.keycloak.userprofile.UserProfileProvider"]
    config = json.loads(profile["config"]["kc.user.profile.config"][0])
    assert "grassroots_scope" in {a["name"] for a in config["attributes"]}
