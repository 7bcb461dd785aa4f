"""GridCode and the code tree (schemas.codes): parse, kinds, parents, containment; ASCII digits only."""
from __future__ import annotations

import dataclasses

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas import codes
from schemas.codes import CodeKind, GridCode
from schemas.codes import community_id_of as community_of, street_id_of as street_of
from schemas.common import CommunityId, GridId, StreetId

GRID = "110105001002003"
COMMUNITY = "110105001002"
STREET = "110105001"
DIVISION = "110105"

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
EXTENDED_ARABIC_INDIC = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def other_digits(code: str) -> list[str]:
    """``code`` spelled in other scripts' digits, whole and with one digit swapped."""
    out = [code.translate(t) for t in (ARABIC_INDIC, FULL_WIDTH, EXTENDED_ARABIC_INDIC)]
    out += [code[:-1] + code[-1].translate(t) for t in (ARABIC_INDIC, FULL_WIDTH)]
    return out


def test_a_grid_code_splits_into_division_street_community_and_grid():
    code = GridCode.parse(GRID)
    assert (code.division, code.street, code.community, code.grid) == (DIVISION, "001", "002", "003")
    assert (code.street_id, code.community_id, code.grid_id) == (STREET, COMMUNITY, GRID)
    assert str(code) == GRID
    assert GridCode.parse(code.grid_id) == code


def test_a_grid_code_is_a_frozen_hashable_value():
    code = GridCode.parse(GRID)
    with pytest.raises(dataclasses.FrozenInstanceError):
        code.grid = "004"  # type: ignore[misc]
    assert {code, GridCode.parse(GRID)} == {code}


@pytest.mark.parametrize("bad", [
    "", "1101050010020", "11010500100200", "1101050010020034", "abcdefghijklmno", "11010500100200a",
    GRID + "\n", " " + GRID[1:], "+10105001002003", "-10105001002003", "1_1010500100200", None, 110105001002003,
    *other_digits(GRID),
])
def test_a_malformed_grid_id_is_refused(bad):
    assert not codes.is_grid_id(bad)
    assert GridCode.try_parse(bad) is None
    with pytest.raises(ValueError):
        GridCode.parse(bad)


@pytest.mark.parametrize("digits", other_digits(GRID))
def test_arabic_indic_and_full_width_digits_are_refused_everywhere(digits: str):
    assert digits.isdigit(), "these are digits to Python's str.isdigit: the trap this module avoids"
    assert codes.kind_of(digits) is None
    assert codes.parent_of(digits) is None
    assert not codes.is_within(digits, COMMUNITY)
    with pytest.raises(ValueError):
        community_of(digits)
    with pytest.raises(ValidationError):
        TypeAdapter(GridId).validate_python(digits)


@pytest.mark.parametrize("code", [COMMUNITY, STREET, DIVISION])
def test_other_levels_in_other_digits_are_refused(code: str):
    for digits in other_digits(code):
        assert codes.kind_of(digits) is None
        assert codes.is_code_shaped(digits), "shaped like a code, so a malformed code rather than another id"
    for adapter in (TypeAdapter(CommunityId), TypeAdapter(StreetId)):
        for digits in other_digits(code):
            with pytest.raises(ValidationError):
                adapter.validate_python(digits)


def test_the_parts_are_checked_when_built_directly():
    assert GridCode(DIVISION, "001", "002", "003").grid_id == GRID
    for parts in [("11010", "001", "002", "003"), (DIVISION, "01", "002", "003"), (DIVISION, "001", "002", "٠٠٣")]:
        with pytest.raises(ValueError):
            GridCode(*parts)


@pytest.mark.parametrize("code, kind", [
    (GRID, CodeKind.GRID), (COMMUNITY, CodeKind.COMMUNITY), (STREET, CodeKind.STREET), (DIVISION, CodeKind.DIVISION),
    ("1101050", None), ("1101050010", None), ("unit-110105001-01", None), ("", None), (None, None), (110105001, None),
])
def test_kind_of_tells_grid_community_street_and_division(code, kind):
    assert codes.kind_of(code) is kind
    assert codes.is_grid_id(code) is (kind is CodeKind.GRID)
    assert codes.is_community_id(code) is (kind is CodeKind.COMMUNITY)
    assert codes.is_street_id(code) is (kind is CodeKind.STREET)
    assert codes.is_division(code) is (kind is CodeKind.DIVISION)
    if kind is not None:
        assert kind.length == len(code)


def test_is_code_shaped_tells_a_malformed_code_from_another_id():
    assert codes.is_code_shaped(STREET) and codes.is_code_shaped("٠٠٠٠٠٠٠٠٠")
    assert not codes.is_code_shaped("unit-01") and not codes.is_code_shaped("12345") and not codes.is_code_shaped(None)


def test_the_parent_of_each_level():
    assert codes.parent_of(GRID) == COMMUNITY
    assert codes.parent_of(COMMUNITY) == STREET
    assert codes.parent_of(STREET) == DIVISION
    assert codes.parent_of(DIVISION) is None
    assert [k.parent for k in CodeKind] == [None, CodeKind.DIVISION, CodeKind.STREET, CodeKind.COMMUNITY]
    assert codes.parent_of("1101050010") is None


def test_parent_of_a_given_kind_only():
    assert codes.parent_of(GRID, CodeKind.GRID) == COMMUNITY
    assert codes.parent_of(COMMUNITY, CodeKind.GRID) is None
    assert codes.parent_of(COMMUNITY, CodeKind.COMMUNITY) == STREET
    assert codes.parent_of(None, CodeKind.GRID) is None


def test_ancestors_and_the_ids_of_street_and_community():
    assert codes.ancestor_of(GRID, CodeKind.STREET) == STREET
    assert codes.ancestor_of(GRID, CodeKind.GRID) == GRID
    assert codes.ancestor_of(STREET, CodeKind.COMMUNITY) is None
    assert codes.street_id_of(GRID) == codes.street_id_of(COMMUNITY) == codes.street_id_of(STREET) == STREET
    assert codes.community_id_of(GRID) == codes.community_id_of(COMMUNITY) == COMMUNITY
    assert street_of(GRID) == STREET and community_of(GRID) == COMMUNITY
    for bad in (DIVISION, "unit-1", "１１０１０５００１"):
        with pytest.raises(ValueError):
            codes.street_id_of(bad)
    with pytest.raises(ValueError):
        codes.community_id_of(STREET)


def test_prefix_matching_is_this_grid_in_that_community_or_street():
    code = GridCode.parse(GRID)
    assert code.is_within(COMMUNITY) and code.is_within(STREET) and code.is_within(DIVISION)
    assert not code.is_within("110105001003") and not code.is_within("110105002")
    assert not code.is_within(GRID), "strictly inside: a grid is not within itself"
    assert codes.is_within(COMMUNITY, STREET) and not codes.is_within(STREET, COMMUNITY)
    assert not codes.is_within("110105001002", "1101050")  # a prefix that is no code
    assert not codes.is_within(GRID, "١١٠١٠٥٠٠١")


def test_the_patterns_say_what_the_predicates_say():
    import re

    for pattern, kind in [(codes.GRID_ID_PATTERN, CodeKind.GRID), (codes.COMMUNITY_ID_PATTERN, CodeKind.COMMUNITY),
                          (codes.STREET_ID_PATTERN, CodeKind.STREET), (codes.DIVISION_PATTERN, CodeKind.DIVISION)]:
        for value in (GRID, COMMUNITY, STREET, DIVISION, *other_digits(GRID), *other_digits(STREET)):
            assert (re.search(pattern, value) is not None) is (codes.kind_of(value) is kind), (pattern, value)
