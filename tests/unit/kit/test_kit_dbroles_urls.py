"""services.kit.dbroles: role URLs, passwords from the environment, migration URL fallback."""
from __future__ import annotations

from services.kit.dbroles import passwords_from_env, role_url
from services.kit.settings import ServiceSettings


def test_a_role_url_keeps_host_port_database_and_query_and_quotes_the_password():
    admin = "postgresql://admin:secret@db.example:5432/grassroots?sslmode=require"
    assert role_url(admin, "points_app", "p@ss/w:rd") == \
        "postgresql://points_app:p%40ss%2Fw%3Ard@db.example:5432/grassroots?sslmode=require"
    assert role_url("postgresql://127.0.0.1:5433/x", "grid_owner", None) == "postgresql://grid_owner@127.0.0.1:5433/x"


def test_passwords_come_from_the_environment_and_a_missing_one_is_none():
    got = passwords_from_env(("grid",), {"GRID_DB_OWNER_PASSWORD": "o", "GRID_DB_APP_PASSWORD": ""})
    assert got == {"grid_owner": "o", "grid_app": None}


def test_migrations_use_database_url_unless_a_migration_url_is_given(monkeypatch):
    monkeypatch.delenv("MIGRATION_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://grid_app@h/db")
    s = ServiceSettings()
    assert s.migration_dsn() == s.dsn() == "postgresql://grid_app@h/db"
    monkeypatch.setenv("MIGRATION_DATABASE_URL", "postgresql://grid_owner@h/db")
    s = ServiceSettings()
    assert s.migration_dsn() == "postgresql://grid_owner@h/db" and s.dsn() == "postgresql://grid_app@h/db"
