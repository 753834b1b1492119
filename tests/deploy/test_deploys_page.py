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
