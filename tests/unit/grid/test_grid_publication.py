"""The public Open311 view's rules: which categories are private, and the service_code filter."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.grid import Category
from services.grid.app.api import Open311Query
from services.grid.domain import PRIVATE_CATEGORIES, PUBLIC_CATEGORIES, PUBLIC_DISMISSAL_REASONS

PRIVATE = {"dispute.neighbour", "dispute.property", "dispute.labour", "resident_need"}


def test_disputes_and_resident_needs_are_private_and_every_other_category_public():
    assert {c.value for c in PRIVATE_CATEGORIES} == PRIVATE
    assert set(PUBLIC_CATEGORIES) == set(Category) - PRIVATE_CATEGORIES
    assert [c for c in Category if c in PUBLIC_CATEGORIES] == list(PUBLIC_CATEGORIES)  # the contract's order


def test_only_codes_the_service_sets_are_public_dismissal_reasons():
    assert PUBLIC_DISMISSAL_REASONS == {"duplicate"}


@pytest.mark.parametrize("code", sorted(PRIVATE) + ["environment,dispute.labour", "weather"])
def test_a_private_service_code_is_refused_as_an_unknown_one(code):
    with pytest.raises(ValidationError, match="unknown service_code"):
        Open311Query(service_code=code)


def test_public_service_codes_are_accepted():
    q = Open311Query(service_code="environment, public_facility,hazard.fire")
    assert q.split(q.service_code) == ["environment", "public_facility", "hazard.fire"]
