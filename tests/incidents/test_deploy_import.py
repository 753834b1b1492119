"""`greenlight deploys import`: JSON lines, CSV and git history into a real ledger."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from greenlight.cli.main import main
from greenlight.deploy.ledger import Ledger
from greenlight.errors import UsageError
from greenlight.incidents import Incident, build_report
from greenlight.incidents.deploy_import import import_deploys, parse_history
from tests.incidents.conftest import logic_source, trace_for

T = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _ledger(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


def test_json_lines_import_then_a_report_finds_the_latent_deploy(make_repo, tmp_path, capsys):
    repo = make_repo("shop")
    repo.write("app/logic.py", logic_source())
    base = repo.commit("base")
    repo.write("app/logic.py", logic_source({11: "value_11 = [][0]"}))
    bad = repo.commit("first of the list", author="Bob <bob@x>")
    repo.write("README.md", "docs\n")
    docs = repo.commit("readme")
    history = tmp_path / "deploys.jsonl"
    history.write_text("\n".join(json.dumps(row) for row in [
        {"sha": base, "deployed_at": (T - timedelta(days=30)).isoformat(), "hosts": ["web1"]},
        {"sha": bad, "deployed_at": (T - timedelta(days=9)).isoformat(), "hosts": ["web1"],
         "environment": "production", "outcome": "success"},
        {"sha": docs, "previous_sha": bad, "deployed_at": int((T - timedelta(hours=1))
                                                             .timestamp()), "hosts": "web1"},
    ]) + "\n")
    url = _ledger(tmp_path)
    assert main(["deploys", "import", str(history), "--ledger", url]) == 0
    out = capsys.readouterr().out
    assert "imported 3 deploy(s)" in out and "3 host release row(s)" in out
    ledger = Ledger(url)
    rows = sorted(ledger.list_deploys(10), key=lambda r: r.started_at)
    assert [r.sha for r in rows] == [base, bad, docs]
    assert [r.previous_sha for r in rows] == [None, base, bad]   # a history: the row before
    assert ledger.live_at(T - timedelta(minutes=30)) == {"web1": docs}
    assert ledger.live_at(T - timedelta(days=2)) == {"web1": bad}
    report = build_report(Incident(title="IndexError", started_at=T,
                                   trace=trace_for(("app/logic.py", 11, "first"))),
                          ledger, repo.path)
    assert report.suspects[0].commit.sha == bad
    assert report.suspects[0].latent.startswith("latent: went live 9 days")
    # Again: nothing doubles.
    assert main(["deploys", "import", str(history), "--ledger", url]) == 0
    assert "imported 0 deploy(s)" in capsys.readouterr().out and len(ledger.list_deploys()) == 3
    ledger.close()


def test_csv_import_reads_hosts_and_outcomes(tmp_path, capsys):
    history = tmp_path / "deploys.csv"
    history.write_text("sha,deployed_at,previous_sha,environment,hosts,outcome\n"
                       f"{'a' * 40},2026-01-01T10:00:00Z,,production,web1 web2,success\n"
                       f"{'b' * 40},2026-01-02T10:00:00Z,{'a' * 40},production,web1;web2,"
                       "rolled_back\n")
    url = _ledger(tmp_path)
    assert main(["deploys", "import", str(history), "--ledger", url, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["inserted"] == 2 and result["host_rows"] == 2   # the rolled-back one: none
    ledger = Ledger(url)
    rolled = next(r for r in ledger.list_deploys() if r.sha == "b" * 40)
    assert rolled.outcome == "rolled_back" and rolled.hosts == ["web1", "web2"]
    assert rolled.previous_sha == "a" * 40
    ledger.close()


def test_bad_rows_are_all_reported_with_file_and_line_and_nothing_is_written(tmp_path, capsys):
    history = tmp_path / "deploys.csv"
    history.write_text("sha,deployed_at,outcome\n"
                       f"{'a' * 40},2026-01-01T10:00:00Z,success\n"
                       "not-a-sha,2026-01-01T11:00:00Z,success\n"
                       f"{'c' * 40},yesterday-ish,success\n"
                       f"{'d' * 40},2026-01-01T12:00:00Z,exploded\n"
                       f"{'e' * 40},2999-01-01T12:00:00Z,success\n")
    url = _ledger(tmp_path)
    assert main(["deploys", "import", str(history), "--ledger", url]) == 2
    err = capsys.readouterr().err
    assert "4 problem(s) in" in err and "nothing imported" in err
    assert "deploys.csv:3: sha 'not-a-sha' is not a commit id" in err
    assert "deploys.csv:4: deployed_at: time 'yesterday-ish' is not understood" in err
    assert "deploys.csv:5: outcome 'exploded' is not one of" in err
    assert "deploys.csv:6: deployed_at 2999-01-01T12:00:00Z is in the future" in err
    assert Ledger(url).list_deploys() == []
    with pytest.raises(UsageError, match=r"x.jsonl:2: not JSON"):
        parse_history('{"sha": "' + "a" * 40 + '", "deployed_at": 1}\n{oops\n', "x.jsonl")
    with pytest.raises(UsageError, match=r"x.jsonl:1: unknown column\(s\) when"):
        parse_history('{"sha": "' + "a" * 40 + '", "when": 1}\n', "x.jsonl")


def test_import_from_git_first_parent_commits_and_tags(make_repo, tmp_path, capsys):
    repo = make_repo("svc")
    shas = []
    for n in range(3):
        repo.write("app.py", f"x = {n}\n")
        shas.append(repo.commit(f"c{n}", GIT_COMMITTER_DATE=f"2026-01-0{n + 1}T10:00:00Z"))
    repo.git("checkout", "-q", "-b", "topic")
    repo.write("topic.py", "y = 1\n")
    side = repo.commit("side", GIT_COMMITTER_DATE="2026-01-04T10:00:00Z")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "merge topic", "topic")
    merge = repo.head()
    repo.git("tag", "v1", shas[1])
    repo.git("tag", "-a", "-m", "release 2", "v2", merge)
    repo.git("tag", "other", shas[0])

    url = _ledger(tmp_path)
    assert main(["deploys", "import", "--from-git", "--branch", "main", "--repo",
                 str(repo.path), "--ledger", url]) == 0
    assert "imported 4 deploy(s)" in capsys.readouterr().out
    ledger = Ledger(url)
    rows = sorted(ledger.list_deploys(), key=lambda r: r.started_at)
    assert [r.sha for r in rows] == shas + [merge]          # first parent: not the side commit
    assert side not in [r.sha for r in rows]
    assert rows[-1].previous_sha == shas[-1] and rows[1].previous_sha == shas[0]
    assert rows[0].started_at == datetime(2026, 1, 1, 10, tzinfo=timezone.utc)

    url2 = f"sqlite:///{tmp_path / 'tags.sqlite'}"
    assert main(["deploys", "import", "--from-git", "--tags", "v*", "--repo", str(repo.path),
                 "--ledger", url2]) == 0
    tags = sorted(Ledger(url2).list_deploys(), key=lambda r: r.started_at)
    assert [r.sha for r in tags] == [shas[1], merge]
    assert tags[1].previous_sha == shas[1]
    assert main(["deploys", "import", "--from-git", "--repo", str(repo.path),
                 "--ledger", url2]) == 2
    assert "exactly one of --branch NAME or --tags PATTERN" in capsys.readouterr().err
    ledger.close()


def test_ten_thousand_deploys_go_in_one_transaction(tmp_path):
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    text = "\n".join(json.dumps({"sha": f"{i:040x}", "deployed_at": (
        start + timedelta(minutes=30 * i)).isoformat(), "hosts": ["web1"]}) for i in range(10_000))
    ledger = Ledger(_ledger(tmp_path))
    result = import_deploys(ledger, parse_history(text, "big.jsonl"))
    assert result.inserted == 10_000 and result.host_rows == 10_000
    assert len(ledger.list_deploys(limit=20_000)) == 10_000
    assert ledger.live_at(start + timedelta(minutes=30 * 5000 + 1)) == {"web1": f"{5000:040x}"}
    ledger.close()
