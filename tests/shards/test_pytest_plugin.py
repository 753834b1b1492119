"""The pytest plugin, run in real pytest subprocesses on a tiny generated suite."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from greenlight.cli.main import main as cli
from greenlight.shards.planner import plan_shards

MODULE = '''
import pytest

CALLS = []


@pytest.fixture(scope="module")
def expensive():
    CALLS.append(1)
    return len(CALLS)


@pytest.mark.parametrize("k", range({n}))
def test_param(k, expensive):
    assert expensive == 1  # module fixture built once per module in each process


class TestGroup:
    def test_method(self):
        pass
'''


def _env() -> dict:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PYTEST_", "COV_CORE")) and k != "COVERAGE_PROCESS_START"}


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120)


@pytest.fixture
def suite(tmp_path):
    """Four modules, 22 tests, with made-up durations so the plan is not a simple split."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    tests = tmp_path / "tests"
    tests.mkdir()
    for m, n in zip("abcd", (6, 2, 8, 2)):
        (tests / f"test_{m}.py").write_text(MODULE.format(n=n))
    ids = []  # in collection order, as the plugin sees them
    for m, n in zip("abcd", (6, 2, 8, 2)):
        ids += [f"tests/test_{m}.py::test_param[{k}]" for k in range(n)]
        ids.append(f"tests/test_{m}.py::TestGroup::test_method")
    durations = {t: 0.1 + (hash_i % 7) * 0.3 for hash_i, t in enumerate(ids)}
    (tmp_path / ".test_durations").write_text(json.dumps(durations))
    return tmp_path, ids, durations


def _report(path: Path) -> dict:
    return json.loads(path.read_text())


def test_without_options_the_plugin_does_nothing(suite):
    root, ids, _ = suite
    proc = _pytest(root, "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(ids)} passed" in proc.stdout
    assert "greenlight shard" not in proc.stdout
    assert "deselected" not in proc.stdout


def test_three_shards_run_every_test_exactly_once(suite, monkeypatch, capsys):
    root, ids, durations = suite
    plan = plan_shards(ids, durations, 3)
    ran = []
    for i in (1, 2, 3):
        proc = _pytest(root, "-q", f"--shard={i}/3", "--shard-durations=.test_durations",
                       f"--shard-report=r{i}.json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"greenlight shard {i}/3" in proc.stdout
        report = _report(root / f"r{i}.json")
        assert sorted(report["collected"]) == sorted(ids)
        assert report["selected"] == list(plan.shards[i - 1].tests)
        assert set(report["results"]) == set(report["selected"])
        assert report["predicted_seconds"] == pytest.approx(plan.shards[i - 1].predicted_seconds)
        ran += list(report["results"])
    assert sorted(ran) == sorted(ids)

    monkeypatch.chdir(root)
    assert cli(["shards", "check", "r1.json", "r2.json", "r3.json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["result"] == "success" and verdict["union"]["ok"] is True
    assert cli(["shards", "check", "r1.json", "r3.json"]) == 1
    out, err = capsys.readouterr()
    assert set(json.loads(out)["union"]["missing"]) == set(plan.shards[1].tests)
    assert "union check FAILED" in err


def test_composes_with_xdist(suite):
    root, ids, durations = suite
    serial = _pytest(root, "-q", "--shard=2/3", "--shard-durations=.test_durations",
                     "--shard-report=serial.json")
    parallel = _pytest(root, "-q", "-n", "2", "--shard=2/3",
                       "--shard-durations=.test_durations", "--shard-report=xdist.json")
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    a, b = _report(root / "serial.json"), _report(root / "xdist.json")
    assert b["selected"] == a["selected"] and sorted(b["collected"]) == sorted(ids)
    assert set(b["results"]) == set(a["selected"])
    assert all(r["outcome"] == "passed" for r in b["results"].values())
    assert f"{len(a['selected'])} passed" in parallel.stdout
    assert serial.returncode == 0


def test_plan_file_from_the_cli_and_a_test_added_since(suite, monkeypatch):
    root, ids, _ = suite
    monkeypatch.chdir(root)
    assert cli(["shards", "plan", "--shards", "2", "--durations", ".test_durations",
                "--format", "json", "-o", "plan.json"]) == 0
    (root / "tests" / "test_new.py").write_text("def test_added_later():\n    pass\n")
    executed = []
    for i in (1, 2):
        proc = _pytest(root, "-q", f"--shard={i}/2", "--shard-plan=plan.json",
                       f"--shard-report=p{i}.json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = _report(root / f"p{i}.json")
        assert report["unplanned"] == ["tests/test_new.py::test_added_later"]
        executed += list(report["results"])
    assert sorted(executed) == sorted([*ids, "tests/test_new.py::test_added_later"])


def test_group_by_module_keeps_module_fixtures_single(suite):
    root, _, _ = suite
    seen = {}
    for i in (1, 2):
        proc = _pytest(root, "-q", f"--shard={i}/2", "--shard-durations=.test_durations",
                       "--shard-group-by-module", f"--shard-report=g{i}.json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for test_id in _report(root / f"g{i}.json")["results"]:
            seen.setdefault(test_id.split("::")[0], set()).add(i)
    assert len(seen) == 4 and all(len(s) == 1 for s in seen.values())


@pytest.mark.parametrize("args, message", [
    (["--shard=3/2"], "1 <= i <= N"),
    (["--shard=two"], "expected i/N"),
    (["--shard-plan=plan.json"], "--shard-plan needs --shard i/N"),
    (["--shard=1/3", "--shard-plan=missing.json"], "cannot read"),
])
def test_bad_options_are_usage_errors(suite, args, message):
    root, _, _ = suite
    proc = _pytest(root, "-q", *args)
    assert proc.returncode == 4
    assert message in proc.stderr


def test_plan_with_another_shard_count_is_refused(suite):
    root, _, _ = suite
    (root / "plan.json").write_text(json.dumps({"shards": [{"index": 1, "tests": []}]}))
    proc = _pytest(root, "-q", "--shard=1/2", "--shard-plan=plan.json")
    assert proc.returncode == 4 and "plan again with --shards 2" in proc.stderr
