"""Renderers (HTML escapes everything from commits), the incident store, the CLI verbs, and the
report the deploy judge's rollback asks for."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import create_engine

from greenlight.cli.main import main
from greenlight.errors import UsageError
from greenlight.incidents import (Incident, IncidentStore, build_report, incident_from_request,
                                  render_html, render_json, render_markdown)
from tests.incidents.conftest import T0, logic_source, trace_for

MARKUP = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def _markup_world(world):
    repo = world.repo
    repo.write("app/logic.py", logic_source())
    base = repo.commit("base")
    world.deploy(base, None, T0 - timedelta(hours=2))
    repo.write("app/logic.py", logic_source({9: "value_9 = '<b>bold</b>'"}))
    bad = repo.commit(f"{MARKUP}\n\nbody with <iframe>", author="Eve <eve@x>")
    world.deploy(bad, base, T0 - timedelta(minutes=5))
    return base, bad


def test_html_escapes_everything_taken_from_commits(world):
    _, bad = _markup_world(world)
    incident = Incident(title="<b>pager</b>", started_at=T0,
                        trace=trace_for(("app/logic.py", 9, "<lambda>")))
    report = build_report(incident, world.ledger, world.repo.path,
                          {"link_preset": "github", "web_url": "https://git.example/shop"})
    page = render_html(report, form_action="/incidents/1/whys")
    assert report.suspects[0].commit.sha == bad
    assert "<script" not in page and "<img" not in page and "<iframe" not in page
    assert "<b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page            # the blamed line's text, escaped
    assert f'href="https://git.example/shop/commit/{bad}"' in page
    assert f"https://git.example/shop/blame/{bad}/app/logic.py#L9" in page
    assert '<form method="post" action="/incidents/1/whys">' in page
    assert 'name="why1"' in page and "&lt;b&gt;pager&lt;/b&gt;" in page


def test_html_fragment_embeds_in_a_layout_with_trusted_form_fields(world):
    _, bad = _markup_world(world)
    report = build_report(Incident(title="<b>pager</b>", started_at=T0), world.ledger,
                          world.repo.path)
    part = render_html(report, form_action="/w", fragment=True,
                       form_fields='<input type="hidden" name="csrf" value="t0k">')
    assert not part.lstrip().startswith("<!DOCTYPE") and "<body>" not in part
    assert "<h1>" not in part and part.rstrip().endswith("</div>")
    assert '<form method="post" action="/w"><input type="hidden" name="csrf" value="t0k">' in part
    assert bad[:12] in part and "<script" not in part and "&lt;script&gt;" in part


def test_markdown_and_json_carry_the_same_ranking(world):
    _, bad = _markup_world(world)
    report = build_report(Incident(title="t", started_at=T0,
                                   trace=trace_for(("app/logic.py", 9, "f"))),
                          world.ledger, world.repo.path)
    data = json.loads(render_json(report))
    assert data["suspects"][0]["sha"] == bad
    assert data["suspects"][0]["evidence"][0]["kind"] == "blamed_line"
    assert data["suspects"][0]["tier_label"] == "owns a line of the trace"
    assert data["five_whys"][0]["answer"].startswith("t (started 2026-05-01T12:00:00Z")
    assert [w["answer"] for w in data["five_whys"][1:]] == ["", "", "", ""]
    md = render_markdown(report)
    assert md.index(bad[:12]) < md.index("## Deploy timeline")
    assert "\\|" not in md.split("## Suspects")[0]


def _store_roundtrip(store: IncidentStore):
    incident = Incident(title="db latency", started_at=T0, source="json", service="shop",
                        trace="app/x.py:1", evidence={"alerts": [1]})
    first = store.save(incident, {"suspects": []})
    store.save_whys(first, ["paged", "login broke"])
    again = store.get(first)
    assert (again.title, again.started_at, again.service, again.whys) == \
        ("db latency", T0, "shop", ["paged", "login broke"])
    assert store.report(first) == {"suspects": []}
    later = Incident(title="second", started_at=T0 + timedelta(hours=1))
    store.save(later)
    assert [i.title for i in store.list()] == ["second", "db latency"]
    with pytest.raises(UsageError, match="incident 999 does not exist"):
        store.get(999)


def test_store_on_sqlite(tmp_path):
    _store_roundtrip(IncidentStore(f"sqlite:///{tmp_path / 'incidents.sqlite'}"))


def test_store_on_postgresql(pg_url):
    engine = create_engine(pg_url)
    try:
        _store_roundtrip(IncidentStore(engine=engine))
    finally:
        engine.dispose()


def test_rollback_request_reports_the_rolled_back_commit(world):
    base, bad = _markup_world(world)
    # the judge failed the canary: an event with outcome fail, a rollback, an incident request
    canary = world.ledger.last_deploy()
    world.ledger.record_event(canary.id, "judge", data={"outcome": "fail",
                                                        "metrics": {"logins": "-60%"}},
                              at=T0 - timedelta(minutes=2))
    world.deploy(base, bad, T0, kind="rollback")
    request_id = world.ledger.record_incident("canary judge failed: logins -60%",
                                              deploy_id=canary.id, sha=bad,
                                              data={"metrics": {"logins": "-60%"}},
                                              at=T0 + timedelta(minutes=1))
    request = world.ledger.incidents()[0]
    incident = incident_from_request(request, world.ledger)
    assert incident.started_at == T0 - timedelta(minutes=2)
    assert incident.evidence["request_id"] == request_id
    report = build_report(incident, world.ledger, world.repo.path)
    assert report.suspects[0].commit.sha == bad
    assert "not_live" not in [e.kind for e in report.suspects[0].evidence]


def test_cli_report_list_show_why_and_rollbacks(world, tmp_path, capsys):
    base, bad = _markup_world(world)
    trace = tmp_path / "trace.txt"
    trace.write_text(trace_for(("app/logic.py", 9, "f")))
    ledger = world.ledger.url
    repo = str(world.repo.path)
    code = main(["incident", "report", "--at", "2026-05-01T12:00:00Z", "--trace", str(trace),
                 "--repo", repo, "--ledger", ledger, "--format", "json", "--title", "500s"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["suspects"][0]["sha"] == bad and data["incident"]["id"] == 1
    assert main(["incident", "why", "1", "2", "the cache was cold", "--ledger", ledger]) == 0
    assert main(["incident", "list", "--ledger", ledger]) == 0
    assert "1\t2026-05-01T12:00:00Z\tcli\t500s" in capsys.readouterr().out
    assert main(["incident", "show", "1", "--repo", repo, "--ledger", ledger]) == 0
    shown = capsys.readouterr().out
    assert "Why #2? the cache was cold" in shown and bad[:12] in shown
    # bad input: exit 2 with the reason
    assert main(["incident", "report", "--at", "teatime", "--repo", repo,
                 "--ledger", ledger]) == 2
    assert "time 'teatime' is not understood" in capsys.readouterr().err
    body = tmp_path / "alert.json"
    body.write_text("{not json")
    assert main(["incident", "intake", str(body), "--repo", repo, "--ledger", ledger]) == 2
    assert "alert.json: body is not JSON" in capsys.readouterr().err
    # the judge's open incident requests become saved reports, once
    world.ledger.record_incident("judge failed", deploy_id=2, sha=bad, at=T0)
    assert main(["incident", "rollbacks", "--repo", repo, "--ledger", ledger]) == 0
    assert f"(top suspect {bad[:12]})" in capsys.readouterr().out
    assert world.ledger.incidents()[0].status == "reported"
    assert main(["incident", "rollbacks", "--repo", repo, "--ledger", ledger]) == 0
    assert capsys.readouterr().out == ""


def test_close_canary_verdict_and_judge_table_show_up(world):
    base, bad = _markup_world(world)
    canary = world.ledger.last_deploy()
    verdict = {"outcome": "pass", "metrics": [
        {"name": "logins", "status": "pass", "adjusted_p": 0.08, "relative_change": -0.12},
        {"name": "errors", "status": "pass", "adjusted_p": 0.9, "relative_change": 0.0}]}
    world.ledger.record_event(canary.id, "judge", release=bad,
                              data={"outcome": "pass", "table": "logins -12% <script>",
                                    "verdict": verdict})
    incident = Incident(title="t", started_at=T0, evidence={"table": "logins -60% <b>"})
    report = build_report(incident, world.ledger, world.repo.path)
    canary_ev = next(e for e in report.suspects[0].evidence if e.kind == "canary")
    assert "logins -12% (p=0.08)" in canary_ev.detail and "errors" not in canary_ev.detail
    assert "```\nlogins -60% <b>\n```" in render_markdown(report)
    assert "<pre>logins -60% &lt;b&gt;</pre>" in render_html(report)


def test_whys_from_the_html_form_are_saved(tmp_path):
    from greenlight.incidents.store import whys_from_form

    store = IncidentStore(f"sqlite:///{tmp_path / 'w.sqlite'}")
    incident_id = store.save(Incident(title="t", started_at=T0))
    answers = whys_from_form({"why1": ["paged"], "why2": b" cache cold ", "why3": "",
                              "why4": "", "why5": ""})
    assert answers == ["paged", "cache cold"]
    store.save_whys(incident_id, answers)
    assert store.get(incident_id).whys == ["paged", "cache cold"]
    with pytest.raises(UsageError, match="why1 is 5000 characters"):
        whys_from_form({"why1": "x" * 5000})
