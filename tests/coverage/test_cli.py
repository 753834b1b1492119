"""``greenlight coverage``: exit codes, formats and files, as a real process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import child_env

GREENLIGHT = Path(sys.executable).parent / "greenlight"


def cli(*args: str, cwd: Path, console_script: bool = False) -> subprocess.CompletedProcess:
    cmd = [str(GREENLIGHT), "coverage"] if console_script else \
        [sys.executable, "-m", "greenlight.cli.coverage"]
    return subprocess.run([*cmd, *args], cwd=cwd, env=child_env(), capture_output=True,
                          text=True, check=False)


def pushed(make_repo, run_coverage, tested: bool):
    repo = make_repo()
    repo.write("shop.py", "def price(x):\n    return x\n")
    repo.write("run_tests.py", "import shop\nassert shop.price(1) == 1\n")
    base = repo.commit("base")
    repo.write("shop.py", "def price(x):\n    return x\n\n\ndef discount(x):\n"
                          "    if x > 100:\n        return x - 10\n    return x\n")
    if tested:
        repo.write("run_tests.py", "import shop\nassert shop.discount(200) == 190\n"
                                   "assert shop.discount(5) == 5\n")
    repo.commit("discount", author="Dee <dee@example.com>")
    run_coverage(repo.path, "run_tests.py")
    return repo, base


def test_untested_function_exits_1_and_lists_its_lines(make_repo, run_coverage):
    repo, base = pushed(make_repo, run_coverage, tested=False)
    out = cli("--base", base, "--head", repo.head(), cwd=repo.path)
    assert out.returncode == 1, out.stderr
    assert "FAILED; worst: shop.py" in out.stdout
    for line in (6, 7, 8):
        assert f"line {line} not covered {repo.head()[:10]} Dee" in out.stdout


def test_json_contract_and_extra_reports(make_repo, run_coverage, tmp_path):
    repo, base = pushed(make_repo, run_coverage, tested=True)
    data = os.path.relpath(repo.path / ".coverage", tmp_path)  # relative to the caller's cwd
    out = cli("--base", base, "--head", repo.head(), "--repo", str(repo.path), "--format", "json",
              "--data", data,
              "--output", str(tmp_path / "r.json"), "--also-markdown", str(tmp_path / "r.md"),
              "--also-html", str(tmp_path / "r.html"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["schema"] == "greenlight.coverage/1" and data["passed"] is True
    assert data["totals"]["new_statements"] == 6 and data["totals"]["percent"] == 100.0
    assert data["totals"]["branches"] == 2 and data["totals"]["covered_branches"] == 2
    assert "Coverage of new code" in (tmp_path / "r.md").read_text()
    assert "<h1>Coverage of new code: passed</h1>" in (tmp_path / "r.html").read_text()


def test_fail_under_lowers_the_bar_and_a_subfolder_finds_the_top(make_repo, run_coverage):
    repo, base = pushed(make_repo, run_coverage, tested=False)
    (repo.path / "docs").mkdir()
    # 1 of 6 units: `def discount` ran; the if (2 exits) and its 3 lines did not
    out = cli("--base", base, "--head", repo.head(), "--fail-under", "16.66",
              cwd=repo.path / "docs")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "coverage of new code 16.67%" in out.stdout
    out = cli("--base", base, "--head", repo.head(), "--fail-under", "16.67", cwd=repo.path)
    assert out.returncode == 1


def test_bad_input_exits_2_with_advice(make_repo, run_coverage, tmp_path):
    repo, base = pushed(make_repo, run_coverage, tested=False)
    out = cli("--base", "nope", "--head", repo.head(), cwd=repo.path)
    assert out.returncode == 2 and "unknown base revision 'nope'" in out.stderr
    out = cli("--base", base, "--head", repo.head(), "--data", str(tmp_path / "none"),
              cwd=repo.path)
    assert out.returncode == 2 and "run the tests under coverage first" in out.stderr
    out = cli("--base", base, "--head", repo.head(), "--fail-under", "150", cwd=repo.path)
    assert out.returncode == 2 and "between 0 and 100" in out.stderr


def test_console_script_registers_the_verb(make_repo, run_coverage):
    repo, base = pushed(make_repo, run_coverage, tested=True)
    out = cli("--base", base, "--head", repo.head(), "--format", "markdown", cwd=repo.path,
              console_script=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("### ✅ Coverage of new code")
