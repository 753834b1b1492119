"""The Experiments page in Flask's own test client (fast: no master), the master-side definition
of the demo experiment, and the store the CLI falls back to. The same page over a real master,
with the demo shop, is in test_page_e2e.py."""
from __future__ import annotations

import base64
import json
import re

import pytest
from greenlight.accounts import set_password
from greenlight.cli.experiment import db_url
from greenlight.experiments import Experiment, ExperimentStore, set_rollout
from greenlight.www.dashboard import make_app
from greenlight_master import experiments_config
from greenlight.settings import validate

URL = "/experiments/"


def basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:pw-{user}".encode()).decode()}


@pytest.fixture
def settings(tmp_path):
    settings = validate({"greenlight": {"state_dir": str(tmp_path)}})
    for user in ("admin", "dev", "viewer"):
        set_password(settings.path("auth", "password_file"), user, f"pw-{user}")
    return settings


@pytest.fixture
def store(settings):
    the_store = ExperimentStore(experiments_config.store_url(settings))
    yield the_store
    the_store.dispose()


@pytest.fixture
def client(settings):
    return make_app(settings, session_secret=lambda: "test-secret").test_client()


def token_on(text: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', text).group(1)


def test_master_defines_the_demo_experiment_once_and_keeps_admin_changes(settings, store):
    experiments_config.configure(settings, {})
    demo = store.get("DemoSignup")
    assert (demo.status, demo.branches, demo.updated_by) == ("qa", {"enhanced": 0.5},
                                                             "greenlight-up")
    set_rollout("DemoSignup", 20, "ada", store=store)
    experiments_config.configure(settings, {})                # a reconfig or a second `up`
    assert store.get("DemoSignup").rollout_pct == 20.0
    assert [c.action for c in store.history("DemoSignup")] == ["define", "rollout"]


def test_no_demo_experiment_for_a_real_repository(tmp_path):
    settings = validate({"greenlight": {"state_dir": str(tmp_path)},
                         "repository": {"url": "git@example.com:shop.git"}})
    assert experiments_config.ensure_demo_experiment(settings) is None
    assert not (tmp_path / "experiments.sqlite").exists()


def test_a_broken_store_does_not_stop_the_master(tmp_path, caplog):
    (tmp_path / "a-file").write_text("not a directory")
    settings = validate({"greenlight": {"state_dir": str(tmp_path)},
                         "experiments": {"db_url": f"sqlite:///{tmp_path}/a-file/x.db"}})
    experiments_config.configure(settings, {})
    assert "cannot define DemoSignup" in caplog.text


def test_cli_store_is_flag_then_env_then_settings(settings, monkeypatch, tmp_path):
    monkeypatch.delenv("GREENLIGHT_EXPERIMENTS_DB", raising=False)
    file = tmp_path / "greenlight.toml"
    file.write_text(f'[greenlight]\nstate_dir = "{tmp_path}"\n')
    monkeypatch.setenv("GREENLIGHT_SETTINGS", str(file))
    assert db_url() == f"sqlite:///{tmp_path}/experiments.sqlite"
    assert db_url() == experiments_config.store_url(settings)
    monkeypatch.setenv("GREENLIGHT_EXPERIMENTS_DB", "sqlite:///env.sqlite")
    assert db_url() == "sqlite:///env.sqlite"
    assert db_url("sqlite:///flag.sqlite") == "sqlite:///flag.sqlite"


def test_empty_list_and_unknown_experiment(client):
    assert "No experiments defined yet" in client.get(URL).get_data(as_text=True)
    assert client.get(URL + "Nope/").status_code == 404
    assert client.get(URL + "bad%20name/").status_code == 404


def test_anonymous_reads_without_forms(client, store):
    store.define(Experiment("Banner", {"big": 0.25, "small": 0.25}), "setup")
    text = client.get(URL + "Banner/").get_data(as_text=True)
    assert "control 50%, big 25%, small 25%" in text
    assert 'method="post"' not in text and "Log in as an experimenter" in text
    assert "No users exposed yet" in text


def test_experimenter_changes_by_json_and_bad_input_is_400(client, store):
    store.define(Experiment("Banner", {"big": 0.5}), "setup")
    headers = basic("admin")
    token = token_on(client.get(URL + "Banner/", headers=headers).get_data(as_text=True))
    answer = client.post(URL + "Banner/rollout", data={"pct": "12.5", "csrf": token},
                         headers={**headers, "Accept": "application/json"})
    assert answer.status_code == 200
    body = json.loads(answer.data)
    assert body["by"] == "admin" and body["experiment"]["status_label"] == "Rolled out to 12.5%"
    for form in ({"pct": ""}, {"pct": "nan"}, {"pct": "-1"}):
        bad = client.post(URL + "Banner/rollout/", data={**form, "csrf": token}, headers=headers)
        assert bad.status_code == 400
    assert client.post(URL + "Banner/close/", data={"csrf": token},
                       headers=headers).status_code == 400
    assert client.post(URL + "Banner/close/", data={"branch": "huge", "csrf": token},
                       headers=headers).status_code == 400
    assert client.post(URL + "Banner/qa/", data={"users": "x" * 3000, "csrf": token},
                       headers=headers).status_code == 400
    assert store.get("Banner").rollout_pct == 12.5


def test_dev_sees_disabled_controls_and_cannot_act(client, store):
    store.define(Experiment("Banner", {"big": 0.5}), "setup")
    text = client.get(URL + "Banner/", headers=basic("dev")).get_data(as_text=True)
    assert text.count('disabled title="needs the role experimenters"') == 3
    denied = client.post(URL + "Banner/close/", data={"branch": "big", "csrf": token_on(text)},
                         headers=basic("dev"))
    assert denied.status_code == 403 and store.get("Banner").status == "qa"


def test_results_per_branch_and_since(client, store):
    store.define(Experiment("Banner", {"big": 0.5}), "setup")
    store.write_exposures([("Banner", f"u{i}", "big" if i % 2 else "control", 10.0)
                           for i in range(60)])
    store.write_events([(f"u{i}", "purchase", 5.0, 20.0) for i in range(1, 60, 2)])
    text = client.get(URL + "Banner/").get_data(as_text=True)
    big = re.search(r"<tr><td>purchase</td><td>big</td>.*?</tr>", text, re.S).group(0)
    assert "<td>30</td>" in big and "100.00%" in big and "rate up" in big
    later = client.get(URL + "Banner/?since=2100-01-01").get_data(as_text=True)
    assert "No users exposed yet" in later and 'value="2100-01-01"' in later
    bad = client.get(URL + "Banner/?since=%3Cb%3Eyesterday").get_data(as_text=True)
    assert "Results unavailable" in bad and "<b>yesterday" not in bad


def test_report_page_saves_a_bucket_and_shows_it(client, store):
    """An experimenter saves a bucket on the page; the report then counts it per branch."""
    store.define(Experiment("Banner", {"big": 0.5}, status="rollout", rollout_pct=100,
                            attributes=("platform",)), "setup")
    t0 = 1_714_521_600.0  # 2024-05-01
    store.write_exposures([("Banner", f"u{i}", "big" if i % 2 else "control", t0 + i,
                            {"platform": "client" if i % 4 < 2 else "web"}) for i in range(40)])
    store.write_events([(f"u{i}", "login", 1.0, t0 + 100, '{"platform":"client"}')
                        for i in range(0, 40, 4)])
    headers = basic("admin")
    page = client.get(URL + "Banner/report/", headers=headers).get_data(as_text=True)
    assert 'id="bucket-all"' in page and 'id="bucket-form"' in page
    saved = client.post(URL + "Banner/buckets/", data={
        "bucket": "client_login", "did": "login:platform=client", "where": "platform=client",
        "min_count": "1", "csrf": token_on(page)}, headers=headers)
    assert saved.status_code == 303
    assert [b.name for b in store.buckets("Banner")] == ["client_login"]
    shown = client.get(URL + "Banner/report/?from=2024-05-01&to=2024-05-01&bucket=client_login",
                       headers=headers).get_data(as_text=True)
    section = shown[shown.index('id="bucket-client_login"'):]
    users = re.search(r'<table class="users">.*?</table>', section, re.S).group(0)
    assert "<td>control</td><td>10</td>" in users and "<td>big</td><td>0</td>" in users
    viewer = client.get(URL + "Banner/report/").get_data(as_text=True)
    assert 'id="bucket-form"' not in viewer  # anonymous: read only
    denied = client.post(URL + "Banner/buckets/", data={"bucket": "x", "did": "login",
                                                        "csrf": token_on(page)},
                         headers=basic("dev"))
    assert denied.status_code == 403
