"""The client-side check the pre-push hook calls when greenlight.prepush.coverage is true."""
from __future__ import annotations

from greenlight.coverage import pre_push_check


def test_pre_push_blocks_untested_code_then_allows_it_once_tested(make_repo, run_coverage):
    repo = make_repo()
    repo.write("lib.py", "def a():\n    return 1\n")
    repo.write("run_tests.py", "import lib\nassert lib.a() == 1\n")
    base = repo.commit("base")
    repo.write("lib.py", "def a():\n    return 1\n\n\ndef b():\n    return 2\n")
    repo.commit("untested b")
    ok, message = pre_push_check(repo.path, base, repo.head())
    assert not ok and "no coverage data" in message and "--no-verify" in message
    run_coverage(repo.path, "run_tests.py")
    ok, message = pre_push_check(repo.path, base, repo.head())
    assert not ok and "line 6 not covered" in message
    repo.git("config", "greenlight.coverage.failunder", "fifty")   # says so, not 100 silently
    ok, message = pre_push_check(repo.path, base, repo.head())
    assert not ok and "greenlight.coverage.failunder is 'fifty', not a percentage" in message
    repo.git("config", "greenlight.coverage.failunder", "50")
    ok, message = pre_push_check(repo.path, base, repo.head())
    assert ok and "threshold 50%: ok" in message
    repo.git("config", "--unset", "greenlight.coverage.failunder")
    repo.write("run_tests.py", "import lib\nassert lib.a() == 1\nassert lib.b() == 2\n")
    repo.commit("test b")
    run_coverage(repo.path, "run_tests.py")
    ok, message = pre_push_check(repo.path, "0" * 40, repo.head())  # a new branch
    assert ok, message
