"""``AggregateSet.find``: the first state a unit of work holds with an attribute's value, as a
scan of its states finds it, through loads, puts, flushes and rollbacks to savepoints' marks."""
from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace

from pydantic import BaseModel, ConfigDict

from services.kit.aggregates import AggregateSet, AggregateStore


class Item(BaseModel):
    model_config = ConfigDict(frozen=True)
    case: str | None
    n: int = 0


class _Store(AggregateStore[Item]):
    """Reads from a dict and writes nowhere: the set's bookkeeping without a database."""

    def __init__(self, rows: dict[str, Item]):
        super().__init__(Item, kind="test.item")
        self.rows = rows

    async def read(self, conn, ids, *, lock=True, skip_locked=False):
        return {i: (1, self.rows[i]) for i in ids if i in self.rows}

    async def write(self, conn, states):
        return None


def _scan(items: AggregateSet[Item], case: str | None) -> str | None:
    return next((i for i, s in items.items() if s.case == case), None)


def _set(rows: dict[str, Item]) -> AggregateSet[Item]:
    return AggregateSet(_Store(rows), SimpleNamespace(conn=None))  # type: ignore[arg-type]


def test_find_answers_what_the_scan_answers_through_puts_flushes_and_rollbacks():
    cases = [f"c{k}" for k in range(6)] + [None]

    async def run(seed: int) -> int:
        rnd = random.Random(seed)
        rows = {f"o{k}": Item(case=rnd.choice(cases)) for k in range(12) if rnd.random() < 0.6}
        items = _set(rows)
        uow = SimpleNamespace(conn=None)
        marks: list[int] = []
        asked = 0
        for _ in range(80):
            op = rnd.random()
            if op < 0.2:
                await items.load(rnd.sample([f"o{k}" for k in range(16)], rnd.randint(1, 3)))
            elif op < 0.45:
                loaded = sorted(items._versions)
                if loaded:
                    items.put(rnd.choice(loaded), Item(case=rnd.choice(cases), n=rnd.randint(0, 9)))
            elif op < 0.55:
                marks.append(items.mark())
            elif op < 0.65 and marks:
                items.rollback(marks.pop(rnd.randrange(len(marks))))
                marks = [m for m in marks if m <= items.mark()]
            elif op < 0.7:
                await items.flush(uow)  # type: ignore[arg-type]
            else:
                case = rnd.choice(cases)
                assert items.find("case", case) == _scan(items, case), (seed, case)
                asked += 1
        for case in cases:
            assert items.find("case", case) == _scan(items, case), (seed, case)
        return asked

    asked = sum(asyncio.run(run(seed)) for seed in range(300))
    assert asked > 5000


def test_a_state_put_under_another_value_is_found_under_it_and_no_longer_under_the_old():
    items = _set({"a": Item(case="x"), "b": Item(case="y")})
    asyncio.run(items.load(["a", "b"]))
    assert items.find("case", "x") == "a"
    items.put("a", Item(case="y"))
    assert items.find("case", "x") is None
    assert items.find("case", "y") == "a"  # first in the set's order, though indexed after b


def test_a_rollback_takes_back_what_its_messages_put_and_loaded():
    items = _set({"a": Item(case="x")})
    asyncio.run(items.load(["b"]))  # absent: held without a state
    assert items.find("case", "x") is None
    mark = items.mark()
    asyncio.run(items.load(["a"]))
    items.put("b", Item(case="x"))
    assert items.find("case", "x") == "a"
    items.rollback(mark)
    assert items.find("case", "x") is None
    items.put("b", Item(case="z"))
    assert items.find("case", "z") == "b"
