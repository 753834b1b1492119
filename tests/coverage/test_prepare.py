"""The gate split in two: ``prepare`` (code only, beside the tests) and the gate with
``--prepared``. Same results as the one-shot gate on every engine scenario; a prepared file that
does not describe the run is never used silently."""
from __future__ import annotations

import inspect
import json
import os
import sys

import pytest
from buildbot.process.properties import Properties
from greenlight.coverage import gate as engine
from greenlight.coverage.render import RENDERERS
from greenlight.errors import UsageError
from greenlight.steps.coverage_gate import GatedTests, gate_arguments

import tests.coverage.test_gate as gate_tests
from tests.coverage.test_cli import cli

SCENARIOS = [f for name, f in sorted(vars(gate_tests).items()) if name.startswith("test_")]


def _reports(report) -> dict:
    return {"dict": report.to_dict(), **{fmt: render(report) for fmt, render in RENDERERS.items()}}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_every_engine_scenario_gives_the_same_reports_with_a_prepared_analysis(
        scenario, request, monkeypatch, tmp_path):
    """Replays tests/coverage/test_gate.py with each diff_coverage call checked against
    prepare + diff_coverage(prepared=...): same reports, same errors, prepared file used."""
    store = tmp_path / "prepared-analyses"
    compared = []

    def checked(repo_dir, base, head, **kwargs):
        path = store / f"{len(compared)}.json"
        try:
            engine.save_prepared(engine.prepare(
                repo_dir, base, head, config_file=kwargs.get("config_file"),
                extensions=kwargs.get("extensions", (".py",))), path)
        except UsageError:
            path = None
        try:
            fresh = engine.diff_coverage(repo_dir, base, head, **kwargs)
        except UsageError as exc:
            if path is not None:
                with pytest.raises(UsageError) as again:
                    engine.diff_coverage(repo_dir, base, head, prepared=path, **kwargs)
                assert str(again.value) == str(exc)
            compared.append("error")
            raise
        assert path is not None, "prepare refused a run the gate accepts"
        via = engine.diff_coverage(repo_dir, base, head, prepared=path, **kwargs)
        assert via.prepared_note == ""
        assert _reports(via) == _reports(fresh)
        compared.append("report")
        return fresh

    monkeypatch.setattr(gate_tests, "diff_coverage", checked)
    scenario(**{name: request.getfixturevalue(name)
                for name in inspect.signature(scenario).parameters})
    assert compared


def _pushed(make_repo, run_coverage):
    repo = make_repo()
    repo.write("shop.py", "def price(x):\n    return x\n")
    repo.write("run_tests.py", "import shop\nassert shop.price(1) == 1\n")
    base = repo.commit("base")
    repo.write("shop.py", "def price(x):\n    return x\n\n\ndef discount(x):\n"
                          "    if x > 100:\n        return x - 10\n    return x\n")
    repo.write("run_tests.py", "import shop\nassert shop.discount(200) == 190\n")
    repo.commit("discount", author="Dee <dee@example.com>")
    return repo, base


def test_prepare_needs_no_data_and_the_gate_reuses_it(make_repo, run_coverage, tmp_path):
    repo, base = _pushed(make_repo, run_coverage)
    prepared = tmp_path / "prepared.json"
    out = cli("prepare", "--base", base, "--head", repo.head(), "-o", str(prepared),
              cwd=repo.path)
    assert out.returncode == 0, out.stderr
    assert not (repo.path / ".coverage").exists()       # prepared before any test ran
    data = json.loads(prepared.read_text())
    assert data["head"] == repo.head()
    assert {f["path"] for f in data["files"]} == {"shop.py", "run_tests.py"}
    run_coverage(repo.path, "run_tests.py")
    args = ("--base", base, "--head", repo.head(), "--format", "json")
    with_prep = cli(*args, "--prepared", str(prepared), cwd=repo.path)
    without = cli(*args, cwd=repo.path)
    assert with_prep.returncode == without.returncode == 1
    assert "not used" not in with_prep.stderr
    assert json.loads(with_prep.stdout) == json.loads(without.stdout)
    shop = {f["path"]: f for f in json.loads(with_prep.stdout)["files"]}["shop.py"]
    assert shop["partial_branches"] == [6]             # branch data from the analysis
    assert shop["partial"][0]["author"] == "Dee"       # blame from the prepared file


