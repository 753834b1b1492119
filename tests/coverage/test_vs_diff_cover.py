"""Ours against diff-cover (the peer tool) on the same repositories and coverage data.

Where both apply (line coverage of single-line statements) the totals agree; where they differ,
coverage.py's own report shows which answer is right."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import coverage
from greenlight.coverage import diff_coverage

from tests.conftest import child_env

DIFF_COVER = Path(sys.executable).parent / "diff-cover"


def diff_cover(repo, base: str) -> dict:
    subprocess.run([sys.executable, "-m", "coverage", "xml", "-q", "-o", "coverage.xml"],
                   cwd=repo.path, env=child_env(), check=True)
    out = repo.path / "diff-cover.json"
    subprocess.run([str(DIFF_COVER), "coverage.xml", f"--compare-branch={base}",
                    "--ignore-staged", "--ignore-unstaged", f"--format=json:{out}", "-q"],
                   cwd=repo.path, env=child_env(), check=True, capture_output=True)
    return json.loads(out.read_text())


def agree(repo, base: str) -> None:
    ours = diff_coverage(repo.path, base, repo.head())
    theirs = diff_cover(repo, base)
    assert ours.new_statements == theirs["total_num_lines"] > 0
    assert ours.new_statements - ours.covered_statements == theirs["total_num_violations"]
    for f in ours.files:
        assert f.measure.missing == theirs["src_stats"][f.path]["violation_lines"]


def test_totals_agree_on_modified_and_added_files(make_repo, run_coverage):
    repo = make_repo()
    repo.write("pkg/__init__.py", "")
    repo.write("pkg/calc.py", "".join(f"def f{i}(x):\n    return x + {i}\n\n\n"
                                      for i in range(6)))
    repo.write("run_tests.py", "from pkg import calc\nassert calc.f0(1) == 1\n")
    base = repo.commit("base")
    repo.write("pkg/calc.py", "".join(f"def f{i}(x):\n    y = x\n    return y + {i}\n\n\n"
                                      for i in range(6)))
    repo.write("pkg/fmt.py", "# formatting helpers\n\ndef show(x):\n    return str(x)\n\n\n"
                             "def hide(x):\n    return ''\n")
    repo.write("run_tests.py", "from pkg import calc, fmt\nassert calc.f0(1) == 1\n"
                               "assert calc.f3(1) == 4\nassert fmt.show(2) == '2'\n")
    repo.commit("edit and add")
    run_coverage(repo.path, "run_tests.py", branch=False)
    agree(repo, base)


def test_totals_agree_across_a_rename_and_several_commits(make_repo, run_coverage):
    repo = make_repo()
    body = "".join(f"def g{i}():\n    return {i}\n\n\n" for i in range(10))
    repo.write("old_name.py", body)
    repo.write("run_tests.py", "import old_name\n")
    base = repo.commit("base")
    repo.git("mv", "old_name.py", "new_name.py")
    repo.write("new_name.py", body.replace("return 4", "return 40"))
    repo.write("run_tests.py", "import new_name\nassert new_name.g1() == 1\n")
    repo.commit("rename and edit", author="Ren <ren@example.com>")
    repo.write("new_name.py",
               body.replace("return 4", "return 40").replace("return 1", "return 1 "))
    repo.commit("touch a tested line", author="Tess <tess@example.com>")
    run_coverage(repo.path, "run_tests.py", branch=False)
    agree(repo, base)


def test_where_they_differ_ours_matches_coverage_itself(make_repo, run_coverage):
    repo = make_repo()
    repo.write("lib.py", "def total(a):\n    return sum([\n        a,\n        1,\n    ])\n\n\n"
                         "def clamp(x):\n    return x\n")
    repo.write("run_tests.py", "import lib\nassert lib.clamp(10) == 9\n")
    base = repo.commit("base")
    repo.write("lib.py", "def total(a):\n    return sum([\n        a,\n        2,\n    ])\n\n\n"
                         "def clamp(x):\n    if x > 9:\n        x = 9\n    return x\n")
    repo.commit("continuation line of an untested statement; a half-tested branch")
    run_coverage(repo.path, "run_tests.py")
    ours = diff_coverage(repo.path, base, repo.head())
    theirs = diff_cover(repo, base)
    lib = ours.files[0].measure
    # 1. the changed `2,` line belongs to `return sum([...])` (line 2), which never ran:
    cov = coverage.Coverage(data_file=str(repo.path / ".coverage"))
    cov.load()
    _, _, _, cov_missing, _ = cov.analysis2(str(repo.path / "lib.py"))
    assert 2 in cov_missing and 2 in lib.missing
    assert 2 not in theirs["src_stats"]["lib.py"]["violation_lines"]  # diff-cover cannot see it
    # 2. the new `if` never took its false side: coverage's branch stats say 1 of 2 exits
    assert cov.branch_stats(str(repo.path / "lib.py"))[9] == (2, 1)
    assert lib.partial == {9: [11]} and not ours.passed
    assert theirs["src_stats"]["lib.py"]["violation_lines"] == []  # diff-cover: 100%, passes
