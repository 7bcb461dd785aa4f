"""A credit puts its lot in its place among the account's lots (oldest first) without sorting
them all again: the same tuple, in the same order, as a sort of all of them gives."""
from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from services.points.domain.accounts import Lot, _with_lot

SH = timezone(timedelta(hours=8))
T0 = datetime(2024, 1, 1, tzinfo=SH)


def lot(minutes: int, lot_id: str) -> Lot:
    return Lot(lot_id=lot_id, earned_at=T0 + timedelta(minutes=minutes), amount=5, remaining=5,
               origin_account="issuer:110105001002")


def by_sort(lots: tuple[Lot, ...], new: Lot) -> tuple[Lot, ...]:
    return tuple(sorted((*lots, new), key=lambda x: (x.earned_at, x.lot_id)))


lots_of = st.lists(st.tuples(st.integers(0, 50), st.sampled_from("abcdef")), max_size=12)


@given(lots_of, st.integers(0, 50), st.sampled_from("abcdef"))
def test_a_lot_goes_where_a_sort_of_all_the_lots_puts_it(existing, minutes, lot_id):
    lots = tuple(sorted((lot(m, i) for m, i in existing), key=lambda x: (x.earned_at, x.lot_id)))  # kept so
    new = lot(minutes, lot_id)
    assert _with_lot(lots, new) == by_sort(lots, new)


def test_the_newest_lot_is_appended_and_an_older_one_inserted_in_its_place():
    lots = (lot(1, "a"), lot(5, "b"), lot(9, "c"))
    assert [x.lot_id for x in _with_lot(lots, lot(12, "d"))] == ["a", "b", "c", "d"]
    assert [x.lot_id for x in _with_lot(lots, lot(5, "a"))] == ["a", "a", "b", "c"]
    assert [x.lot_id for x in _with_lot(lots, lot(6, "z"))] == ["a", "b", "z", "c"]
    assert [x.lot_id for x in _with_lot((), lot(0, "x"))] == ["x"]