def test_a_prepared_file_that_does_not_match_is_recomputed_and_says_why(make_repo, run_coverage,
                                                                        tmp_path):
    repo, base = _pushed(make_repo, run_coverage)
    head = repo.head()
    prepared = tmp_path / "prepared.json"
    engine.save_prepared(engine.prepare(repo.path, base, head), prepared)
    run_coverage(repo.path, "run_tests.py")
    truth = engine.diff_coverage(repo.path, base, head).to_dict()

    def gate(**kwargs):
        kwargs.setdefault("prepared", prepared)
        report = engine.diff_coverage(repo.path, kwargs.pop("base", base), head, **kwargs)
        return report.prepared_note, report.to_dict()

    note, _ = gate(base=None)                        # another range: first push
    assert "prepared for base" in note
    note, report = gate(prepared=tmp_path / "missing.json")
    assert "did not run" in note and report == truth
    repo.write(".coveragerc", "[report]\nexclude_lines =\n    return x - 10\n")
    note, report = gate()                            # the configuration changed
    assert "configuration" in note and report != truth
    (repo.path / ".coveragerc").unlink()
    shop = (repo.path / "shop.py").read_text()
    measured_at = (repo.path / "shop.py").stat()
    (repo.path / "shop.py").write_text(shop.replace("return x - 10", "return x - 11"))
    with pytest.raises(UsageError, match="differs from head"):   # the recomputation refuses
        gate()
    (repo.path / "shop.py").write_text(shop)
    os.utime(repo.path / "shop.py", ns=(measured_at.st_atime_ns, measured_at.st_mtime_ns))
    prepared.write_text(prepared.read_text().replace('"branch":true', '"branch":false'))
    note, report = gate()                            # data with arcs, analysis without
    assert "without branch analysis" in note and report == truth
    prepared.write_text("{")
    note, report = gate()
    assert "unreadable" in note and report == truth


def test_prepare_runs_the_tests_meanwhile_and_returns_their_status(make_repo, run_coverage,
                                                                   tmp_path):
    repo, base = _pushed(make_repo, run_coverage)
    prepared = tmp_path / "prepared.json"
    marker = tmp_path / "ran"
    tests = [sys.executable, "-c", "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text("
             "' '.join(sys.argv[2:])); sys.exit(3)", str(marker), "-m", "--junitxml=j.xml"]
    out = cli("prepare", "--base", base, "--head", repo.head(), "-o", str(prepared), "--run",
              *tests, cwd=repo.path)
    assert out.returncode == 3, out.stderr
    assert marker.read_text() == "-m --junitxml=j.xml"   # options after --run are the tests'
    assert json.loads(prepared.read_text())["head"] == repo.head()
    # a failed prepare does not fail the tests: it warns, the gate will recompute
    out = cli("prepare", "--base", base, "--head", "f" * 40, "-o", str(tmp_path / "x.json"),
              "--run", sys.executable, "-c", "pass", cwd=repo.path)
    assert out.returncode == 0 and "unknown head revision" in out.stderr
    assert "the gate will recompute" in out.stderr and not (tmp_path / "x.json").exists()


def test_step_arguments_and_the_test_command_rendered_per_build():
    assert gate_arguments("b" * 40, "abc", "d", 90, prepared="p.json")[-2:] == [
        "--prepared", "p.json"]
    command = GatedTests(["python", "-m", "pytest"], greenlight=["/venv/bin/greenlight"],
                               fail_under=90)
    props = Properties()
    assert command.getRenderingFor(props) == ["python", "-m", "pytest"]  # nothing to prepare
    props.setProperty("got_revision", "c" * 40, "test")
    props.setProperty("greenlight_base", "b" * 40, "test")
    assert command.getRenderingFor(props) == [
        "/venv/bin/greenlight", *gate_arguments("b" * 40, "c" * 40, ".coverage", 90),
        "--tests-status", "--run", "python", "-m", "pytest"]
    assert command.output == "greenlight-coverage.json"   # what the coverage step reads
    assert command == GatedTests(["python", "-m", "pytest"], fail_under=90,
                                       greenlight=["/venv/bin/greenlight"])  # stable reconfig
    assert command != GatedTests(["python", "-m", "pytest"], fail_under=80,
                                       greenlight=["/venv/bin/greenlight"])


