"""The CLI verbs end to end: durations ingest/export/import, plan from the store, rerun, flaky."""
from __future__ import annotations

import json
import subprocess
import sys

from greenlight.cli.main import main as cli
from tests.shards.test_flaky import SUITE


def _junit(tmp_path, body: str):
    path = tmp_path / "junit.xml"
    path.write_text(f'<testsuites><testsuite name="pytest">{body}</testsuite></testsuites>')
    return path


def test_ingest_export_import_and_plan_from_the_store(tmp_path, capsys):
    db = f"sqlite:///{tmp_path}/d.sqlite"
    junit = _junit(tmp_path, '<testcase classname="tests.test_a" name="t1" time="3.0"/>'
                             '<testcase classname="tests.test_a" name="t2" time="1.0"/>'
                             '<testcase classname="tests.test_b" name="t3" time="2.0"/>')
    assert cli(["shards", "durations", "--ingest", str(junit), "--db", db, "--build", "7"]) == 0
    assert "recorded 3 durations" in capsys.readouterr().out
    out = tmp_path / "exported.json"
    assert cli(["shards", "durations", "--export", str(out), "--db", db]) == 0
    assert json.loads(out.read_text()) == {"tests/test_a.py::t1": 3.0,
                                           "tests/test_a.py::t2": 1.0,
                                           "tests/test_b.py::t3": 2.0}
    capsys.readouterr()
    assert cli(["shards", "plan", "--shards", "2", "--db", db, "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [s["predicted_seconds"] for s in plan["shards"]] == [3.0, 3.0]
    assert plan["makespan_seconds"] == plan["ideal_seconds"] == 3.0

    other = tmp_path / "import.json"
    other.write_text(json.dumps({"tests/test_a.py::t1": 0.5}))
    assert cli(["shards", "durations", "--import", str(other), "--db", db]) == 0
    cli(["shards", "durations", "--export", str(out), "--db", db])
    assert json.loads(out.read_text())["tests/test_a.py::t1"] == 0.5


def test_plan_reads_collect_only_output_from_stdin(tmp_path, capsys, monkeypatch):
    import io
    monkeypatch.setattr(sys, "stdin", io.StringIO(
        "tests/test_a.py::t1\ntests/test_a.py::t2\ntests/test_b.py::t[a b]\n\n"
        "3 tests collected in 0.01s\n"))
    assert cli(["shards", "plan", "--shards", "2", "--tests", "-", "--durations",
                str(_write(tmp_path / "d.json", {"tests/test_a.py::t1": 5.0})),
                "--format", "text"]) == 0
    text = capsys.readouterr().out
    assert "2 tests without a duration got their module's mean, else the suite's mean 5.000 s" in text
    assert "shard 1: 2 tests, predicted 10.00 s" in text
    assert "shard 2: 1 tests, predicted 5.00 s" in text


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_bad_input_exits_2_with_the_reason(tmp_path, capsys):
    assert cli(["shards", "plan", "--shards", "2", "--durations",
                str(tmp_path / "nope.json")]) == 2
    assert "nope.json: cannot read" in capsys.readouterr().err


def test_rerun_failures_records_flaky_and_fails_on_real(tmp_path, capsys):
    (tmp_path / "test_suite.py").write_text(SUITE)
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={junit}"], cwd=tmp_path, capture_output=True)
    db = f"sqlite:///{tmp_path}/ledger.sqlite"
    code = cli(["shards", "rerun-failures", str(junit), "--cwd", str(tmp_path), "--record",
                "--db", db, "--build", "42", "--commit", "abc123"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out["flaky"] == ["test_suite.py::test_flaky"]
    assert out["failed"] == ["test_suite.py::test_broken"]
    assert cli(["flaky", "list", "--db", db, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)["flaky"]
    assert [(e["test_id"], e["count"], e["last_build"], e["last_commit"]) for e in listed] == \
        [("test_suite.py::test_flaky", 1, "42", "abc123")]
    assert cli(["flaky", "list", "--db", db]) == 0
    assert "   1  test_suite.py::test_flaky" in capsys.readouterr().out
