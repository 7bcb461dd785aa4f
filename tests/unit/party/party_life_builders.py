"""Builders shared by the party unit tests of units, organisational life and members."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from services.kit.errors import Rejected
from services.party.domain.life import OrgLifePolicy

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=CST)
COMMUNITY = "110105001002"
OTHER_COMMUNITY = "110105001009"
STREET = "110105001"

POLICY_FILE = Path(__file__).resolve().parents[3] / "services" / "party" / "policy" / "org_life.yaml"


def policy() -> OrgLifePolicy:
    return OrgLifePolicy.from_mapping(yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8")))


def at(days: float = 0) -> datetime:
    return T0 + timedelta(days=days)


def refused(fn, *args) -> Rejected:
    with pytest.raises(Rejected) as info:
        fn(*args)
    return info.value


def fold(evolve, state, events):
    for e in events:
        state = evolve(state, e)
    return state
