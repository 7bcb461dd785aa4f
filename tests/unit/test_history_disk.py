"""The generator's check of the disk before it starts: hours of work must not end on a full disk."""
from __future__ import annotations

import shutil

import pytest

from tests.history.generate import check_disk


def test_what_fits_on_the_file_system_passes(tmp_path):
    check_disk([(tmp_path / "pg", 1_000, 0), (tmp_path, 1_000, 0)])


def test_what_does_not_fit_is_refused_naming_the_path_and_the_sizes(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(SystemExit, match=r"not enough disk.*pg.*GB needed.*GB free.*smaller SCALE"):
        check_disk([(tmp_path / "pg" / "not-made-yet", free + 10**9, 0)])


def test_two_needs_on_one_file_system_add_up(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    half = int(free * 0.6)
    check_disk([(tmp_path / "a", half, 0)])
    check_disk([(tmp_path / "b", half, 0)])
    with pytest.raises(SystemExit, match=r"a and .*b"):
        check_disk([(tmp_path / "a", half, 0), (tmp_path / "b", half, 0)])


def test_what_a_replaced_database_frees_counts_as_free(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    check_disk([(tmp_path / "pg", free + 10**9, 2 * 10**9)])
