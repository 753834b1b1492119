"""One verdict from many shards: union check, failures, flaky, retries, missing shards."""
from __future__ import annotations

from greenlight.shards.collect import FAILURE, SUCCESS, WARNINGS, judge_shards

ALL = ["t.py::a", "t.py::b", "t.py::c", "t.py::d"]


def report(index, results, wall=1.0):
    return {"shard": index, "shards": 2, "predicted_seconds": 2.0, "wall_seconds": wall,
            "collected": ALL, "selected": list(results),
            "results": {t: {"outcome": o, "seconds": 1.0} for t, o in results.items()}}


PLAN = {"shards": [{"index": 1, "tests": ALL[:2], "predicted_seconds": 2.0},
                   {"index": 2, "tests": ALL[2:], "predicted_seconds": 2.0}]}


def test_all_green():
    v = judge_shards([report(1, {"t.py::a": "passed", "t.py::b": "passed"}),
                      report(2, {"t.py::c": "passed", "t.py::d": "skipped"})], plan=PLAN)
    assert v.result == SUCCESS and v.union.ok
    assert v.durations == {"t.py::a": 1.0, "t.py::b": 1.0, "t.py::c": 1.0}
    assert [(r.index, r.executed, r.predicted_seconds, r.test_seconds) for r in v.rows] == \
        [(1, 2, 2.0, 2.0), (2, 2, 2.0, 2.0)]


def test_a_failure_names_the_test():
    v = judge_shards([report(1, {"t.py::a": "passed", "t.py::b": "failed"}),
                      report(2, {"t.py::c": "passed", "t.py::d": "error"})])
    assert v.result == FAILURE
    assert v.failed == ("t.py::b", "t.py::d")
    assert "2 failed: t.py::b, t.py::d" in v.summary()


def test_flaky_only_is_warnings_unless_configured():
    reports = [report(1, {"t.py::a": "passed", "t.py::b": "failed"}),
               report(2, {"t.py::c": "passed", "t.py::d": "passed"})]
    reruns = [{"reruns": [{"test_id": "t.py::b", "verdict": "flaky", "message": "boom"}]}]
    v = judge_shards(reports, reruns)
    assert (v.result, v.flaky, v.failed) == (WARNINGS, ("t.py::b",), ())
    assert v.messages["t.py::b"] == "boom"
    assert judge_shards(reports, reruns, fail_on_flaky=True).result == FAILURE


def test_a_shard_without_report_fails_loudly():
    v = judge_shards([report(1, {"t.py::a": "passed", "t.py::b": "passed"})], plan=PLAN)
    assert v.result == FAILURE
    assert v.union.missing == ("t.py::c", "t.py::d")
    assert v.rows[1].wall_seconds is None
    assert "never ran: t.py::c" in v.render_text()


def test_a_retried_shard_replaces_its_first_attempt():
    first = report(2, {"t.py::c": "failed"}, wall=9.0)  # its worker disconnected mid-shard
    retry = report(2, {"t.py::c": "passed", "t.py::d": "passed"})
    v = judge_shards([report(1, {"t.py::a": "passed", "t.py::b": "passed"}), first, retry])
    assert v.result == SUCCESS and v.union.ok


def test_a_test_run_in_two_shards_is_reported():
    v = judge_shards([report(1, {"t.py::a": "passed", "t.py::b": "passed", "t.py::c": "passed"}),
                      report(2, {"t.py::c": "passed", "t.py::d": "passed"})])
    assert v.result == FAILURE and v.union.duplicated == ("t.py::c",)
