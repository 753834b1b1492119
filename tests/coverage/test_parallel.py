"""Coverage collected from xdist workers and from shards in other checkouts equals a serial run."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import coverage
import pytest
from greenlight.coverage import combine_data
from greenlight.errors import UsageError

from tests.conftest import child_env
from tests.coverage.conftest import coverage_run

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:greenlight_shard"]


def demo_copy(dest: Path) -> Path:
    if not (DEMO / "app").is_dir():
        pytest.skip("examples/demo is not there yet")
    shutil.copytree(DEMO, dest, ignore=shutil.ignore_patterns("__pycache__", ".coverage*"))
    return dest


def run(cwd: Path, *args: str) -> None:
    out = subprocess.run([sys.executable, *args], cwd=cwd, env=child_env(), capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def measured(data_file: Path) -> dict[str, tuple[set, set]]:
    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    return {Path(f).as_posix(): (set(data.lines(f)), set(data.arcs(f) or []))
            for f in data.measured_files()}


def test_xdist_workers_and_shards_equal_serial_on_the_demo(tmp_path):
    serial, xdist = demo_copy(tmp_path / "serial"), demo_copy(tmp_path / "xdist")
    run(serial, "-m", "coverage", "run", *PYTEST)
    run(serial, "-m", "coverage", "combine", "-q")
    run(xdist, "-m", "coverage", "run", *PYTEST, "-n", "2")
    run(xdist, "-m", "coverage", "combine", "-q")
    expected = measured(serial / ".coverage")
    assert "app/server.py" in expected and len(expected["app/logic.py"][1]) > 20
    assert measured(xdist / ".coverage") == expected
    # two shards in two checkouts, combined with greenlight's helper
    shard_a, shard_b = demo_copy(tmp_path / "a"), demo_copy(tmp_path / "b")
    tests = sorted(p.name for p in (DEMO / "tests").glob("test_*.py"))
    run(shard_a, "-m", "coverage", "run", *PYTEST, *[f"tests/{t}" for t in tests[::2]])
    run(shard_b, "-m", "coverage", "run", *PYTEST, *[f"tests/{t}" for t in tests[1::2]])
    out = combine_data([shard_a, shard_b], tmp_path / "combined" / ".coverage",
                       config_file=DEMO / "pyproject.toml")
    assert measured(out) == expected


def test_combine_remaps_absolute_paths_with_the_config(tmp_path):
    for name, script in (("a", "import lib\nlib.one()\n"), ("b", "import lib\nlib.two()\n")):
        checkout = tmp_path / name
        checkout.mkdir()
        (checkout / "lib.py").write_text("def one():\n    return 1\n\n\ndef two():\n    return 2\n")
        (checkout / "t.py").write_text(script)
        coverage_run(checkout, "t.py")
    rc = tmp_path / "a" / ".coveragerc"
    rc.write_text(f"[run]\nbranch = true\n[paths]\nsrc =\n    {tmp_path / 'a'}/\n"
                  f"    {tmp_path / 'b'}/\n")
    out = combine_data([tmp_path / "a" / ".coverage", tmp_path / "b" / ".coverage"],
                       tmp_path / "all.coverage", config_file=rc)
    combined = measured(out)
    lib = (tmp_path / "a" / "lib.py").as_posix()
    assert set(combined) == {lib, (tmp_path / "a" / "t.py").as_posix()}
    assert combined[lib][0] == {1, 2, 5, 6}


def test_combine_refuses_mixed_branch_settings_and_missing_files(tmp_path):
    for name, branch in (("a", True), ("b", False)):
        checkout = tmp_path / name
        checkout.mkdir()
        (checkout / "t.py").write_text("x = 1\n")
        coverage_run(checkout, "t.py", branch=branch)
    with pytest.raises(UsageError, match="same coverage config"):
        combine_data([tmp_path / "a" / ".coverage", tmp_path / "b" / ".coverage"],
                     tmp_path / "out", config_file=None)
    with pytest.raises(UsageError, match="does not exist"):
        combine_data([tmp_path / "nope"], tmp_path / "out")
