"""The Deploys page reads the real ledger (SQLite) and escapes what came from commits."""
from __future__ import annotations

from greenlight.deploy.ledger import Ledger
from greenlight.www.dashboard import make_app
from tests.world import write_settings


def test_deploys_page_lists_and_shows_with_escaping(tmp_path):
    from greenlight import settings as settings_mod

    settings = settings_mod.load(write_settings(tmp_path))
    ledger = Ledger(settings.expand(settings["deploy"]["ledger_url"]))
    deploy_id = ledger.start_deploy(sha="a" * 40, previous_sha="b" * 40, branch="<b>main</b>",
                                    commits=["a" * 40], trigger="cli:<script>x</script>",
                                    hosts=["host01"])
    ledger.record_event(deploy_id, "judge", data={"outcome": "fail",
                                                   "table": "logins <fail>"})
    ledger.finish_deploy(deploy_id, "rolled_back", detail="judge failed")
    client = make_app(settings, session_secret=lambda: "s").test_client()
    listing = client.get("/deploys/")
    assert listing.status_code == 200
    assert f"#{deploy_id}" in listing.text and "rolled_back" in listing.text
    assert "<script>x</script>" not in listing.text and "&lt;script&gt;" in listing.text
    page = client.get(f"/deploys/{deploy_id}")
    assert page.status_code == 200
    assert "logins &lt;fail&gt;" in page.text and "&lt;b&gt;main&lt;/b&gt;" in page.text
    assert client.get("/deploys/99999").status_code == 404


def test_deploy_page_states_the_rate_breakage_needs_and_an_undecided_window(tmp_path):
    """The judge's own numbers on the page: the request rate at which a total breakage of a
    metric is caught within 15 s, the time the traffic needs to see the watched change, and a
    window that ended with no harm detected said as such."""
    from greenlight import settings as settings_mod

    settings = settings_mod.load(write_settings(tmp_path))
    ledger = Ledger(settings.expand(settings["deploy"]["ledger_url"]))
    deploy_id = ledger.start_deploy(sha="c" * 40, previous_sha="d" * 40, branch="main",
                                    commits=["c" * 40], trigger="cli", hosts=["host01"])
    metric = {"name": "registrations per request", "kind": "ratio", "status": "pending",
              "reason": "no harm detected down to 31%", "min_effect": 0.1,
              "canary_events": 3, "canary_trials": 200, "baseline_events": 4,
              "baseline_trials": 210, "canary_value": 0.015, "baseline_value": 0.019,
              "llr": 0.2, "lower": -3.0, "upper": 3.0, "detectable": 0.31,
              "breakage_rate_needed": 51.6, "expected_s": 2160.0, "seen_enough": False}
    ledger.record_event(deploy_id, "judge", data={"verdict": {
        "outcome": "pass", "undecided": True, "elapsed_s": 900.0,
        "reason": "undecided: no harm detected down to 31%", "metrics": [metric]}})
    ledger.finish_deploy(deploy_id, "success", detail="deployed")
    client = make_app(settings, session_secret=lambda: "s").test_client()
    page = client.get(f"/deploys/{deploy_id}").text
    assert "window ended after 900.0 s with no harm detected" in page
    assert "caught within 15 s from 52 requests/s per host" in page
    assert "needs about 2160 s to see that change" in page
