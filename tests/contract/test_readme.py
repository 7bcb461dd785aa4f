"""The README's topic and configuration tables say what the code does."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

from pydantic import AliasChoices

from schemas.topics import ALL_TOPICS
from services.kit.settings import ServiceSettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SERVICES = ("grid", "orders", "points", "assessment", "party")


def topic_rows() -> list[str]:
    block = README.split("<!-- topics:start -->")[1].split("<!-- topics:end -->")[0]
    return [line for line in block.strip().splitlines()[2:]]


def test_readme_topic_table_is_the_registry():
    expected = [f"| `{t.name}` | {t.kind} | {t.writers} | {t.key} | {t.description} |" for t in ALL_TOPICS]
    assert topic_rows() == expected


def _settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"services.{service}.app.settings")
    return next(c for c in vars(module).values()
                if isinstance(c, type) and issubclass(c, ServiceSettings) and c is not ServiceSettings)


def test_readme_documents_every_environment_variable():
    documented = set(re.findall(r"`([A-Z<][A-Z0-9_<>]+)`", README))
    missing = []
    for name, field in ServiceSettings.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            env = field.validation_alias.choices[0]
        else:
            env = f"<SVC>_{name.upper()}"
        if env not in documented:
            missing.append(env)
    for svc in SERVICES:
        cls = _settings_class(svc)
        prefix = cls.model_config["env_prefix"]
        for name in cls.model_fields:
            if name not in ServiceSettings.model_fields and f"{prefix}{name}".upper() not in documented:
                missing.append(f"{prefix}{name}".upper())
    assert not missing, f"README.md does not document: {missing}"


def test_readme_gives_the_two_commands():
    assert "make run" in README and "make test" in README
