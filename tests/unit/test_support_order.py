"""The order in which `make test` hands test files to its processes (tests/support/order.py)."""
from tests.support.order import file_of, slowest_files_first


def test_file_of_a_node_id():
    assert file_of("tests/a/test_b.py::test_c[x::y]") == "tests/a/test_b.py"
    assert file_of("tests/a/test_b.py::TestK::test_c") == "tests/a/test_b.py"


def test_the_slowest_file_comes_first_and_a_files_tests_stay_together_in_order():
    ids = ["t/quick.py::a", "t/slow.py::a", "t/quick.py::b", "t/mid.py::a", "t/slow.py::b"]
    known = {"t/quick.py": 1.0, "t/slow.py": 90.0, "t/mid.py": 10.0}
    assert slowest_files_first(ids, known) == [
        "t/slow.py::a", "t/slow.py::b", "t/mid.py::a", "t/quick.py::a", "t/quick.py::b"]


def test_a_file_without_a_known_time_comes_before_every_known_one():
    ids = ["t/slow.py::a", "t/new.py::a", "t/quick.py::a"]
    assert slowest_files_first(ids, {"t/slow.py": 90.0, "t/quick.py": 1.0}) == [
        "t/new.py::a", "t/slow.py::a", "t/quick.py::a"]


def test_files_of_equal_time_keep_their_order_and_key_reads_the_id():
    items = [("t/b.py::x",), ("t/a.py::x",), ("t/b.py::y",)]
    assert slowest_files_first(items, {"t/a.py": 5.0, "t/b.py": 5.0}, key=lambda it: it[0]) == [
        ("t/b.py::x",), ("t/b.py::y",), ("t/a.py::x",)]


def test_the_committed_durations_name_only_files_that_exist():
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    known = json.loads((root / "tests" / "support" / "durations.json").read_text(encoding="utf-8"))
    assert known and all(isinstance(v, (int, float)) and v >= 0 for v in known.values())
    missing = [f for f in known if not (root / f).is_file()]
    assert not missing, f"tests/support/durations.json names files that are gone: {missing}"
