"""The workers take the slowest folders' files first (``tests/conftest.py``'s ``SLOW_FIRST``):
a folder of tests left out of it would run last, after the short unit files meant to fill in
the end of the run, and a slow one there is CI's tail again."""

from __future__ import annotations

from tests.conftest import SLOW_FIRST, TESTS, folder_rank


def test_every_folder_of_tests_is_named_in_the_order() -> None:
    folders = {path.relative_to(TESTS).parts[0] for path in TESTS.glob("*/**/test_*.py")}
    assert folders - set(SLOW_FIRST) == set()


def test_fault_tests_go_before_unit_tests_and_a_folder_not_named_goes_last() -> None:
    faults = folder_rank(TESTS / "faults" / "test_kill9.py")
    unit = folder_rank(TESTS / "unit" / "test_test_order.py")
    assert faults < unit < folder_rank(TESTS / "elsewhere" / "test_x.py")
    assert folder_rank(TESTS / "test_top.py") == len(SLOW_FIRST)
    assert folder_rank(TESTS.parent.parent / "elsewhere" / "test_inner.py") == len(SLOW_FIRST)
