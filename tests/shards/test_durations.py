"""The durations store on SQLite and on the real PostgreSQL, and pytest-split's file format."""
from __future__ import annotations

import json

import pytest

from greenlight.errors import UsageError
from greenlight.shards.durations import (DurationStore, read_durations_file, smooth,
                                         write_durations_file)
from greenlight.shards.junit import TestResult


def test_smoothing_follows_but_damps():
    assert smooth(None, 4.0) == 4.0
    assert smooth(1.0, 11.0, alpha=0.3) == pytest.approx(4.0)


def test_store_smooths_over_builds(db_url):
    store = DurationStore(db_url, alpha=0.5)
    long_id = "tests/test_p.py::test_param[" + "x" * 600 + "]"
    assert store.record({"t.py::a": 2.0, long_id: 1.0}, build="1") == 2
    store.record({"t.py::a": 4.0, "t.py::b": 0.5}, build="2")
    assert store.durations() == {"t.py::a": 3.0, "t.py::b": 0.5, long_id: 1.0}
    # A second store on the same database sees the same rows (the master and a CLI share it).
    assert DurationStore(db_url).durations()["t.py::a"] == 3.0


def test_skipped_results_are_not_recorded(db_url):
    store = DurationStore(db_url)
    store.record_results([TestResult("t.py::ran", "failed", 1.5),
                          TestResult("t.py::skip", "skipped", 0.0)])
    assert store.durations() == {"t.py::ran": 1.5}


def test_import_replaces_and_export_round_trips(db_url, tmp_path):
    store = DurationStore(db_url)
    store.record({"t.py::a": 9.0})
    source = tmp_path / ".test_durations"
    source.write_text(json.dumps({"t.py::a": 1.25, "t.py::b": 2}))
    assert store.replace(read_durations_file(source)) == 2
    out = tmp_path / "out.json"
    write_durations_file(out, store.durations())
    assert json.loads(out.read_text()) == {"t.py::a": 1.25, "t.py::b": 2.0}


def test_reads_the_old_list_format(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps([["t.py::a", 1.0], ["t.py::b", 0.5]]))
    assert read_durations_file(old) == {"t.py::a": 1.0, "t.py::b": 0.5}


@pytest.mark.parametrize("content, message", [
    ("{not json", r"bad\.json:1: not JSON"),
    ('{"t.py::a": "slow"}', "must be a number"),
    ('{"t.py::a": -1}', "must be a number"),
    ('"text"', "expected a JSON object"),
])
def test_bad_durations_files_say_what_and_where(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(UsageError, match=message):
        read_durations_file(bad)


def test_unreachable_database_is_a_clear_error():
    from greenlight.errors import GreenlightError
    with pytest.raises(GreenlightError, match=r"postgres:\*\*\*@127\.0\.0\.1:1/"):
        DurationStore("postgresql+psycopg2://postgres:secret@127.0.0.1:1/none")
