"""Done means: on the demo, a push adding an untested function fails with the function's lines
listed; adding the test makes the next push green (real pytest under coverage, real CLI)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

from tests.conftest import child_env
from tests.coverage.test_parallel import DEMO, PYTEST, demo_copy, run

UNTESTED = '''

def loyalty_discount(total: float, visits: int) -> float:
    """Five percent off from the tenth visit."""
    if visits >= 10:
        return round(total * 0.95, 2)
    return total
'''
TEST = '''

def test_loyalty_discount():
    from app.logic import loyalty_discount
    assert loyalty_discount(100.0, 10) == 95.0
    assert loyalty_discount(100.0, 3) == 100.0
'''


def measure_and_gate(repo, base: str, measure: bool = True) -> tuple[int, dict]:
    if measure:
        for stale in repo.path.glob(".coverage*"):
            stale.unlink()
        run(repo.path, "-m", "coverage", "run", *PYTEST, "-n", "2")
        run(repo.path, "-m", "coverage", "combine", "-q")
    out = subprocess.run([sys.executable, "-m", "greenlight.cli.coverage", "--base", base,
                          "--head", repo.head(), "--format", "json"], cwd=repo.path,
                         env=child_env(), capture_output=True, text=True, check=False)
    return out.returncode, json.loads(out.stdout)


def test_untested_function_fails_then_its_test_makes_it_green(make_repo, tmp_path):
    demo_copy(tmp_path / "copy")
    repo = make_repo("demo")
    shutil.copytree(tmp_path / "copy", repo.path, dirs_exist_ok=True)
    (repo.path / ".gitignore").write_text(".coverage*\n__pycache__/\n")
    base = repo.commit("demo")
    logic = repo.path / "app" / "logic.py"
    logic.write_text(logic.read_text() + UNTESTED)
    pushed = repo.commit("loyalty discount", author="Lou Loyal <lou@example.com>")
    rc, report = measure_and_gate(repo, base)
    assert rc == 1 and report["worst_file"] == "app/logic.py"
    (entry,) = report["files"]
    first = logic.read_text().splitlines().index("def loyalty_discount(total: float, visits: int) "
                                                 "-> float:") + 1
    assert entry["missing_lines"] == [first + 2, first + 3, first + 4]  # if, both returns
    assert {u["author"] for u in entry["uncovered"]} == {"Lou Loyal"}
    tests = repo.path / "tests" / "test_logic.py"
    tests.write_text(tests.read_text() + TEST)
    repo.commit("test loyalty discount")
    rc, report = measure_and_gate(repo, pushed)
    # the test file is outside the demo's coverage source (app): nothing new to cover
    assert rc == 0 and report["passed"] and report["totals"]["new_statements"] == 0
    assert report["skipped"] == [{"path": "tests/test_logic.py",
                                  "reason": "outside the configured coverage source"}]
    rc, report = measure_and_gate(repo, base, measure=False)  # both commits as one push
    assert rc == 0 and report["totals"]["new_statements"] == 4
    assert report["totals"]["percent"] == 100.0
    assert DEMO.is_dir()
