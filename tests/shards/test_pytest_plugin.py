"""The pytest plugin, run in real pytest subprocesses on a tiny generated suite."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from greenlight.cli.main import main as cli
from greenlight.shards.planner import plan_shards

from tests.conftest import child_env

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


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=120)


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
    (["--shard-rerun-report=r.json"], "--shard-rerun-report needs --shard i/N"),
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


FLAKY_SUITE = '''
from pathlib import Path

MARKER = Path(__file__).with_name("marker")


def test_fine():
    pass


def test_broken():
    assert 1 == 2, "a real failure"


def test_flaky():
    first = not MARKER.exists()
    MARKER.write_text("x")
    assert not first, "fails on its first run only"
'''


@pytest.fixture
def flaky_suite(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_f.py").write_text(FLAKY_SUITE)
    (tmp_path / "plan.json").write_text(json.dumps({"shards": [
        {"index": 1, "tests": ["test_f.py::test_broken", "test_f.py::test_flaky",
                               "test_f.py::test_fine"]},
        {"index": 2, "tests": []}]}))
    return tmp_path


def _check_reruns(root: Path) -> None:
    reruns = _report(root / "rerun.json")
    assert reruns["flaky"] == ["test_f.py::test_flaky"]
    assert reruns["failed"] == ["test_f.py::test_broken"] and reruns["ok"] is False
    by_id = {r["test_id"]: r for r in reruns["reruns"]}
    assert by_id["test_f.py::test_flaky"]["rerun_outcome"] == "passed"
    assert "fails on its first run only" in by_id["test_f.py::test_flaky"]["message"]
    assert by_id["test_f.py::test_broken"]["rerun_outcome"] == "failed"
    assert "a real failure" in by_id["test_f.py::test_broken"]["message"]
    report = _report(root / "report.json")
    assert report["results"]["test_f.py::test_flaky"]["outcome"] == "failed"  # first run


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]])
def test_failed_tests_are_rerun_alone_flaky_or_real(flaky_suite, xdist):
    proc = _pytest(flaky_suite, "-q", *xdist, "--shard=1/2", "--shard-plan=plan.json",
                   "--shard-report=report.json", "--shard-rerun-report=rerun.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    _check_reruns(flaky_suite)
    assert "1 flaky (passed alone), 1 failed again" in proc.stdout


def test_no_failures_write_an_empty_rerun_verdict(flaky_suite):
    proc = _pytest(flaky_suite, "-q", "--shard=2/2", "--shard-plan=plan.json",
                   "--shard-rerun-report=rerun.json")
    assert proc.returncode == 5, proc.stdout + proc.stderr  # shard 2 of this plan is empty
    assert _report(flaky_suite / "rerun.json") == {"flaky": [], "failed": [], "reruns": [],
                                                   "ok": True}


def test_shipped_file_runs_a_shard_where_greenlight_is_not_installed(flaky_suite, tmp_path):
    """What a shard build does on a worker whose venv lacks Greenlight: the plugin's one file,
    alone on PYTHONPATH, loaded with -p (here `greenlight` is made unimportable and entry
    points are off, so nothing but the shipped file can serve)."""
    from greenlight.steps.shards import plugin_source

    ship = tmp_path / "ship"
    ship.mkdir()
    (ship / "shipped_shard.py").write_bytes(Path(plugin_source()).read_bytes())
    script = ("import sys; sys.modules['greenlight'] = None; import pytest; "
              "sys.exit(pytest.main(sys.argv[1:]))")
    env = {**child_env(), "PYTHONPATH": str(ship), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", script, "-q", "-p", "no:cacheprovider", "-p", "shipped_shard",
         "--shard=1/2", "--shard-plan=plan.json", "--shard-report=report.json",
         "--shard-rerun-report=rerun.json"],
        cwd=flaky_suite, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    _check_reruns(flaky_suite)
    durations = subprocess.run(
        [sys.executable, "-c", script, "-q", "-p", "shipped_shard", "--shard=1/2"],
        cwd=flaky_suite, env=env, capture_output=True, text=True, timeout=120)
    assert durations.returncode == 4 and "pass --shard-plan FILE" in durations.stderr


def test_p_greenlight_shard_means_the_entry_point_where_greenlight_is_installed(flaky_suite,
                                                                                tmp_path):
    """The shard builder always passes `-p greenlight_shard` with the shipped file on
    PYTHONPATH; in a venv that has Greenlight the entry point of that name is used instead
    (the plugin is not registered twice, the shipped copy is never imported)."""
    ship = tmp_path / "ship"
    ship.mkdir()
    (ship / "greenlight_shard.py").write_text("raise RuntimeError('shipped copy imported')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "greenlight_shard", "--shard=1/2", "--shard-plan=plan.json",
         "--shard-report=report.json", "--shard-rerun-report=rerun.json"],
        cwd=flaky_suite, env={**child_env(), "PYTHONPATH": str(ship)}, capture_output=True,
        text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    _check_reruns(flaky_suite)
