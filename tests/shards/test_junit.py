"""JUnit XML parsing: node ids rebuilt from pytest's dotted class names, outcomes, times."""
from __future__ import annotations

import pytest

from greenlight.errors import UsageError
from greenlight.shards.junit import node_id, parse_junit, parse_junit_file

XUNIT2 = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5" time="1.2">
<testcase classname="tests.pkg.test_mod" name="test_ok[a.b-1]" time="0.250" />
<testcase classname="tests.pkg.test_mod.TestThing" name="test_fail" time="0.5">
  <failure message="assert 1 == 2">def test_fail():
&gt;   assert 1 == 2</failure></testcase>
<testcase classname="tests.test_top" name="test_skip" time="0.001">
  <skipped type="pytest.skip" message="not today">skip reason</skipped></testcase>
<testcase classname="tests.test_top" name="test_teardown" time="0.1" />
<testcase classname="tests.test_top" name="test_teardown" time="0.2">
  <error message="failed on teardown">boom</error></testcase>
</testsuite></testsuites>
"""


def test_parses_ids_outcomes_and_times():
    results = {r.test_id: r for r in parse_junit(XUNIT2)}
    assert list(results) == [
        "tests/pkg/test_mod.py::test_ok[a.b-1]",
        "tests/pkg/test_mod.py::TestThing::test_fail",
        "tests/test_top.py::test_skip",
        "tests/test_top.py::test_teardown",
    ]
    assert results["tests/pkg/test_mod.py::test_ok[a.b-1]"].seconds == 0.25
    fail = results["tests/pkg/test_mod.py::TestThing::test_fail"]
    assert fail.outcome == "failed" and fail.failed
    assert "assert 1 == 2" in fail.message and "> " in fail.message
    assert results["tests/test_top.py::test_skip"].outcome == "skipped"
    teardown = results["tests/test_top.py::test_teardown"]
    assert teardown.outcome == "error" and teardown.seconds == pytest.approx(0.3)


def test_file_attribute_wins(tmp_path):
    assert node_id("tests.test_a.Helper", "test_x", file="tests/test_a.py") == \
        "tests/test_a.py::Helper::test_x"


def test_rootdir_resolves_lowercase_classes(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("")
    assert node_id("tests.test_a.lower_class", "test_x", rootdir=tmp_path) == \
        "tests/test_a.py::lower_class::test_x"
    # Without the file system, a lowercase segment reads as part of the module path.
    assert node_id("tests.test_a.lower_class", "test_x") == "tests/test_a/lower_class.py::test_x"


def test_matches_what_real_pytest_writes(tmp_path):
    import subprocess
    import sys
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "test_real.py").write_text(
        "import pytest\n"
        "class TestA:\n    def test_m(self): pass\n"
        "@pytest.mark.parametrize('v', ['x.y', 'a::b'])\ndef test_p(v): assert v != 'a::b'\n")
    junit = tmp_path / "j.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={junit}"], cwd=tmp_path, capture_output=True)
    results = {r.test_id: r.outcome for r in parse_junit_file(junit, rootdir=tmp_path)}
    assert results == {"sub/test_real.py::TestA::test_m": "passed",
                       "sub/test_real.py::test_p[x.y]": "passed",
                       "sub/test_real.py::test_p[a::b]": "failed"}


def test_not_xml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<testsuites>\n<testcase name='x'>\n")
    with pytest.raises(UsageError, match=r"bad\.xml:\d+: not valid XML"):
        parse_junit_file(bad)
    with pytest.raises(UsageError, match="expected <testsuites>"):
        parse_junit("<html/>")
    with pytest.raises(UsageError, match="cannot read"):
        parse_junit_file(tmp_path / "missing.xml")