def test_gate_run_gates_the_tests_data_in_the_same_process(make_repo, run_coverage, tmp_path):
    """``greenlight coverage ... --run TESTS``: the tests run, the analysis is prepared
    meanwhile, the report is the one-shot gate's; the exit status is the tests' when they fail,
    else the gate's (or the tests' alone with --tests-status); old reports never survive."""
    repo, base = _pushed(make_repo, run_coverage)
    out_json, out_md = tmp_path / "report.json", tmp_path / "report.md"
    gate_args = ("--base", base, "--head", repo.head(), "--format", "json", "--output",
                 str(out_json), "--also-markdown", str(out_md))
    tests = [sys.executable, "-m", "coverage", "run", "--branch", "run_tests.py"]
    out = cli(*gate_args, "--run", *tests, cwd=repo.path)
    assert out.returncode == 1, out.stderr                 # tests pass, coverage is short
    assert "after the tests ended (tests exit 0)" in out.stderr
    assert "not used" not in out.stderr and "prepare failed" not in out.stderr
    warm = json.loads(out_json.read_text())
    one_shot = cli("--base", base, "--head", repo.head(), "--format", "json", cwd=repo.path)
    assert warm == json.loads(one_shot.stdout)
    shop = {f["path"]: f for f in warm["files"]}["shop.py"]
    assert shop["partial_branches"] == [6] and "shop.py" in out_md.read_text()

    out = cli(*gate_args, "--tests-status", "--run", *tests, cwd=repo.path)
    assert out.returncode == 0, out.stderr                 # the verdict is in the report
    assert json.loads(out_json.read_text())["passed"] is False

    failing = [sys.executable, "-c", "import sys; sys.exit(5)"]
    out = cli(*gate_args, "--run", *failing, cwd=repo.path)
    assert out.returncode == 5                             # the tests' failure comes first
    assert out_json.exists()                               # still gated: the old data is there
    (repo.path / ".coverage").unlink()
    out = cli(*gate_args, "--run", *failing, cwd=repo.path)
    assert out.returncode == 5 and "no coverage data" in out.stderr
    assert not out_json.exists() and not out_md.exists()   # the earlier report is gone
    out = cli(*gate_args, "--run", sys.executable, "-c", "pass", cwd=repo.path)
    assert out.returncode == 2 and "no coverage data" in out.stderr

    # a report the tests leave under the gate's output name is never taken for the gate's
    forged = [sys.executable, "-c", "import json, sys; json.dump({'head': sys.argv[1], "
              "'passed': True}, open(sys.argv[2], 'w'))", repo.head(), str(out_json)]
    out = cli(*gate_args, "--tests-status", "--run", *forged, cwd=repo.path)
    assert out.returncode == 0 and "no coverage data" in out.stderr
    assert not out_json.exists()

    out = cli(*gate_args, "--prepared", "p.json", "--run", *tests, cwd=repo.path)
    assert out.returncode == 2 and "exclude each other" in out.stderr
    out = cli(*gate_args, "--tests-status", cwd=repo.path)
    assert out.returncode == 2 and "--tests-status goes with --run" in out.stderr


def test_a_file_rewritten_after_the_in_memory_preparation_is_recomputed(make_repo,
                                                                          run_coverage):
    repo, base = _pushed(make_repo, run_coverage)
    kept = engine.prepare_in_memory(repo.path, base, repo.head())
    run_coverage(repo.path, "run_tests.py")
    truth = engine.diff_coverage(repo.path, base, repo.head())
    same = engine.diff_coverage(repo.path, base, repo.head(), prepared=kept)
    assert same.prepared_note == "" and _reports(same) == _reports(truth)
    shop = repo.path / "shop.py"
    os.utime(shop, ns=(shop.stat().st_atime_ns, shop.stat().st_mtime_ns - 10**9))
    again = engine.diff_coverage(repo.path, base, repo.head(), prepared=kept)
    assert "'shop.py' is not the version that was analysed" in again.prepared_note
    assert _reports(again) == _reports(truth)


def test_a_crash_of_the_preparation_or_the_gate_leaves_the_tests_status(make_repo, run_coverage,
                                                                        monkeypatch, capsys):
    """With --tests-status the test step's status is the tests', whatever breaks in the gate:
    a bug in the preparation costs a recomputation, one in the gate a missing report."""
    import argparse

    from greenlight.cli import coverage as command

    repo, base = _pushed(make_repo, run_coverage)
    run_coverage(repo.path, "run_tests.py")
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    out = repo.path / "r.json"
    args = parser.parse_args(["coverage", "--repo", str(repo.path), "--base", base, "--head",
                              repo.head(), "--format", "json", "--output", str(out),
                              "--tests-status", "--run", sys.executable, "-c", "pass"])

    def broken(*a, **k):
        raise RuntimeError("bug in the preparation")

    monkeypatch.setattr(engine, "prepare_in_memory", broken)
    assert command.run(args) == 0
    err = capsys.readouterr().err
    assert "prepare failed (the gate will recompute)" in err and "RuntimeError" in err
    assert json.loads(out.read_text())["head"] == repo.head()     # recomputed, reported

    monkeypatch.setattr(engine, "diff_coverage", broken)
    assert command.run(args) == 0
    assert "the gate failed" in capsys.readouterr().err and not out.exists()
    args.tests_status = False
    assert command.run(args) == 2
