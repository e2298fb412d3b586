"""The `lockscope_findings` fixture: a test asserts on the findings of its own
code (its threads as actors), with or without `--lockscope`."""
from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TESTS = """
import threading


def run_two_threads(second_takes_a_first):
    a = threading.Lock()
    b = threading.Lock()
    pause = __import__("time").sleep  # staggered in time: a signal would order them

    def first():
        with a:
            with b:
                pass
        pause(0.3)  # both alive at once

    def second():
        pause(0.15)  # after first's section: no actual deadlock
        outer, inner = (a, b) if second_takes_a_first else (b, a)
        with outer:
            with inner:
                pass

    threads = [threading.Thread(target=first, name="first"),
               threading.Thread(target=second, name="second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)


def test_inversion_is_found(lockscope_findings):
    run_two_threads(second_takes_a_first=False)
    [found] = lockscope_findings(kind="potential-deadlock")
    assert sorted(t["name"] for t in found["threads"]) == ["first", "second"]
    assert [s["site"].split(":")[1] for s in found["steps"]] in (["11", "19"], ["19", "11"])


def test_only_this_test_is_analyzed(lockscope_findings):
    # the previous test's inversion is not this test's finding
    run_two_threads(second_takes_a_first=True)
    assert lockscope_findings() == []
    lockscope_findings.assert_clean()


def test_assert_clean_reports_the_cycle(lockscope_findings):
    run_two_threads(second_takes_a_first=False)
    lockscope_findings.assert_clean()
"""


@pytest.mark.parametrize("args", [(), ("--lockscope",)], ids=["plain", "lockscope"])
def test_fixture_gives_each_test_its_own_findings(pytester, args):
    pytester.makepyfile(test_locking=TESTS)
    result = pytester.runpytest_inprocess("-p", "no:randomly", *args)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*AssertionError: lockscope: 1 finding(s) at or above 'error' in "
        "test_locking.py::test_assert_clean_reports_the_cycle:",
        "*ERROR potential-deadlock: Potential deadlock: lock order cycle *",
        "*    thread 'first': requested * at test_locking.py:11 *",
        "*    thread 'second': requested * at test_locking.py:19 *",
    ])
    if args:
        # The session analysis sees the same threads, attributed to their tests:
        # with locks identified by creation site, the three tests' pairs of locks
        # are one cycle, and each edge names every test whose thread took it.
        result.stdout.fnmatch_lines([
            "*= lockscope =*",
            "    test_locking.py::test_inversion_is_found, test_locking.py::test_only_this_test_is_analyzed,"
            " test_locking.py::test_assert_clean_reports_the_cycle: thread 'first' requested *"
            " at test_locking.py:11 *",
            "    test_locking.py::test_inversion_is_found, test_locking.py::test_assert_clean_reports_the_cycle:"
            " thread 'second' requested * at test_locking.py:19 *",
            "lockscope: FAILED: 1 finding at or above 'error': 1 potential-deadlock",
        ])
